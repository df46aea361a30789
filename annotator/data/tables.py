"""Read a user's data file (CSV, TSV, JSONL, Parquet, XLSX) into rows that remember where they came from,
so that every complaint about a value can name its file and line.

Text files are streamed (`open_table`), so that importing a million rows costs the memory of one; and a CSV
whose quoting would silently merge rows into one text (a quote left open) is refused, not read: that reader
and its quote guards live in `annotator.data.csv_reader` (its limits are re-exported here). This module holds
the formats, `open_table` / `TableSource` (row by row), `read_table` / `Table` (a whole file) and the helpers
for cell values and messages."""

from __future__ import annotations

import codecs
import hashlib
import itertools
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from annotator.data.csv_reader import (
    ALLOW_MULTILINE_HINT,
    LONG_ROW_CHARS,
    LONG_ROW_FACTOR,
    MAX_LINE_BREAKS,
    DelimitedReader,
)
from annotator.errors import InputError, arg
from annotator.textfiles import find_decode_failure

__all__ = [
    "ALLOW_MULTILINE_HINT",
    "FORMATS",
    "LONG_ROW_CHARS",
    "LONG_ROW_FACTOR",
    "MAX_LINE_BREAKS",
    "Table",
    "TableSource",
    "cell",
    "file_sha256",
    "json_safe",
    "list_problems",
    "open_table",
    "read_table",
]

FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".txt": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".xlsx": "xlsx",
}


@dataclass
class Table:
    path: Path
    columns: list[str]
    rows: list[dict[str, Any]]
    lines: list[int]  # 1-based line (or spreadsheet row) of each row; parquet: the row number
    sha256: str
    line_word: str = "line"

    def where(self, i: int) -> str:
        return (
            f"{self.path.name}:{self.lines[i]}"
            if self.line_word == "line"
            else (f"{self.path.name} row {self.lines[i]}")
        )

    def require(self, column: str, param: str) -> None:
        """Refuse a missing column, listing the columns the file has; ``param`` names the parameter that gave
        ``column`` (`annotator.errors.arg`)."""
        if column not in self.columns:
            shown = ", ".join(repr(c) for c in self.columns[:20])
            raise InputError(
                f"{self.path}: no column {column!r} (it has {shown}); name the right one with "
                f"{arg(param, 'COLUMN')}"
            )


def cell(value: Any) -> str:
    """A cell as text: blanks and NaN become '', 3.0 becomes '3' (ids read from spreadsheets)."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer():
            return str(int(value))
    return str(value).strip()


def json_safe(value: Any) -> Any:
    """A value that JSON (and PostgreSQL's JSON type) can store: dates as ISO text, numpy scalars and arrays
    as Python values, NaN and infinities as None."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "isoformat"):  # datetime, date, time, pandas Timestamp
        try:
            import pandas as pd

            if value is pd.NaT:
                return None
        except ImportError:  # pragma: no cover
            pass
        return value.isoformat()
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return json_safe(value.tolist())
    return str(value)


_BLOCK = 1 << 20


def _text_encoding(encoding: str | None) -> str:
    enc = encoding or "utf-8-sig"
    try:
        codecs.lookup(enc)
    except LookupError:
        raise InputError(f"unknown encoding {encoding!r}; use e.g. utf-8, latin-1 or cp1252") from None
    return enc


def _decode_error(path: Path, encoding: str | None) -> InputError:
    """Where a file stops being valid text, found by a second pass (only on that error): the streaming reader
    decodes block by block and cannot tell the line itself."""
    failure = find_decode_failure(path, _text_encoding(encoding))
    if failure is None:
        return InputError(
            f"{path}: not valid {encoding or 'utf-8'}; pass its real encoding, e.g. {arg('encoding', 'latin-1')}"
        )
    return InputError(
        f"{path}:{failure.line}: not valid {failure.encoding} (byte 0x{failure.byte:02x} at offset "
        f"{failure.offset}); save the file as UTF-8 (Excel: 'CSV UTF-8'), or pass its real encoding, e.g. "
        f"{arg('encoding', 'latin-1')}"
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


class TableSource:
    """A data file opened to be read row by row, so that a file of a million rows costs the memory of one row:
    CSV, TSV and JSONL are streamed from disk; Parquet and XLSX are read whole by pandas (compressed, and seldom
    that large) and then handed out row by row too. Iterating yields (line, row); every check that needs the
    whole file (the no-rows check, the long multi-line rows) runs when the iteration ends, so a caller writing
    rows as they come must do it inside one transaction.

    Use as a context manager (the file stays open while rows are read)."""

    def __init__(self, path: Path, kind: str, encoding: str | None = None, allow_multiline: bool = False):
        self.path, self.kind, self.encoding = path, kind, encoding
        self.allow_multiline = allow_multiline
        self.line_word = "row" if kind == "parquet" else "line"
        self.rows_read = 0
        self._jsonl_lines = 0
        self._handle: IO[str] | None = None
        self._delimited: DelimitedReader | None = None
        self._columns: dict[str, None] = {}
        try:
            self._rows = self._open()
        except UnicodeDecodeError:
            self.close()
            raise _decode_error(path, encoding) from None
        except BaseException:
            self.close()
            raise

    @property
    def columns(self) -> list[str]:
        """The header (CSV, TSV, Parquet, XLSX); for JSONL the keys of the rows read so far (the first row's
        once open, every row's at the end)."""
        return list(self._columns)

    @property
    def lines_read(self) -> int:
        """Physical lines of a text file (header included), known once the rows are read; 0 for Parquet and
        XLSX."""
        return self._delimited.lines_read if self._delimited is not None else self._jsonl_lines

    @property
    def multiline(self) -> int:
        """CSV/TSV rows whose quoted text holds line breaks."""
        return self._delimited.multiline if self._delimited is not None else 0

    @property
    def first_multiline(self) -> int | None:
        """The line of the first of them."""
        return self._delimited.first_multiline if self._delimited is not None else None

    def where(self, line: int) -> str:
        return f"{self.path.name}:{line}" if self.line_word == "line" else f"{self.path.name} row {line}"

    def require(self, column: str, param: str) -> None:
        """Refuse a missing column, listing the columns the file has; ``param`` names the parameter that gave
        ``column`` (`annotator.errors.arg`)."""
        if column not in self._columns:
            shown = ", ".join(repr(c) for c in self.columns[:20])
            raise InputError(
                f"{self.path}: no column {column!r} (it has {shown}); name the right one with "
                f"{arg(param, 'COLUMN')}"
            )

    def __enter__(self) -> TableSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any]]]:
        try:
            for line, row in self._rows:
                self.rows_read += 1
                yield line, row
        except UnicodeDecodeError:
            raise _decode_error(self.path, self.encoding) from None
        finally:
            self.close()
        if not self.rows_read:
            raise InputError(f"{self.path}: no data rows; nothing to import")

    def _open(self) -> Iterator[tuple[int, dict[str, Any]]]:
        if self.kind in ("parquet", "xlsx"):
            columns, rows, lines = _read_frame(self.path, self.kind)
            self._columns = dict.fromkeys(columns)
            return zip(lines, rows, strict=True)
        encoding = _text_encoding(self.encoding)
        if self.kind == "jsonl":
            # newlines only: JSON strings may hold U+2028 and friends, which other line splitting splits on
            self._handle = self.path.open(encoding=encoding, newline="\n")
            objects = self._jsonl_rows(self._handle)
            first = next(objects, None)  # its keys are the columns `require` checks
            if first is None:
                raise InputError(f"{self.path}: no data rows; nothing to import")
            return itertools.chain([first], objects)
        self._handle = self.path.open(encoding=encoding, newline="")
        self._delimited = DelimitedReader(self.path, self._handle, self.kind, self.allow_multiline)
        self._columns = dict.fromkeys(self._delimited.header)
        return self._delimited.rows()

    def _jsonl_rows(self, fh: IO[str]) -> Iterator[tuple[int, dict[str, Any]]]:
        number = 0
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(
                    f"{self.path}:{number}: not valid JSON ({exc.msg}); each line must be one object"
                ) from None
            if not isinstance(obj, dict):
                raise InputError(
                    f'{self.path}:{number}: a JSON {type(obj).__name__}, not an object; use {{"id": ...}}'
                )
            self._columns.update(dict.fromkeys(obj))
            yield number, {k: json_safe(v) for k, v in obj.items()}
        self._jsonl_lines = number


def _read_frame(path: Path, fmt: str) -> tuple[list[str], list[dict], list[int]]:
    import pandas as pd

    try:
        if fmt == "parquet":
            frame = pd.read_parquet(path)
            first = 1
        else:
            frame = pd.read_excel(path, dtype=object, engine="openpyxl")
            first = 2
    except ImportError as exc:
        raise InputError(
            f"{path}: reading {fmt} needs an extra package ({exc}); pip install pyarrow openpyxl"
        ) from None
    except Exception as exc:  # the readers raise many types for a corrupt file
        raise InputError(
            f"{path}: cannot read it as {fmt} ({exc}); check that the file is a valid {fmt}"
        ) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    numbers = [first + i for i in range(len(frame))]
    rows, lines = [], []
    for number, row in zip(numbers, frame.to_dict(orient="records"), strict=True):
        clean = {k: json_safe(v) for k, v in row.items()}
        if any(v not in (None, "") for v in clean.values()):  # blank spreadsheet rows are skipped
            rows.append(clean)
            lines.append(number)
    return list(frame.columns), rows, lines


def open_table(
    path: str | Path, encoding: str | None = None, fmt: str | None = None, allow_multiline: bool = False
) -> TableSource:
    """Open a data file to read row by row; the format comes from ``fmt`` or the file extension."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path} is a folder; give the data file inside it")
    if not path.is_file():
        hint = "" if path.parent.is_dir() else f" (folder {path.parent} does not exist either)"
        raise InputError(f"file not found: {path}{hint}; check the path")
    if fmt is not None and fmt.lower() not in set(FORMATS.values()):
        raise InputError(f"{arg('fmt', fmt)}: use csv, tsv, jsonl, parquet or xlsx")
    kind = fmt.lower() if fmt else FORMATS.get(path.suffix.lower())
    if kind is None:
        raise InputError(
            f"{path}: cannot tell the format from {path.suffix!r}; use .csv, .tsv, .jsonl, .parquet or .xlsx, "
            f"or name the format, e.g. {arg('fmt', 'csv')}"
        )
    return TableSource(path, kind, encoding=encoding, allow_multiline=allow_multiline)


def read_table(
    path: str | Path, encoding: str | None = None, fmt: str | None = None, allow_multiline: bool = False
) -> Table:
    """Read a whole data file (for files of modest size, e.g. codes; documents are streamed with open_table)."""
    with open_table(path, encoding=encoding, fmt=fmt, allow_multiline=allow_multiline) as source:
        rows, lines = [], []
        for line, row in source:
            rows.append(row)
            lines.append(line)
    return Table(
        path=source.path,
        columns=source.columns,
        rows=rows,
        lines=lines,
        sha256=file_sha256(source.path),
        line_word=source.line_word,
    )


def list_problems(items: list[str], limit: int = 5) -> str:
    """'a, b, c and 4 more' for messages that must stay one line."""
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
