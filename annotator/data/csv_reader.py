"""The streaming CSV/TSV reader with its quote guards: rows come one at a time with the line each starts on,
and a file whose quoting would silently merge rows into one text is refused, not read.

The multi-line guard. A stray quote (`s-500,"oops`) makes a CSV reader take every following line as part of
one text, up to the next quote or the end of the file: hundreds of rows become one document and the import
"succeeds". A quote that never closes is always refused; a row whose quoted text holds line breaks is refused
(unless --allow-multiline) when it holds more than MAX_LINE_BREAKS of them, or when it is longer than
LONG_ROW_CHARS and more than LONG_ROW_FACTOR times the file's median row: a few paragraphs pass, a swallowed
block of rows does not.
"""

from __future__ import annotations

import csv
import itertools
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from annotator.errors import InputError, arg

MAX_LINE_BREAKS = 20
LONG_ROW_CHARS = 10_000
LONG_ROW_FACTOR = 50
ALLOW_MULTILINE_HINT = f"or pass {arg('allow_multiline')} if texts with that many lines are intended"
# fed to the CSV reader after the file's last line: it comes back inside a field only when a quoted field is
# still open at the end of the file (a noncharacter, so no real file holds it)
_END = "\ufdd0annotator: end of file\ufdd0"


def _line_breaks(text: str) -> int:
    return text.count("\n") + text.count("\r") - text.count("\r\n")


def _median(counts: Counter[int]) -> int:
    total, seen = sum(counts.values()), 0
    for value in sorted(counts):
        seen += counts[value]
        if 2 * seen >= total:
            return max(value, 1)
    return 1


class DelimitedReader:
    """One open CSV (``kind="csv"``) or TSV file read row by row. The header is read (and checked) on
    construction; `rows` yields (line, row) and runs the checks that need the whole file (the long multi-line
    rows) when it ends. Counts what it read: ``lines_read`` (physical lines, header included, known at the
    end), ``multiline`` (rows whose quoted text holds line breaks) and ``first_multiline`` (the line of the
    first of them)."""

    def __init__(self, path: Path, handle: IO[str], kind: str, allow_multiline: bool = False) -> None:
        self.path, self.kind, self.allow_multiline = path, kind, allow_multiline
        self.lines_read = 0
        self.multiline = 0
        self.first_multiline: int | None = None
        csv.field_size_limit(2**31 - 1)  # long speeches and transcripts are texts too
        # strict: a quote that closes and is followed by more text (the mark of a stray quote closed by the
        # next field's opening quote) is an error, not text run together
        self._reader = csv.reader(
            itertools.chain(handle, [_END]),
            delimiter="," if kind == "csv" else "\t",
            strict=True,
        )
        self.header = self._read_header()

    def _read_header(self) -> list[str]:
        reader = self._reader
        raw = self._record(1)
        if raw == [_END]:
            raise InputError(f"{self.path}: the file is empty; it needs a header row and data rows")
        if raw and _END in raw[-1]:
            raise self._unclosed(1, raw, reader.line_num - 1)
        header = [h.strip() for h in raw]
        dupes = sorted({h for h in header if header.count(h) > 1})
        if dupes:
            raise InputError(f"{self.path}:1: duplicate column names {dupes}; give each column its own name")
        return header

    def _record(self, start: int) -> list[str]:
        reader = self._reader
        try:
            return next(reader)
        except csv.Error as exc:
            line = reader.line_num
            if "unexpected end of data" in str(exc):  # the end marker fell inside a quoted field
                raise self._unclosed(start, [], line - 1) from None
            if "expected after" in str(exc):
                delimiter = "comma" if self.kind == "csv" else "tab"
                if line == start:  # on one line: text (often a space) after a quoted field, not a stray quote
                    raise InputError(
                        f"{self.path}:{start}: text after a closing quote on line {start} (as in "
                        f'`"a text" ,label`): a quoted field must end at a {delimiter} or the line\'s end; remove '
                        'what follows the quote, or write a quote inside a quoted text twice: ""'
                    ) from None
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

    def rows(self) -> Iterator[tuple[int, dict[str, Any]]]:
        reader, header = self._reader, self.header
        width = len(header)
        # characters per row -> rows: the file's median row at the end, in little memory
        lengths: Counter[int] = Counter()
        # (first line, last line, characters) of multi-line rows over LONG_ROW_CHARS, judged at the end
        long_rows: list[tuple[int, int, int]] = []
        start = reader.line_num + 1
        while True:
            record = self._record(start)
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
