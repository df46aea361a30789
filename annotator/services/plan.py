"""What a run would do, without asking any model: how many answers it needs (after what the run already has
and what the cache holds), what they would cost and take, which documents the local model cannot read,
and how the selection overlaps each human and gold coder.

Estimates come from a seeded sample of the selected documents (up to ``SAMPLE``), never from one document:
one 25,000-character article once made the first-document estimate 19 times the typical prompt. Times come
from the model's measured latency in this project where earlier runs exist, else from a stated assumption.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np
from sqlmodel import Session, col, select

from annotator.data.selection import Overlap, overlap
from annotator.llm import cache
from annotator.llm.providers import cost, price
from annotator.llm.spec import ANSWER_TOKENS, ContextLimit, Item, ResolvedRun
from annotator.project import Project
from annotator.prompts import Message
from annotator.services.results import Result
from annotator.store.models import Annotation, Run

SAMPLE = 50  # documents whose prompts the token and cost estimates are computed from
LATENCY_ANSWERS = 200  # the latest non-cached answers of a model whose mean latency predicts a run's time
ASSUMED_S = {
    "local": 1.0,
    "remote": 0.6,
}  # seconds per answer when nothing was measured (+ output at 85 tok/s local)


class TooLong(TypedDict):
    document: str  # the document's key
    tokens: int  # its prompt's tokens


class ContextCheck(TypedDict):
    """A local model's context against every prompt of the run."""

    tokens: int  # the context the model is served with
    reserve: int  # of which kept for the answer
    counted_by: str  # "tokenizer" (the model's own), or why an estimate
    truncate: bool  # --truncate: too-long documents are cut to fit instead of stored as errors
    too_long: list[TooLong]  # sorted by document key


class CodedBySpec(TypedDict):
    names: list[str]  # as given to --coded-by
    mode: str  # "any" or "all" (--coded-by-all)
    coders: list[str]  # the coders they stand for


@dataclass(frozen=True)
class Plan(Result):
    """What a run would do (`annotator plan`); ``to_json()`` is what ``plan --json`` prints."""

    prompt: str  # the prompt's ref
    codebook: str  # name@version
    model: str
    params: dict[str, Any]  # the generation parameters the run would send
    split: str
    sample: int | None
    coded_by: CodedBySpec | None  # --coded-by, resolved
    selection: str  # the selection in words ("the dev split, coded by alice, a seeded sample of 50 (seed 0)")
    documents: int  # documents selected
    repeats: int
    items: int  # answers the run needs: documents x repeats
    already_done: int  # answers the existing run with the same spec holds
    from_cache: int  # answers the cache holds
    to_ask: int  # answers to ask a model
    existing_run: int | None  # the run with the same spec, resumed by `run`
    overlap: list[Overlap]  # per human and gold coder: how many of the documents it coded
    messages: list[Message]  # the rendered prompt of the first document
    example_document: str  # that document's key
    tokens_sampled: int  # documents the token estimates come from (up to SAMPLE)
    tokens_in_per_item: int  # the mean prompt tokens (kept for older readers; = tokens_in_mean)
    tokens_in_mean: int
    tokens_in_max: int
    tokens_in_max_document: str  # the key of the longest sampled prompt's document
    tokens_out_per_item: int  # max_tokens, else the assumed answer length
    tokens_out_assumed: bool  # no max_tokens set
    max_tokens_set: bool
    price_per_million: tuple[float, float] | None  # (input, output) USD, None when unknown
    cost_usd: float | None  # at the mean prompt; None without a price
    cost_usd_max: float | None  # if every prompt were the longest sampled
    seconds_per_item: float
    time_s: float  # to_ask x seconds_per_item / concurrency
    time_basis: str  # "measured", "assumed", or "batch" (time_s: the Batch API's 24-hour window)
    time_note: str  # the basis in words
    concurrency: int
    context: ContextCheck | None  # local models only


def prompt_tokens(messages: list[Message]) -> int:
    """About 4 characters a token in English, plus the chat markers (the estimate --max-cost uses too)."""
    return sum(len(m["content"]) for m in messages) // 4 + 10 * len(messages)


def _measured_latency(session: Session, model: str) -> tuple[float, int] | None:
    """Mean seconds per request of the model's latest answers that made a request, and how many."""
    rows = session.exec(
        select(Annotation.latency_ms)
        .join(Run, col(Run.id) == col(Annotation.run_id))
        .where(
            col(Run.model) == model,
            col(Run.kind) == "llm",
            col(Annotation.cached).is_(False),
            col(Annotation.latency_ms).is_not(None),
            col(Annotation.status) != "error",
        )
        .order_by(col(Annotation.id).desc())
        .limit(LATENCY_ANSWERS)
    ).all()
    values = [float(v) for v in rows if v is not None]
    return (sum(values) / len(values) / 1000, len(values)) if values else None


def _context_check(resolved: ResolvedRun, rendered: dict[int, list[Message]]) -> ContextCheck | None:
    """Local models: the documents whose prompt does not fit the context, counted with the model's own
    tokenizer (a server is started only when some prompt might not fit), else estimated."""
    if not resolved.model.embedded:
        return None
    from annotator.llm import local
    from annotator.services import run as runner

    tokens = local.LocalServer.DEFAULT_CTX
    reserve = min(resolved.max_tokens or ANSWER_TOKENS, tokens // 2)
    limit = ContextLimit(tokens, runner.estimate_tokens, reserve, resolved.request.truncate)
    maybe = {d: m for d, m in rendered.items() if not limit.surely_fits(m)}
    counted_by = "tokenizer"
    counts: dict[int, int] = {}
    if maybe:
        try:
            path = local.resolve(resolved.model.model)
        except local.ModelError:
            path = None
        if path is None:
            counted_by = "estimate (3 characters a token: the model is not pulled yet)"
            counts = {d: runner.estimate_tokens(m) for d, m in maybe.items()}
        else:
            with local.LocalServer(path, parallel=1) as server:
                counts = {d: server.count_tokens(m) for d, m in maybe.items()}
    keys = {d.id: d.key for d in resolved.documents}
    too_long = [TooLong(document=keys[d], tokens=n) for d, n in counts.items() if n > limit.budget]
    return ContextCheck(
        tokens=tokens,
        reserve=reserve,
        counted_by=counted_by,
        truncate=resolved.request.truncate,
        too_long=sorted(too_long, key=lambda row: str(row["document"])),
    )


def make_plan(project: Project, resolved: ResolvedRun) -> Plan:
    request = resolved.request
    items = resolved.items()
    docs = resolved.documents
    rendered: dict[int, list[Message]] = {}

    def messages(doc_index: int) -> list[Message]:
        d = docs[doc_index]
        if d.id not in rendered:
            rendered[d.id] = resolved.messages(Item(d.id, d.key, d.text, d.meta, 0))
        return rendered[d.id]

    with project.transaction() as session:
        existing = session.exec(select(Run).where(col(Run.spec_sha256) == resolved.spec_sha256)).first()
        done: set[tuple[int, int]] = set()
        if existing is not None:
            done = {
                (d, r)
                for d, r in session.exec(
                    select(Annotation.document_id, Annotation.repeat).where(
                        col(Annotation.run_id) == existing.id, col(Annotation.status) != "error"
                    )
                )
            }
        todo = [i for i in items if (i.document_id, i.repeat) not in done]
        index = {d.id: n for n, d in enumerate(docs)}
        keys = (
            [
                cache.cache_key(
                    resolved.cache_model,
                    messages(index[i.document_id]),
                    resolved.params_for(i.repeat),
                    resolved.spec["schema_sha256"],
                    resolved.logprobs,
                    i.repeat,
                )
                for i in todo
            ]
            if request.cache
            else []
        )
        cached = len(cache.lookup(session, keys)) if keys else 0
        overlaps = overlap(session, [d.id for d in docs], resolved.codebook.name)
        measured = _measured_latency(session, str(resolved.model))
    picked = np.random.default_rng(request.seed).choice(len(docs), size=min(SAMPLE, len(docs)), replace=False)
    sampled = sorted(int(i) for i in picked)
    tokens = [prompt_tokens(messages(i)) for i in sampled]
    tokens_mean = round(sum(tokens) / len(tokens))
    longest = sampled[int(np.argmax(tokens))]
    bounded = resolved.max_tokens is not None
    tokens_out = resolved.max_tokens if resolved.max_tokens is not None else ANSWER_TOKENS
    to_ask = len(todo) - cached
    prices = price(resolved.model, project.settings.get("prices"))
    if request.batch:
        from annotator.services.batch_run import batch_prices, check_batchable

        check_batchable(resolved)
        prices = batch_prices(prices)
    per_item = cost(prices, tokens_mean, tokens_out)
    per_item_max = cost(prices, max(tokens), tokens_out)
    concurrency = request.concurrency or resolved.model.info.concurrency
    local = resolved.model.embedded
    if measured is not None:
        seconds_per_item, basis = measured[0], "measured"
        time_note = (
            f"measured: the mean latency of {resolved.model}'s last {measured[1]} answers in this project "
            f"({seconds_per_item:.2f} s), divided by the concurrency"
        )
    else:
        seconds_per_item = ASSUMED_S["local"] + tokens_out / 85 if local else ASSUMED_S["remote"]
        basis = "assumed"
        time_note = (
            f"assumed: {seconds_per_item:.2f} s an answer ("
            + ("model load aside, about 85 tokens/s on 2 cores" if local else "a typical hosted API")
            + f"); no earlier answers of {resolved.model} in this project to measure"
        )
    if request.batch:
        seconds_per_item, basis = 24 * 3600 / max(1, to_ask) * concurrency, "batch"
        time_note = "through the provider's Batch API: answered within 24 hours, often much sooner"
    for i in range(len(docs)) if local else ():
        messages(i)  # the context check reads every prompt
    context = _context_check(resolved, rendered)
    first = messages(0)
    return Plan(
        prompt=str(resolved.template.ref),
        codebook=resolved.codebook.ref,
        model=str(resolved.model),
        params=resolved.params,
        split=request.split,
        sample=request.sample,
        coded_by=None
        if resolved.coded_by is None
        else CodedBySpec(
            names=list(resolved.coded_by.names),
            mode=resolved.coded_by.mode,
            coders=list(resolved.coded_by.coders),
        ),
        selection=(f"the {request.split} split" if request.split != "all" else "every document")
        + (f", {resolved.coded_by.describe()}" if resolved.coded_by else "")
        + (f", a seeded sample of {request.sample} (seed {request.seed})" if request.sample else ""),
        documents=len(docs),
        repeats=request.repeats,
        items=len(items),
        already_done=len(done),
        from_cache=cached,
        to_ask=to_ask,
        existing_run=existing.id if existing is not None else None,
        overlap=overlaps,
        messages=first,
        example_document=docs[0].key,
        tokens_sampled=len(tokens),
        tokens_in_per_item=tokens_mean,
        tokens_in_mean=tokens_mean,
        tokens_in_max=max(tokens),
        tokens_in_max_document=docs[longest].key,
        tokens_out_per_item=tokens_out,
        tokens_out_assumed=not bounded,
        max_tokens_set=bounded,
        price_per_million=prices,
        cost_usd=None if per_item is None else round(per_item * to_ask, 4),
        cost_usd_max=None if per_item_max is None else round(per_item_max * to_ask, 4),
        seconds_per_item=round(seconds_per_item, 3),
        time_s=round(to_ask * seconds_per_item / concurrency, 1),
        time_basis=basis,
        time_note=time_note,
        concurrency=concurrency,
        context=context,
    )
