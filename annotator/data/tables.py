"""Read a user's data file (CSV, TSV, JSONL, Parquet, XLSX) into rows that remember where they came from,
so that every complaint about a value can name its file and line.

Text files are streamed (`open_table`), so that importing a million rows costs the memory of one; and a CSV
whose quoting would silently merge rows into one text (a quote left open) is refused, not read."""

from __future__ import annotations

import codecs
import csv
import hashlib
import itertools
import json
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from annotator.errors import InputError

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

    def require(self, column: str, option: str) -> None:
        """Refuse a missing column, listing the columns the file has."""
        if column not in self.columns:
            shown = ", ".join(repr(c) for c in self.columns[:20])
            raise InputError(
                f"{self.path}: no column {column!r} (it has {shown}); name the right one with {option}"
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


# The multi-line guard. A stray quote (`s-500,"oops`) makes a CSV reader take every following line as part of
# one text, up to the next quote or the end of the file: hundreds of rows become one document and the import
# "succeeds". A quote that never closes is always refused; a row whose quoted text holds line breaks is refused
# (unless --allow-multiline) when it holds more than MAX_LINE_BREAKS of them, or when it is longer than
# LONG_ROW_CHARS and more than LONG_ROW_FACTOR times the file's median row: a few paragraphs pass, a swallowed
# block of rows does not.
MAX_LINE_BREAKS = 20
LONG_ROW_CHARS = 10_000
LONG_ROW_FACTOR = 50
ALLOW_MULTILINE_HINT = "or pass --allow-multiline if texts with that many lines are intended"
# fed to the CSV reader after the file's last line: it comes back inside a field only when a quoted field is
# still open at the end of the file (a noncharacter, so no real file holds it)
_END = "\ufdd0annotator: end of file\ufdd0"
_BLOCK = 1 << 20


def _line_breaks(text: str) -> int:
    return text.count("\n") + text.count("\r") - text.count("\r\n")


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
    decoder = codecs.getincrementaldecoder(_text_encoding(encoding))("strict")
    offset = newlines = 0
    with path.open("rb") as fh:
        while True:
            block = fh.read(_BLOCK)
            pending = decoder.getstate()[0]
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:
                data = exc.object if isinstance(exc.object, bytes) else pending + block
                skipped = len(pending) + len(block) - len(data)  # e.g. a byte order mark already read
                line = newlines + data[: exc.start].count(b"\n") - pending.count(b"\n") + 1
                at = offset - len(pending) + skipped + exc.start
                return InputError(
                    f"{path}:{line}: not valid {exc.encoding} (byte 0x{data[exc.start]:02x} at offset {at}); "
                    "save the file as UTF-8 (Excel: 'CSV UTF-8'), or pass --encoding with its real encoding, "
                    "e.g. --encoding latin-1"
                )
            if not block:
                break
            offset += len(block)
            newlines += block.count(b"\n")
    return InputError(f"{path}: not valid {encoding or 'utf-8'}; pass --encoding with its real encoding")


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
        self.lines_read = 0  # physical lines of a text file; 0 for Parquet and XLSX
        self.multiline = 0  # CSV/TSV rows whose quoted text holds line breaks
        self.first_multiline: int | None = None  # the line of the first of them
        self._handle: IO[str] | None = None
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

    def where(self, line: int) -> str:
        return f"{self.path.name}:{line}" if self.line_word == "line" else f"{self.path.name} row {line}"

    def require(self, column: str, option: str) -> None:
        """Refuse a missing column, listing the columns the file has."""
        if column not in self._columns:
            shown = ", ".join(repr(c) for c in self.columns[:20])
            raise InputError(
                f"{self.path}: no column {column!r} (it has {shown}); name the right one with {option}"
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
        csv.field_size_limit(2**31 - 1)  # long speeches and transcripts are texts too
        # strict: a quote that closes and is followed by more text (the mark of a stray quote closed by the
        # next field's opening quote) is an error, not text run together
        reader = csv.reader(
            itertools.chain(self._handle, [_END]),
            delimiter="," if self.kind == "csv" else "\t",
            strict=True,
        )
        raw = self._record(reader, 1)
        if raw == [_END]:
            raise InputError(f"{self.path}: the file is empty; it needs a header row and data rows")
        if raw and _END in raw[-1]:
            raise self._unclosed(1, raw, reader.line_num - 1)
        header = [h.strip() for h in raw]
        dupes = sorted({h for h in header if header.count(h) > 1})
        if dupes:
            raise InputError(f"{self.path}:1: duplicate column names {dupes}; give each column its own name")
        self._columns = dict.fromkeys(header)
        return self._delimited_rows(reader, header)

    def _record(self, reader: Any, start: int) -> list[str]:
        try:
            return next(reader)
        except csv.Error as exc:
            line = reader.line_num
            if "unexpected end of data" in str(exc):  # the end marker fell inside a quoted field
                raise self._unclosed(start, [], line - 1) from None
            if "expected after" in str(exc):
                delimiter = "comma" if self.kind == "csv" else "tab"
                raise InputError(
                    f"{self.path}:{start}: a quoted text in the row that starts at line {start} closes at line "
                    f"{line} and more text follows the closing quote instead of a {delimiter}: a quote left "
                    f"open swallows the rows after it; check the quoting of line {start} (a quote inside a "
                    'quoted text is written twice: "")'
                ) from None
            raise InputError(
                f"{self.path}:{start}: cannot parse the row ({exc}); check its quoting"
            ) from None

    def _unclosed(self, start: int, record: list[str], last: int) -> InputError:
        opened = start + sum(_line_breaks(field) for field in record[:-1])
        return InputError(
            f"{self.path}:{opened}: a quoted field opens at line {opened} and is never closed: the file ends at "
            f"line {last} inside it, so the {last - opened + 1} lines from {opened} to {last} would become one "
            'text; close that quote (a quote inside a quoted text is written twice: "")'
        )

    def _delimited_rows(self, reader: Any, header: list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
        width = len(header)
        # characters per row -> rows: the file's median row at the end, in little memory
        lengths: Counter[int] = Counter()
        # (first line, last line, characters) of multi-line rows over LONG_ROW_CHARS, judged at the end
        long_rows: list[tuple[int, int, int]] = []
        start = reader.line_num + 1
        while True:
            record = self._record(reader, start)
            end = reader.line_num
            if record and _END in record[-1]:
                if end == start and record == [_END]:  # the marker alone: the file ended between rows
                    break
                raise self._unclosed(start, record, end - 1)
            first, start = start, end + 1
            if not any(field.strip() for field in record):
                continue
            if len(record) > width:
                raise InputError(
                    f"{self.path}:{first}: {len(record)} fields but the header has {width}; "
                    "check the delimiter and the quoting of that row"
                )
            chars = sum(map(len, record))
            lengths[chars] += 1
            if end > first:
                self._multiline(first, end, chars, long_rows)
            yield first, dict(zip(header, record, strict=False))
        self.lines_read = reader.line_num - 1
        if long_rows:
            typical = _median(lengths)
            suspects = [r for r in long_rows if r[2] > LONG_ROW_FACTOR * typical]
            if suspects:
                first, last, chars = suspects[0]
                more = f" ({len(suspects)} such rows in all)" if len(suspects) > 1 else ""
                raise InputError(
                    f"{self.path}:{first}: the row that starts here runs to line {last} and is {chars:,} "
                    f"characters long, {chars / typical:,.0f} times the file's median row ({typical:,} "
                    f"characters){more}; a quote left open there would swallow the rows after it: check the "
                    f"quoting of line {first}, {ALLOW_MULTILINE_HINT}"
                )

    def _multiline(self, first: int, last: int, chars: int, long_rows: list[tuple[int, int, int]]) -> None:
        self.multiline += 1
        if self.first_multiline is None:
            self.first_multiline = first
        if self.allow_multiline:
            return
        if last - first > MAX_LINE_BREAKS:
            raise InputError(
                f"{self.path}:{first}: the row that starts here runs to line {last}: its quoted text holds "
                f"{last - first} line breaks (more than {MAX_LINE_BREAKS} are refused, as a quote left open "
                f"swallows the rows after it); check the quoting of line {first}, {ALLOW_MULTILINE_HINT}"
            )
        if chars > LONG_ROW_CHARS:
            long_rows.append((first, last, chars))

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
        self.lines_read = number


def _median(counts: Counter[int]) -> int:
    total, seen = sum(counts.values()), 0
    for value in sorted(counts):
        seen += counts[value]
        if 2 * seen >= total:
            return max(value, 1)
    return 1


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
        raise InputError(f"--format {fmt!r}: use csv, tsv, jsonl, parquet or xlsx")
    kind = fmt.lower() if fmt else FORMATS.get(path.suffix.lower())
    if kind is None:
        raise InputError(
            f"{path}: cannot tell the format from {path.suffix!r}; use .csv, .tsv, .jsonl, .parquet or .xlsx, "
            "or pass --format"
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
