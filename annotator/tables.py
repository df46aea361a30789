"""Read a user's data file (CSV, TSV, JSONL, Parquet, XLSX) into rows that remember where they came from,
so that every complaint about a value can name its file and line."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def _decode(path: Path, data: bytes, encoding: str | None) -> str:
    enc = encoding or "utf-8-sig"
    try:
        return data.decode(enc)
    except LookupError:
        raise InputError(f"unknown encoding {encoding!r}; use e.g. utf-8, latin-1 or cp1252") from None
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(
            f"{path}:{line}: not valid {exc.encoding} (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "save the file as UTF-8 (Excel: 'CSV UTF-8'), or pass --encoding with its real encoding, "
            "e.g. --encoding latin-1"
        ) from None


def _read_delimited(path: Path, text: str, delimiter: str) -> tuple[list[str], list[dict], list[int]]:
    csv.field_size_limit(2**31 - 1)  # long speeches and transcripts are texts too
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise InputError(f"{path}: the file is empty; it needs a header row and data rows") from None
    header = [h.strip() for h in header]
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise InputError(f"{path}:1: duplicate column names {dupes}; give each column its own name")
    rows, lines = [], []
    start = reader.line_num + 1
    try:
        for record in reader:
            if not any(field.strip() for field in record):
                start = reader.line_num + 1
                continue
            if len(record) > len(header):
                raise InputError(
                    f"{path}:{start}: {len(record)} fields but the header has {len(header)}; "
                    "check the delimiter and the quoting of that row"
                )
            rows.append(dict(zip(header, record, strict=False)))
            lines.append(start)
            start = reader.line_num + 1
    except csv.Error as exc:
        raise InputError(
            f"{path}:{reader.line_num}: cannot parse the row ({exc}); check its quoting"
        ) from None
    return header, rows, lines


def _read_jsonl(path: Path, text: str) -> tuple[list[str], list[dict], list[int]]:
    rows, lines, columns = [], [], {}
    # split on newlines only: JSON strings may hold U+2028 and friends, which str.splitlines() splits on
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"{path}:{number}: not valid JSON ({exc.msg}); each line must be one object"
            ) from None
        if not isinstance(obj, dict):
            raise InputError(
                f'{path}:{number}: a JSON {type(obj).__name__}, not an object; use {{"id": ...}}'
            )
        rows.append({k: json_safe(v) for k, v in obj.items()})
        lines.append(number)
        columns.update(dict.fromkeys(obj))
    return list(columns), rows, lines


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


def read_table(path: str | Path, encoding: str | None = None, fmt: str | None = None) -> Table:
    """Read a data file; the format comes from ``fmt`` or the file extension."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path} is a folder; give the data file inside it")
    if not path.is_file():
        hint = "" if path.parent.is_dir() else f" (folder {path.parent} does not exist either)"
        raise InputError(f"file not found: {path}{hint}; check the path")
    if fmt is not None and fmt.lower() not in set(FORMATS.values()):
        raise InputError(f"--format {fmt!r}: use csv, tsv, jsonl, parquet or xlsx")
    kind = fmt.lower() if fmt else FORMATS.get(path.suffix.lower())
    if kind not in set(FORMATS.values()):
        raise InputError(
            f"{path}: cannot tell the format from {path.suffix!r}; use .csv, .tsv, .jsonl, .parquet or .xlsx, "
            "or pass --format"
        )
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if kind in ("parquet", "xlsx"):
        columns, rows, lines = _read_frame(path, kind)
        word = "line" if kind == "xlsx" else "row"
    else:
        text = _decode(path, data, encoding)
        if kind == "jsonl":
            columns, rows, lines = _read_jsonl(path, text)
        else:
            columns, rows, lines = _read_delimited(path, text, "," if kind == "csv" else "\t")
        word = "line"
    if not rows:
        raise InputError(f"{path}: no data rows; nothing to import")
    return Table(path=path, columns=columns, rows=rows, lines=lines, sha256=digest, line_word=word)


def list_problems(items: list[str], limit: int = 5) -> str:
    """'a, b, c and 4 more' for messages that must stay one line."""
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
