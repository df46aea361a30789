"""Documents: import them once, immutably, with every problem named by file and line.

A document's text never changes under its id (codes made on it would silently refer to another text);
re-importing the same file adds nothing. A file is streamed in chunks into one transaction (`DocumentWriter`):
memory stays flat however long the file, and any problem leaves the database as it was.

Human codes are imported by `annotator.data.codes`; its names are re-exported here (`import_codes`,
`add_codes`, `NewCode`, `CodesImported`, `document_ids`, `get_or_create_coder`, `normalise_labels`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from annotator.data.codes import (
    CodesImported,
    NewCode,
    add_codes,
    document_ids,
    get_or_create_coder,
    import_codes,
    normalise_labels,
)
from annotator.data.tables import TableSource, cell, open_table
from annotator.errors import InputError
from annotator.project import Project
from annotator.store.db import bulk_insert
from annotator.store.models import Document, DocumentImport, utcnow

__all__ = [
    "CHUNK_CHARS",
    "CHUNK_DOCS",
    "CodesImported",
    "DocumentWriter",
    "DocumentsImported",
    "NewCode",
    "NewDocument",
    "add_codes",
    "add_documents",
    "document_ids",
    "get_or_create_coder",
    "import_codes",
    "import_documents",
    "normalise_labels",
    "sha256_text",
]


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class NewDocument:
    key: str
    text: str
    meta: dict[str, Any]
    where: str  # file:line, for messages


@dataclass
class DocumentsImported:
    source: str
    added: int
    unchanged: int
    rows: int = 0  # data rows read
    lines: int = 0  # physical lines of a CSV/TSV/JSONL file (header included); 0 for Parquet and XLSX
    multiline: int = 0  # rows whose quoted text holds line breaks (CSV/TSV)
    first_multiline: str | None = None  # file:line of the first of them


class _Problems:
    """Places of one kind of problem: the first few kept for the message, all of them counted."""

    def __init__(self, limit: int = 5) -> None:
        self.shown: list[str] = []
        self.count = 0
        self.limit = limit

    def add(self, item: str) -> None:
        self.count += 1
        if len(self.shown) < self.limit:
            self.shown.append(item)

    def __bool__(self) -> bool:
        return self.count > 0

    def __str__(self) -> str:
        more = self.count - len(self.shown)
        return ", ".join(self.shown) + (f" and {more} more" if more else "")


# SQLite refuses statements with more than 32,766 (older builds: 999) parameters
_LOOKUP_CHUNK = 900


Locate = Callable[[set[str]], dict[str, str]]


class DocumentWriter:
    """Adds documents chunk by chunk inside the caller's transaction, keeping in memory only the set of ids seen
    (for duplicates within the file), never the texts: a file of a million documents is written in the memory
    of one chunk and a million ids (~100 bytes each). Every check holds over the whole stream: once any problem
    is found nothing more is written and the rest is only checked, so that `finish` names every problem of the
    first kind found (duplicate ids, empty texts, NUL characters, changed texts, in that order) and raises, and
    the caller's transaction rolls back.

    ``locate`` finds where ids first appeared (only called to name duplicates): the writer does not keep a
    place per id.
    """

    def __init__(self, session: Session, locate: Locate) -> None:
        self.session = session
        self.added = self.unchanged = 0
        self._locate = locate
        self._seen: set[str] = set()
        self._dupes: set[str] = set()
        self._dupes_shown: dict[str, list[str]] = {}  # the first three duplicated ids -> their later places
        self._empty, self._nul, self._changed = _Problems(), _Problems(), _Problems()
        # a project without documents needs no look-up of the file's ids (the common first import)
        self._stored = session.execute(select(Document.id).limit(1)).first() is not None

    @property
    def _refused(self) -> bool:
        return bool(self._dupes or self._empty or self._nul)

    def add(self, docs: list[NewDocument]) -> None:
        fresh = []
        for d in docs:
            if d.key in self._seen:
                self._dupes.add(d.key)
                if d.key in self._dupes_shown or len(self._dupes_shown) < 3:
                    self._dupes_shown.setdefault(d.key, []).append(d.where)
                continue
            self._seen.add(d.key)
            if not d.text.strip():
                self._empty.add(d.where)
            elif "\x00" in d.text:
                self._nul.add(d.where)
            else:
                fresh.append(d)
        if self._refused or not fresh:
            return
        stored = self._stored_digests([d.key for d in fresh]) if self._stored else {}
        now, rows = utcnow(), []
        for d in fresh:
            digest = sha256_text(d.text)
            known = stored.get(d.key)
            if known is None:
                rows.append(
                    {
                        "doc_key": d.key,
                        "text": d.text,
                        "text_sha256": digest,
                        "meta": d.meta,
                        "split": None,
                        "created_at": now,
                    }
                )
            elif known == digest:
                self.unchanged += 1
            else:
                self._changed.add(f"{d.key!r} ({d.where})")
        if not self._changed:
            bulk_insert(self.session, Document, rows)
            self.added += len(rows)

    def _stored_digests(self, keys: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for start in range(0, len(keys), _LOOKUP_CHUNK):
            part = keys[start : start + _LOOKUP_CHUNK]
            query = select(Document.doc_key, Document.text_sha256).where(col(Document.doc_key).in_(part))
            found.update((key, digest) for key, digest in self.session.execute(query))
        return found

    def finish(self) -> tuple[int, int]:
        """Raise the first kind of problem found; else (added, unchanged)."""
        if self._dupes:
            first = self._locate(set(self._dupes_shown))
            shown = "; ".join(
                f"{k!r} at {first.get(k, '?')} and {ws[0]}" for k, ws in self._dupes_shown.items()
            )
            raise InputError(
                f"duplicate document ids in the file: {shown} ({len(self._dupes)} ids in all); each id must be "
                "unique"
            )
        if self._empty:
            raise InputError(f"empty text at {self._empty}; remove those rows or fill in their text")
        if self._nul:
            raise InputError(f"text with a NUL character at {self._nul}; remove it from the file")
        if self._changed:
            raise InputError(
                f"document ids already imported with a different text: {self._changed}; documents are "
                "immutable so that their codes stay valid: give changed texts new ids"
            )
        return self.added, self.unchanged


def add_documents(session: Session, docs: list[NewDocument]) -> tuple[int, int]:
    """Insert new documents; identical ones are skipped, changed texts refused. Returns (added, unchanged)."""

    def locate(keys: set[str]) -> dict[str, str]:
        return {d.key: d.where for d in reversed(docs) if d.key in keys}  # reversed: the first one stays

    writer = DocumentWriter(session, locate)
    writer.add(docs)
    return writer.finish()


# documents written per chunk: a few MB of rows in memory whatever the file's size
CHUNK_DOCS = 5_000
CHUNK_CHARS = 4_000_000


def _new_documents(source: TableSource, text: str, id: str) -> Iterator[NewDocument]:
    for line, row in source:
        key = cell(row.get(id))
        if not key:
            raise InputError(f"{source.where(line)}: empty id in column {id!r}; every document needs an id")
        raw_text = row.get(text)
        if isinstance(raw_text, (dict, list)) or isinstance(row.get(id), (dict, list)):
            raise InputError(
                f"{source.where(line)}: the id and the text must be plain values, not a JSON object or list"
            )
        meta = {k: v for k, v in row.items() if k not in (id, text) and v not in (None, "")}
        body = "" if raw_text is None else str(raw_text)
        yield NewDocument(key=key, text=body, meta=meta, where=source.where(line))


def _first_places(
    path: str | Path, id: str, encoding: str | None, fmt: str | None, allow_multiline: bool, keys: set[str]
) -> dict[str, str]:
    """Where each of ``keys`` first appears in the file: a second reading, only to name duplicates."""
    found: dict[str, str] = {}
    with open_table(path, encoding=encoding, fmt=fmt, allow_multiline=allow_multiline) as source:
        for line, row in source:
            key = cell(row.get(id))
            if key in keys and key not in found:
                found[key] = source.where(line)
                if len(found) == len(keys):
                    break
    return found


def import_documents(
    project: Project,
    path: str | Path,
    text: str = "text",
    id: str = "id",
    encoding: str | None = None,
    fmt: str | None = None,
    allow_multiline: bool = False,
) -> DocumentsImported:
    """Import a file of documents; columns other than id and text are kept as metadata.

    The file is streamed in chunks into one transaction: memory stays flat however long the file, and any
    problem (or a killed process) leaves the database as it was."""
    with open_table(path, encoding=encoding, fmt=fmt, allow_multiline=allow_multiline) as source:
        source.require(id, "id")
        source.require(text, "text")
        with project.transaction() as session:
            writer = DocumentWriter(
                session, lambda keys: _first_places(path, id, encoding, fmt, allow_multiline, keys)
            )
            chunk: list[NewDocument] = []
            chars = 0
            for doc in _new_documents(source, text, id):
                chunk.append(doc)
                chars += len(doc.text)
                if len(chunk) >= CHUNK_DOCS or chars >= CHUNK_CHARS:
                    writer.add(chunk)
                    chunk, chars = [], 0
            writer.add(chunk)
            added, unchanged = writer.finish()
            if added:
                session.add(
                    DocumentImport(source=Path(path).name, id_column=id, text_column=text, added=added)
                )
    return DocumentsImported(
        source=str(source.path),
        added=added,
        unchanged=unchanged,
        rows=source.rows_read,
        lines=source.lines_read,
        multiline=source.multiline,
        first_multiline=source.where(source.first_multiline) if source.first_multiline else None,
    )
