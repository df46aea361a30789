"""Every table of the annotator database, in one module.

Human codes, LLM answers and baseline predictions are all annotations of a run by a coder, so every
coder is read the same way. Timestamps are timezone-aware UTC. JSON columns use the generic JSON type, so the
schema works on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Text,
    UniqueConstraint,
)
from sqlmodel import AutoString, Field, SQLModel

from annotator.store.times import as_utc as as_utc  # re-exported: callers read times through the models
from annotator.store.times import utcnow

# The closed vocabularies of the string columns: typed here, and held by CHECK constraints in the database
# (migration 0005), so a misspelt value fails where it is written rather than in a later figure
CoderKind = Literal["human", "llm", "baseline", "gold"]  # coders.kind, and runs.kind (the coder's kind)
RunStatus = Literal["running", "done", "interrupted", "failed"]  # runs.status
AnnotationStatus = Literal["ok", "invalid", "error"]  # annotations.status: a label, none that is valid, none
DocumentSplit = Literal["dev", "test"]  # documents.split; NULL: not assigned yet
SplitScope = Literal["all", "new"]  # splits.scope: every document was (re)assigned, or only unassigned ones
CoderRole = Literal[
    "coder", "lead"
]  # coder_accounts.role: codes its own queue, or also sees the lead's pages
Adjudicated = Literal["unanimous", "adjudicated"]  # adjudications.how: every coder agreed, or a lead decided

CODER_KINDS: tuple[CoderKind, ...] = get_args(CoderKind)
RUN_STATUSES: tuple[RunStatus, ...] = get_args(RunStatus)
ANNOTATION_STATUSES: tuple[AnnotationStatus, ...] = get_args(AnnotationStatus)
DOCUMENT_SPLITS: tuple[DocumentSplit, ...] = get_args(DocumentSplit)
SPLIT_SCOPES: tuple[SplitScope, ...] = get_args(SplitScope)
CODER_ROLES: tuple[CoderRole, ...] = get_args(CoderRole)
ADJUDICATED: tuple[Adjudicated, ...] = get_args(Adjudicated)
REVIEW_TAGS = ("codebook unclear", "model error", "human error", "ambiguous text")  # review_notes.tags


def one_of(table: str, column: str, values: tuple[str, ...]) -> CheckConstraint:
    """``column IN (values)``, named ``ck_<table>_<column>``. NULL passes (a CHECK refuses only false), so a
    nullable column stays nullable."""
    listed = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
    return CheckConstraint(f"{column} IN ({listed})", name=f"ck_{table}_{column}")


def _fk(target: str, *, nullable: bool = False, index: bool = True) -> Any:
    return Field(
        default=None,
        sa_column=Column(Integer, ForeignKey(target, ondelete="CASCADE"), nullable=nullable, index=index),
    )


class Document(SQLModel, table=True):
    __tablename__ = "documents"
    __table_args__ = (one_of("documents", "split", DOCUMENT_SPLITS),)

    id: int | None = Field(default=None, primary_key=True)
    doc_key: str = Field(unique=True, index=True, description="the user's own id")
    text: str = Field(sa_type=Text)
    text_sha256: str = Field(index=True, max_length=64)
    meta: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    split: DocumentSplit | None = Field(default=None, index=True, sa_type=AutoString(length=8))
    created_at: datetime = Field(default_factory=utcnow)


class CodebookVersion(SQLModel, table=True):
    __tablename__ = "codebooks"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True)
    version: int
    sha256: str = Field(max_length=64)
    body: str = Field(sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow)


class PromptVersion(SQLModel, table=True):
    __tablename__ = "prompts"
    __table_args__ = (UniqueConstraint("codebook", "name", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    codebook: str = Field(index=True)
    name: str
    version: int
    sha256: str = Field(max_length=64)
    body: str = Field(sa_type=Text)
    params: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow)
    frozen_at: datetime | None = None
    frozen_codebook_sha256: str | None = Field(default=None, max_length=64)  # the codebook it was frozen with

    @property
    def ref(self) -> str:
        return f"{self.codebook}/{self.name}.v{self.version}"


class Coder(SQLModel, table=True):
    __tablename__ = "coders"
    __table_args__ = (one_of("coders", "kind", CODER_KINDS),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True)
    kind: CoderKind = Field(sa_type=AutoString(length=16))
    created_at: datetime = Field(default_factory=utcnow)


class Run(SQLModel, table=True):
    """One coding pass: a human import, an LLM run or a baseline, with everything needed to reproduce it."""

    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_spec_sha256", "spec_sha256", unique=True),
        one_of("runs", "kind", CODER_KINDS),
        one_of("runs", "status", RUN_STATUSES),
    )

    id: int | None = Field(default=None, primary_key=True)
    coder_id: int = _fk("coders.id")
    kind: CoderKind = Field(sa_type=AutoString(length=16))  # the coder's kind at the time of the run
    codebook_id: int | None = _fk("codebooks.id", nullable=True)
    prompt_id: int | None = _fk("prompts.id", nullable=True)
    model: str | None = None
    params: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    split: str | None = Field(default=None, max_length=8)
    status: RunStatus = Field(default="running", sa_type=AutoString(length=16))
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    n_items: int = 0
    n_ok: int = 0
    n_invalid: int = 0
    n_error: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    versions: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    source: str | None = None  # where an import came from (file name and sha256)
    # LLM runs: the hash of everything that determines the answers, so that starting the same spec again
    # resumes this run instead of paying for a second one (unique; NULL for imports)
    spec_sha256: str | None = Field(default=None, max_length=64)
    sample: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)  # split, n, seed, repeats
    error: str | None = Field(default=None, sa_type=Text)  # why a run failed or stopped early
    # a lease: the process working on the run renews it; a second process refuses while it is alive
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_pid: int | None = None
    lease_host: str | None = None
    lease_until: datetime | None = None
    # `annotator runs archive`: hidden from listings, default comparisons and the report; kept for provenance
    archived_at: datetime | None = None


class Annotation(SQLModel, table=True):
    __tablename__ = "annotations"
    __table_args__ = (
        UniqueConstraint("run_id", "document_id", "repeat"),
        one_of("annotations", "status", ANNOTATION_STATUSES),
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = _fk("runs.id", index=False)  # the unique constraint indexes it
    document_id: int = _fk("documents.id")
    repeat: int = 0
    label: str | None = None
    probability: float | None = None
    rationale: str | None = Field(default=None, sa_type=Text)
    status: AnnotationStatus = Field(default="ok", sa_type=AutoString(length=8))
    raw: str | None = Field(default=None, sa_type=Text)
    error: str | None = Field(default=None, sa_type=Text)
    tokens_in: int | None = None
    tokens_out: int | None = None
    latency_ms: float | None = None
    attempts: int = 1  # requests made for this answer: retries and re-asks included
    cached: bool = False  # answered from the cache, no API call
    created_at: datetime = Field(default_factory=utcnow)


class RunDocument(SQLModel, table=True):
    """A run's asked set: each document the run selected (its split, sample or ``--coded-by`` choice).

    Every figure that compares coders is computed on the documents each of them was asked (see
    `annotator.asked`): a document a run never selected is out of scope, a selected one it has no valid answer
    for is an error. Written when the run is created, before any answer, so an interrupted run's unanswered
    documents still count as asked. Human and gold imports have no rows: what they coded is what they were
    asked.
    """

    __tablename__ = "run_documents"

    run_id: int = Field(
        sa_column=Column(Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True, nullable=False)
    )
    document_id: int = Field(
        sa_column=Column(
            Integer,
            ForeignKey("documents.id", ondelete="CASCADE"),
            primary_key=True,
            nullable=False,
            index=True,
        )
    )


class LLMCache(SQLModel, table=True):
    __tablename__ = "llm_cache"

    key: str = Field(primary_key=True, max_length=64)
    response: str = Field(sa_type=Text)  # the message content as the model returned it
    usage: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    logprobs: list[Any] | None = Field(default=None, sa_type=JSON)
    model: str | None = None
    created_at: datetime = Field(default_factory=utcnow)


class ProviderBatch(SQLModel, table=True):
    """One file of requests sent to a provider's Batch API for an LLM run (`annotator run --batch`).

    ``keys`` are the answer-cache keys of its requests (each line's ``custom_id``): collecting the batch puts
    each answer in the cache under its key, and the run then reads them as a live run reads its cache.
    ``state`` is the provider's word for it (validating, in_progress, finalizing, completed, failed, expired,
    cancelling, cancelled); ``collected_at`` is set once its answers are stored (an open batch has none).
    Untrusted text from the provider (``error``) is stored redacted."""

    __tablename__ = "provider_batches"

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = _fk("runs.id")
    provider: str = Field(max_length=32)
    remote_id: str = Field(max_length=128)  # the provider's batch id
    input_file_id: str = Field(max_length=128)
    state: str = Field(max_length=16)
    n_requests: int = 0
    keys: list[str] = Field(default_factory=list, sa_type=JSON)
    answered: int = 0  # requests the provider says it completed
    failed: int = 0  # requests the provider says failed
    created_at: datetime = Field(default_factory=utcnow)
    checked_at: datetime | None = None
    collected_at: datetime | None = None
    error: str | None = Field(default=None, sa_type=Text)


class Embedding(SQLModel, table=True):
    __tablename__ = "embeddings"
    __table_args__ = (UniqueConstraint("model", "text_sha256"),)

    id: int | None = Field(default=None, primary_key=True)
    model: str
    text_sha256: str = Field(max_length=64)
    dim: int
    vector: bytes = Field(sa_type=LargeBinary)


class DocumentImport(SQLModel, table=True):
    """Each `annotator import docs` that added documents: the file and the columns its ids and texts came from
    (an export labels its id column with the user's own column name)."""

    __tablename__ = "document_imports"

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow)
    source: str  # the file's name (not its path: a path on the user's machine says nothing elsewhere)
    id_column: str
    text_column: str
    added: int = 0


class Metric(SQLModel, table=True):
    """A stored result of agreement or validation, read back by compare and report."""

    __tablename__ = "metrics"
    __table_args__ = (Index("ix_metrics_kind_run", "kind", "run_id"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    run_id: int | None = _fk("runs.id", nullable=True, index=False)
    split: str | None = Field(default=None, max_length=8)
    params: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    result: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow)


class SplitEvent(SQLModel, table=True):
    """Each time documents were assigned to dev/test: the parameters, so the split can be reproduced."""

    __tablename__ = "splits"
    __table_args__ = (one_of("splits", "scope", SPLIT_SCOPES),)

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow)
    test_fraction: float
    seed: int
    stratify: str | None = None
    forced: bool = False
    scope: SplitScope = Field(default="all", sa_type=AutoString(length=8))  # all documents, or new ones only
    n_dev: int = 0
    n_test: int = 0


class CoderAccount(SQLModel, table=True):
    """A human coder who signs in to the workbench (`annotator serve`) with a personal link.

    Only the sha256 of the link's token is stored: the database never holds a way in. Revoking sets
    ``revoked_at``; the coder's codes stay (they are ordinary human codes)."""

    __tablename__ = "coder_accounts"
    __table_args__ = (one_of("coder_accounts", "role", CODER_ROLES),)

    id: int | None = Field(default=None, primary_key=True)
    coder_id: int = Field(
        sa_column=Column(Integer, ForeignKey("coders.id", ondelete="CASCADE"), nullable=False, unique=True)
    )
    role: CoderRole = Field(default="coder", sa_type=AutoString(length=8))
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None


class Assignment(SQLModel, table=True):
    """One document in a human coder's queue (`annotator assign`), in the order it is shown.

    ``overlap`` marks the documents every coder of the assignment was given (for reliability). The code itself
    is an ordinary annotation of the coder's human run; what the workbench adds to it lives here: the seconds
    spent, a memo, the "codebook unclear" flag, and whether the coder skipped the document."""

    __tablename__ = "assignments"
    __table_args__ = (UniqueConstraint("coder_id", "codebook", "document_id", name="uq_assignments_item"),)

    id: int | None = Field(default=None, primary_key=True)
    coder_id: int = _fk("coders.id")
    document_id: int = _fk("documents.id")
    codebook: str = Field(max_length=128)  # the codebook's name: codes are stored under its current version
    position: int  # the order in the queue
    overlap: bool = False
    batch: int  # the `assign` that queued it (one number per call)
    assigned_at: datetime = Field(default_factory=utcnow)
    coded_at: datetime | None = None
    seconds: float | None = None  # from showing the document to the code, summed over re-codes
    memo: str | None = Field(default=None, sa_type=Text)
    unclear: bool = False  # the coder flagged the codebook as unclear for this document
    skipped: bool = False


class ReviewNote(SQLModel, table=True):
    """A lead's memo and tags on one document of a run's disagreements (`annotator serve`, review pages).

    Stored with the run and the codebook version the run coded under, so the methods report can say why a
    codebook changed (counts per tag and per label pair next to the codebook's versions)."""

    __tablename__ = "review_notes"
    __table_args__ = (UniqueConstraint("run_id", "document_id", name="uq_review_notes_item"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = _fk("runs.id", index=False)  # the unique constraint indexes it
    document_id: int = _fk("documents.id")
    codebook_id: int | None = _fk("codebooks.id", nullable=True, index=False)
    author_id: int | None = _fk("coders.id", nullable=True, index=False)
    reference: str = Field(max_length=128)  # what the run was compared with: "humans" or "gold:NAME"
    truth: str | None = None  # the reference's label then
    label: str | None = None  # the run's label then (None: no valid answer)
    tags: list[str] = Field(default_factory=list, sa_type=JSON)  # of REVIEW_TAGS
    memo: str | None = Field(default=None, sa_type=Text)
    updated_at: datetime = Field(default_factory=utcnow)


class Adjudication(SQLModel, table=True):
    """One document of an adjudicated gold coder: passed through because every coder agreed, or decided by a
    lead with a note. The gold label itself is an ordinary annotation of the gold coder's run."""

    __tablename__ = "adjudications"
    __table_args__ = (
        UniqueConstraint("gold_id", "document_id", name="uq_adjudications_item"),
        one_of("adjudications", "how", ADJUDICATED),
    )

    id: int | None = Field(default=None, primary_key=True)
    gold_id: int = _fk("coders.id", index=False)  # the gold coder; the unique constraint indexes it
    document_id: int = _fk("documents.id")
    how: Adjudicated = Field(sa_type=AutoString(length=12))
    label: str
    by_id: int | None = _fk("coders.id", nullable=True, index=False)  # the lead who decided (None: unanimous)
    note: str | None = Field(default=None, sa_type=Text)
    codes: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)  # coder -> label when it was decided
    decided_at: datetime = Field(default_factory=utcnow)
