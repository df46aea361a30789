"""Documents and human codes: import them once, immutably, with every problem named by file and line.

A document's text never changes under its id (codes made on it would silently refer to another text);
re-importing the same file adds nothing. Human codes become annotations of one import run per coder and
codebook version, so that humans, LLMs and baselines are read the same way.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from annotator.codebook import Codebook
from annotator.data.tables import TableSource, cell, list_problems, open_table, read_table
from annotator.errors import InputError
from annotator.project import Project
from annotator.store.db import bulk_insert
from annotator.store.models import (
    CODER_KINDS,
    Annotation,
    CodebookVersion,
    Coder,
    Document,
    DocumentImport,
    Run,
    utcnow,
)
from annotator.store.registry import project_codebook, register_codebook


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


@dataclass
class CodesImported:
    source: str
    coders: dict[str, int]  # coder -> codes added
    unchanged: int
    blank: int
    codebook: str


def _check_unique(keys: list[str], wheres: list[str], what: str) -> None:
    counts = Counter(keys)
    dupes = [k for k, n in counts.items() if n > 1]
    if dupes:
        first = {k: [w for kk, w in zip(keys, wheres, strict=True) if kk == k][:2] for k in dupes[:3]}
        shown = "; ".join(f"{k!r} at {' and '.join(ws)}" for k, ws in first.items())
        raise InputError(
            f"duplicate {what} in the file: {shown} ({len(dupes)} ids in all); each id must be unique"
        )


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
        source.require(id, "--id")
        source.require(text, "--text")
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


@dataclass
class NewCode:
    key: str  # document id
    label: str  # as written in the file
    raw: str | None
    where: str


def normalise_labels(codebook: Codebook, codes: list[NewCode]) -> list[str]:
    """Each code in the codebook's spelling; any unknown label stops everything, all of them listed."""
    labels: list[str] = []
    unknown: Counter[str] = Counter()
    first_seen: dict[str, str] = {}
    for c in codes:
        label = codebook.normalize_label(c.label)
        if label is None:
            unknown[c.label] += 1
            first_seen.setdefault(c.label, c.where)
        labels.append(label or "")
    if unknown:
        shown = [f"{v!r} ({n}x, first at {first_seen[v]})" for v, n in unknown.most_common()]
        raise InputError(
            f"labels not in codebook {codebook.ref}: {list_problems(shown)}; allowed: "
            f"{', '.join(codebook.allowed_labels)}; fix the file or add the label to the codebook (new version)"
        )
    return labels


def document_ids(session: Session) -> dict[str, int]:
    return dict(session.execute(select(Document.doc_key, Document.id)).all())


def get_or_create_coder(session: Session, name: str, kind: str) -> Coder:
    if kind not in CODER_KINDS:
        raise InputError(f"coder kind {kind!r} is not one of {', '.join(CODER_KINDS)}")
    coder = session.execute(select(Coder).where(col(Coder.name) == name)).scalar_one_or_none()
    if coder is None:
        coder = Coder(name=name, kind=kind)
        session.add(coder)
        session.flush()
    elif coder.kind != kind:
        raise InputError(
            f"coder {name!r} already exists as a {coder.kind} coder, not {kind}; use another name"
        )
    return coder


def _import_run(session: Session, coder: Coder, codebook_row: CodebookVersion) -> Run:
    run = session.execute(
        select(Run).where(
            col(Run.coder_id) == coder.id,
            col(Run.codebook_id) == codebook_row.id,
            col(Run.kind) == coder.kind,
        )
    ).scalar_one_or_none()
    if run is None:
        assert coder.id is not None and codebook_row.id is not None
        run = Run(
            coder_id=coder.id,
            kind=coder.kind,
            codebook_id=codebook_row.id,
            status="done",
            params={"sources": []},
            finished_at=utcnow(),
        )
        session.add(run)
        session.flush()
    return run


def add_codes(
    session: Session,
    codebook: Codebook,
    codebook_row: CodebookVersion,
    coder_name: str,
    kind: str,
    codes: list[NewCode],
    source: dict[str, Any],
    doc_ids: dict[str, int] | None = None,
) -> tuple[int, int]:
    """Store one coder's codes (all checked first, nothing written on any problem). Returns (added, unchanged).

    ``doc_ids`` (document key -> row id) may be passed by callers adding many coders at once.
    """
    _check_unique([c.key for c in codes], [c.where for c in codes], f"document ids for coder {coder_name!r}")
    if doc_ids is None:
        doc_ids = document_ids(session)
    missing = [f"{c.key!r} ({c.where})" for c in codes if c.key not in doc_ids]
    if missing:
        raise InputError(
            f"codes for documents that are not imported: {list_problems(missing)}; import the documents first "
            "(`annotator import docs`) or fix the ids"
        )
    labels = normalise_labels(codebook, codes)
    coder = get_or_create_coder(session, coder_name, kind)
    run = _import_run(session, coder, codebook_row)
    existing = dict(
        session.execute(
            select(Annotation.document_id, Annotation.label).where(col(Annotation.run_id) == run.id)
        ).all()
    )
    now, rows, unchanged, conflicts = utcnow(), [], 0, []
    for c, label in zip(codes, labels, strict=True):
        doc_id = doc_ids[c.key]
        if doc_id in existing:
            if existing[doc_id] == label:
                unchanged += 1
            else:
                conflicts.append(f"{c.key!r} ({c.where}: {label}, stored: {existing[doc_id]})")
            continue
        rows.append(
            {
                "run_id": run.id,
                "document_id": doc_id,
                "repeat": 0,
                "label": label,
                "status": "ok",
                "raw": c.raw if c.raw is not None else c.label,
                "created_at": now,
            }
        )
    if conflicts:
        raise InputError(
            f"coder {coder_name!r} already coded these documents differently: {list_problems(conflicts)}; "
            "codes are not overwritten: import the revision under a new coder name"
        )
    bulk_insert(session, Annotation, rows)
    if rows:
        run.params = {
            **run.params,
            "sources": [*run.params.get("sources", []), {**source, "added": len(rows)}],
        }
        run.n_items = run.n_ok = run.n_items + len(rows)
        run.finished_at = now
        run.source = source.get("file")
        session.add(run)
    return len(rows), unchanged


def import_codes(
    project: Project,
    path: str | Path,
    label: str = "label",
    id: str = "id",
    coder: str | None = None,
    coder_column: str | None = None,
    codebook: str | None = None,
    kind: str = "human",
    encoding: str | None = None,
    fmt: str | None = None,
    allow_multiline: bool = False,
) -> CodesImported:
    """Import human (or gold) codes: one coder (``coder``) or long format with a coder column."""
    if coder is not None and not coder.strip():
        raise InputError("--coder: give the coder a name, e.g. --coder alice")
    if (coder is None) == (coder_column is None):
        raise InputError("name the coder with --coder NAME, or give a coder column with --coder-column COL")
    cb = project_codebook(project, codebook)
    table = read_table(path, encoding=encoding, fmt=fmt, allow_multiline=allow_multiline)
    table.require(id, "--id")
    table.require(label, "--label")
    if coder_column:
        table.require(coder_column, "--coder-column")
    by_coder: dict[str, list[NewCode]] = {}
    blank = 0
    for i, row in enumerate(table.rows):
        where = table.where(i)
        key, value = cell(row.get(id)), cell(row.get(label))
        name = coder or cell(row.get(coder_column or ""))
        if not key:
            raise InputError(f"{where}: empty id in column {id!r}; every code needs a document id")
        if not name:
            raise InputError(f"{where}: empty coder name in column {coder_column!r}")
        if not value:
            blank += 1  # an uncoded item: missing data, not a label
            continue
        by_coder.setdefault(name, []).append(NewCode(key=key, label=value, raw=value, where=where))
    source = {"file": table.path.name, "sha256": table.sha256, "at": utcnow().isoformat(timespec="seconds")}
    added: dict[str, int] = {}
    unchanged = 0
    normalise_labels(cb, [c for codes in by_coder.values() for c in codes])  # every unknown label at once
    with project.transaction() as session:
        cb_row = register_codebook(session, cb, str(project.codebook_path(cb.name)))
        doc_ids = document_ids(session)
        for name, codes in by_coder.items():
            added[name], same = add_codes(session, cb, cb_row, name, kind, codes, source, doc_ids)
            unchanged += same
    return CodesImported(
        source=str(table.path), coders=added, unchanged=unchanged, blank=blank, codebook=cb.ref
    )
