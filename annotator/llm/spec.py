"""What a labeling run is: the request a user makes, resolved into everything that determines its answers.

Two runs with the same spec ask the same questions, so the spec's hash identifies a run: starting the same
spec again resumes it instead of paying twice. Concurrency, cost limits and timeouts are not in the spec:
they change how fast answers come, not what they are.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from sqlmodel import Session, col, select

from annotator.codebook import Codebook
from annotator.data.selection import CodedBy, select_coded
from annotator.errors import AnnotatorError, arg
from annotator.llm.providers import ModelRef, check_url, parse_model
from annotator.llm.response import json_schema, response_format, response_model
from annotator.project import Project
from annotator.prompts import DocumentInput, Message, PromptRef, PromptTemplate, load_prompt, parse_ref
from annotator.store.models import Document
from annotator.store.registry import find_prompt_version, project_codebook

SPLITS = ("dev", "test", "all")


class RunError(AnnotatorError):
    """A run request that cannot be carried out as asked."""


@dataclass
class RunRequest:
    """A labeling run as a user asks for it (CLI options or the Python API)."""

    prompt: str
    model: str | None = None
    base_url: str | None = None
    split: str = "dev"
    sample: int | None = None
    seed: int = 0
    repeats: int = 1
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    concurrency: int | None = None
    max_cost: float | None = None
    reasks: int = 1
    retries: int = 5
    max_wait: float = 300.0  # seconds an item waits through rate limits (429s) before it is an error
    timeout: float | None = None
    cache: bool = True
    logprobs: bool | None = None  # None: where the provider supports them
    tag: str | None = None  # a name that makes an otherwise identical run a separate one
    # only the documents these coders coded ("alice,bob", "humans", "gold"); --sample then draws within them
    coded_by: str | list[str] | None = None
    coded_by_all: bool = (
        False  # False: documents any of them coded (union); True: every one of them (intersection)
    )
    truncate: bool = False  # local models: cut a document that does not fit the context instead of an error
    # an OpenAI-compatible server that says nothing about its model (no /v1/models): the address of another
    # server known to serve the same model, whose cached answers this run may then use
    same_model_as: str | None = None
    # through the provider's Batch API (openai/, groq/): half the price, answers within 24 hours; not part of
    # the spec (a batch run and a live run of the same settings are the same run)
    batch: bool = False


@dataclass(frozen=True)
class Doc:
    id: int
    key: str
    text: str
    meta: dict[str, Any]
    split: str | None


@dataclass
class Item:
    document_id: int
    doc_key: str
    text: str
    meta: dict[str, Any]
    repeat: int


@dataclass
class ResolvedRun:
    request: RunRequest
    template: PromptTemplate
    codebook: Codebook
    model: ModelRef
    params: dict[str, Any]  # model parameters sent with every request
    logprobs: bool
    schema: dict[str, Any]
    response_format: dict[str, Any]
    answer_model: Any
    documents: list[Doc]
    spec: dict[str, Any] = field(default_factory=dict)
    spec_sha256: str = ""
    coded_by: CodedBy | None = None
    cache_model: dict[str, Any] = field(default_factory=dict)  # the model's part of every cache key

    @property
    def max_tokens(self) -> int | None:
        value = self.params.get("max_tokens")
        return int(value) if value is not None else None

    def items(self) -> list[Item]:
        return [
            Item(d.id, d.key, d.text, d.meta, r) for r in range(self.request.repeats) for d in self.documents
        ]

    def payload(self, messages: list[Message], params: dict[str, Any]) -> dict[str, Any]:
        """The chat-completions request body for ``messages`` with one repeat's ``params``."""
        body: dict[str, Any] = {
            "model": self.model.model,
            "messages": messages,
            **params,
            "response_format": self.response_format,
        }
        if self.logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = 5
        return body

    def params_for(self, repeat: int) -> dict[str, Any]:
        """Each repeat gets its own seed (seed + repeat), so sampled repeats differ reproducibly."""
        if repeat and "seed" in self.params:
            return {**self.params, "seed": self.params["seed"] + repeat}
        return self.params

    def messages(self, item: Item) -> list[Message]:
        return self.template.render(
            self.codebook, DocumentInput(id=item.doc_key, text=item.text, meta=item.meta)
        )


@dataclass
class ContextLimit:
    """A model's context window and how to count a prompt's tokens in it (for the local model: its server's own
    tokenizer, through llama.cpp's token-counting endpoint, so the count is exact).

    A prompt that cannot fit is not sent: llama.cpp would refuse it with an HTTP 400 (and log a line on
    stderr). Counting every prompt would cost a request each, so only prompts that might not fit are counted:
    a token covers at least one byte of text, so a prompt whose UTF-8 size plus the chat template's markers
    (``OVERHEAD`` + ``PER_MESSAGE`` each) is within the budget surely fits.
    """

    OVERHEAD = 64  # a default system prompt some chat templates add, and the assistant's opening
    PER_MESSAGE = 8  # role markers around each message

    tokens: int  # the context one request gets
    count: Callable[[list[Message]], int]
    reserve: int  # of which kept for the answer: max_tokens when set, else ANSWER_TOKENS
    truncate: bool = False

    @property
    def budget(self) -> int:
        return self.tokens - self.reserve

    def surely_fits(self, messages: list[Message]) -> bool:
        size = sum(len(m["content"].encode("utf-8")) + self.PER_MESSAGE for m in messages)
        return size + self.OVERHEAD <= self.budget

    def measure(self, messages: list[Message]) -> int | None:
        """The prompt's tokens when it might not fit, None when it surely fits."""
        return None if self.surely_fits(messages) else self.count(messages)

    def too_long(self, n: int) -> str:
        return (
            f"longer than the model's context ({n} tokens; it reads {self.tokens}, {self.reserve} of them kept "
            "for the answer): not sent; --truncate cuts such documents to fit"
        )


ANSWER_TOKENS = 64  # assumed answer length when a run sets no max_tokens


@dataclass
class Fitted:
    """A prompt checked against a context: the messages to send (None: none fit) and what was done."""

    messages: list[Message] | None
    note: str | None = None  # on a truncated document: what was cut, stored with its answer
    error: str | None = None  # on a document that does not fit: why no request was made


def fit(resolved: ResolvedRun, item: Item, messages: list[Message], limit: ContextLimit) -> Fitted:
    """``messages`` if they fit the context; else, with --truncate, the document cut so they do (the cut is
    found by re-counting: a few requests to the tokenizer), else an error."""
    n = limit.measure(messages)
    if n is None or n <= limit.budget:
        return Fitted(messages)
    if not limit.truncate:
        return Fitted(None, error=limit.too_long(n))
    text = item.text
    empty = limit.count(resolved.messages(replace(item, text=".")))  # the prompt around the document
    room = limit.budget - empty
    if room <= 0:
        return Fitted(
            None,
            error=f"the prompt without the document already takes {empty} tokens, more than the {limit.budget} "
            f"the model's context leaves (it reads {limit.tokens}, {limit.reserve} kept for the answer)",
        )
    keep = int(len(text) * room / max(n - empty, 1) * 0.97)
    for _ in range(12):
        cut = replace(item, text=text[:keep])
        shorter = resolved.messages(cut)
        counted = limit.count(shorter)
        if counted <= limit.budget:
            return Fitted(
                shorter,
                note=f"truncated to fit the model's context: {keep} of {len(text)} characters kept "
                f"({counted} of {n} prompt tokens)",
            )
        keep = int(keep * min(0.95, limit.budget / counted))
    return Fitted(None, error=limit.too_long(n))


def sha256_json(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def select_documents(
    session: Session,
    split: str,
    sample: int | None,
    seed: int,
    coded_by: str | list[str] | None = None,
    coded_by_all: bool = False,
    codebook: str | None = None,
) -> tuple[list[Doc], CodedBy | None]:
    """The split's documents in key order (only those ``coded_by`` coded, when given), or a seeded sample of
    them (the same on every machine)."""
    if split not in SPLITS:
        raise RunError(f"{arg('split', split)}: use dev, test or all")
    query = select(Document.id, Document.doc_key).order_by(col(Document.doc_key))
    if split != "all":
        query = query.where(col(Document.split) == split)
    keys = session.exec(query).all()
    if not keys:
        hint = (
            "import documents first"
            if split == "all"
            else "assign splits first (`annotator split --test 0.3 --seed 1`)"
        )
        raise RunError(f"no documents in split {split!r}; {hint}")
    selection = None
    where = f"the {split} split" if split != "all" else "the project"
    if coded_by is not None:
        selection, chosen = select_coded(
            session,
            coded_by,
            "all" if coded_by_all else "any",
            [int(i or 0) for i, _ in keys],
            codebook=codebook,
            where=where,
        )
        keys = [(i, k) for i, k in keys if i in chosen]
        where = f"{where} {selection.describe()}"
    if sample is not None:
        if not 1 <= sample <= len(keys):
            raise RunError(
                f"{arg('sample', sample)}: {where} has {len(keys)} documents; choose 1 to {len(keys)}"
            )
        import numpy as np  # here: ~30 ms to import, and only a sampled run needs it

        chosen_idx = np.random.default_rng(seed).choice(len(keys), size=sample, replace=False)
        keys = [keys[i] for i in sorted(chosen_idx)]
    wanted = [doc_id for doc_id, _ in keys]
    rows: dict[int, Doc] = {}
    table = Document.__table__  # type: ignore[attr-defined]
    columns = (table.c.id, table.c.doc_key, table.c.text, table.c.meta, table.c.split)
    for start in range(0, len(wanted), 900):
        chunk = wanted[start : start + 900]
        for row in session.connection().execute(
            table.select().with_only_columns(*columns).where(table.c.id.in_(chunk))
        ):
            rows[row.id] = Doc(row.id, row.doc_key, row.text, row.meta or {}, row.split)
    return [rows[doc_id] for doc_id in wanted if doc_id is not None], selection


def resolve(
    project: Project,
    session: Session,
    request: RunRequest,
    local_model_sha: str | None = None,
    served: dict[str, Any] | None = None,
) -> ResolvedRun:
    """Load and check everything a run needs; raise before any request is made. ``served``: what an
    OpenAI-compatible server says about its model (`providers.served_model`), for the cache key."""
    _check_options(request)
    ref = parse_ref(request.prompt)
    template = load_prompt(project.prompts_dir, ref)
    codebook = project_codebook(project, ref.codebook)
    template.check_examples(codebook)
    model = parse_model(request.model or project.default_model, request.base_url)
    if request.same_model_as is not None:
        if not model.users_server:
            raise RunError(
                f"{arg('same_model_as', request.same_model_as)} applies to openai-compatible/ models (their "
                f"server's address is part of their cache key); {model} is known by its name"
            )
        check_url(request.same_model_as, "same_model_as")
    if request.truncate and not model.embedded:
        raise RunError(
            f"{arg('truncate')} applies to local models (their context is known here); {model} decides itself what "
            "to do with a prompt longer than its context"
        )
    params = _params(template, request)
    # the options that set model parameters (--seed is the sample's seed, not the model's)
    unsent = [
        n for n in model.info.unsent if n in ("temperature", "top_p") and getattr(request, n) is not None
    ]
    if unsent:
        raise RunError(
            f"{model.provider}/ models take no {', '.join(unsent)}: drop "
            + ", ".join(arg(name, getattr(request, name)) for name in unsent)
        )
    # what the provider's API does not take is left out, so that the run records only what was sent
    params = {k: v for k, v in params.items() if k not in model.info.unsent}
    logprobs = model.info.logprobs if request.logprobs is None else request.logprobs
    answer_model = response_model(codebook, template.meta.reasoning)
    schema = json_schema(answer_model)
    documents, coded_by = select_documents(
        session,
        request.split,
        request.sample,
        request.seed,
        request.coded_by,
        request.coded_by_all,
        codebook.name,
    )
    if request.max_cost is not None and "max_tokens" not in params:
        raise RunError(
            f"{arg('max_cost', request.max_cost)} needs a bound on each answer: set max_tokens in the template's "
            f"params or pass a bound, e.g. {arg('max_tokens', 256)}"
        )
    if any(d.split == "test" for d in documents):
        _check_frozen(session, ref, template, codebook)
    resolved = ResolvedRun(
        request=request,
        template=template,
        codebook=codebook,
        model=model,
        params=params,
        logprobs=logprobs,
        schema=schema,
        response_format=response_format(answer_model),
        answer_model=answer_model,
        documents=documents,
        coded_by=coded_by,
    )
    resolved.spec = {
        "codebook": {"name": codebook.name, "version": codebook.version, "sha256": codebook.sha256},
        "prompt": {"ref": str(ref), "sha256": template.sha256},
        "model": {**model.identity, **({"file_sha256": local_model_sha} if local_model_sha else {})},
        "params": params,
        "logprobs": logprobs,
        "schema_sha256": sha256_json(schema),
        "split": request.split,
        "sample": request.sample,
        "seed": request.seed if request.sample is not None else None,
        "repeats": request.repeats,
        "reasks": request.reasks,
        "tag": request.tag,
        # which documents: a run is one fixed set (documents imported later make a different spec)
        "documents_sha256": sha256_json([[d.id, d.key] for d in documents]),
    }
    # keys added since the first release go in only when used: a new key in every spec would change the hash
    # of every existing run, which would then no longer resume
    if coded_by is not None:
        resolved.spec["coded_by"] = coded_by.spec
    if request.truncate:
        resolved.spec["truncate"] = True
    resolved.spec_sha256 = sha256_json(resolved.spec)
    resolved.cache_model = model.cache_identity(resolved.spec["model"], served, request.same_model_as)
    return resolved


def _check_options(request: RunRequest) -> None:
    """The request's numbers are in range."""
    if request.repeats < 1:
        raise RunError(f"{arg('repeats', request.repeats)}: at least 1")
    if request.reasks < 0:
        raise RunError(f"{arg('reasks', request.reasks)}: cannot be negative")
    if request.retries < 0:
        raise RunError(f"{arg('retries', request.retries)}: cannot be negative")
    if request.concurrency is not None and request.concurrency < 1:
        raise RunError(f"{arg('concurrency', request.concurrency)}: at least 1")
    if request.max_tokens is not None and request.max_tokens < 1:
        raise RunError(f"{arg('max_tokens', request.max_tokens)}: at least 1")
    if request.temperature is not None and not 0 <= request.temperature <= 2:
        raise RunError(f"{arg('temperature', request.temperature)}: between 0 and 2")
    if request.top_p is not None and not 0 < request.top_p <= 1:
        raise RunError(f"{arg('top_p', request.top_p)}: above 0 and at most 1")
    if request.max_cost is not None and request.max_cost < 0:
        raise RunError(f"{arg('max_cost', request.max_cost)}: a cost cannot be negative")


def _params(template: PromptTemplate, request: RunRequest) -> dict[str, Any]:
    """The model parameters: the template's, with those the request sets."""
    params = dict(template.params)
    for name in ("temperature", "top_p", "max_tokens"):
        value = getattr(request, name)
        if value is not None:
            params[name] = value
    return params


def _check_frozen(session: Session, ref: PromptRef, template: PromptTemplate, codebook: Codebook) -> None:
    """A run on test documents takes only a frozen prompt, with its template and codebook as frozen."""
    row = find_prompt_version(session, ref)
    if row is None or row.frozen_at is None:
        raise RunError(
            f"{ref} is not frozen, so it may not run on the test split: test data must never be used to "
            f"tune a prompt. Finish tuning on dev, then `annotator prompt freeze {ref}` and run again"
        )
    if row.sha256 != template.sha256 or row.frozen_codebook_sha256 != codebook.sha256:
        what = "its template" if row.sha256 != template.sha256 else f"the codebook ({codebook.ref})"
        raise RunError(
            f"{ref} was frozen at {row.frozen_at:%Y-%m-%d %H:%M} UTC, but {what} changed since: the test split "
            "only takes the prompt and codebook exactly as frozen. Restore them, or freeze a new prompt version"
        )
