"""Run a labeling job end to end: resolve the request, find or create the run, start the local model if
asked for, drive the engine, and leave the run `done`, `interrupted` or `failed` with every answer saved."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from annotator.errors import AnnotatorError, TemplateError, arg
from annotator.llm.labeler import Engine, ProgressCallback, Stats
from annotator.llm.providers import api_key, ask_served_model, embedded_model, parse_model, price
from annotator.llm.runstore import RunStore
from annotator.llm.spec import ANSWER_TOKENS, ContextLimit, Item, ResolvedRun, RunError, RunRequest, resolve
from annotator.project import Project
from annotator.prompts import Message
from annotator.store.models import Run, RunStatus

if TYPE_CHECKING:
    from annotator.services.plan import Plan

Notify = Callable[[str], None]


@dataclass
class RunOutcome:
    run_id: int
    status: str
    stats: Stats
    elapsed_s: float
    message: str | None
    run: Run
    complete: bool = True  # False when the run stopped early for a reason other than --max-cost


def _local_identity(name: str) -> tuple[Path | None, str | None]:
    """The gguf file of a local model (None if not pulled yet) and its sha256 for the run spec."""
    from annotator.llm import local

    known = local.LOCAL_MODELS.get(name)
    if known is not None:
        try:
            return local.resolve(name), known.sha256
        except Exception:  # not pulled yet: ensure() pulls it when the run starts
            return None, known.sha256
    path = local.resolve(name)
    return path, local.file_sha256(path)


def resolve_request(project: Project, request: RunRequest) -> ResolvedRun:
    """The run, resolved: what the local model's file is, or what a user's server says it serves (both are part
    of the cache key), then everything `llm.spec.resolve` checks."""
    embedded = embedded_model(request.model or project.default_model)
    local_sha = served = None
    if embedded is not None:
        _, local_sha = _local_identity(embedded)
    else:
        model = parse_model(request.model or project.default_model, request.base_url)
        if model.users_server:
            served = ask_served_model(model, api_key(model, project.root))
    with project.transaction() as session:
        return resolve(project, session, request, local_sha, served)


def plan(project: Project, request: RunRequest) -> Plan:
    """What a run would do, without calling any model: one rendered prompt, how many answers it would ask
    for (after what the run already has and what the cache holds), token, cost and time estimates from a
    seeded sample of the documents, the documents a local model cannot read, and the overlap with each human
    and gold coder (see annotator.services.plan.Plan for the fields)."""
    from annotator.services.plan import make_plan

    return make_plan(project, resolve_request(project, request))


def estimate_tokens(messages: list[Message]) -> int:
    """A conservative token count without a tokenizer: 3 characters a token (English runs near 4), plus the
    chat template's markers. Used where the real tokenizer is not at hand."""
    return sum(len(m["content"]) for m in messages) // 3 + ContextLimit.PER_MESSAGE * len(messages) + 16


def _context(resolved: ResolvedRun, server: Any) -> ContextLimit:
    """The local server's context window, counted with its own tokenizer."""

    def count(messages: list[Message]) -> int:
        try:
            return int(server.count_tokens(messages))
        except (OSError, ValueError, KeyError):  # the server did not count it: fall back on the estimate
            return estimate_tokens(messages)

    tokens = int(server.context_tokens)
    reserve = min(resolved.max_tokens or ANSWER_TOKENS, tokens // 2)
    return ContextLimit(tokens, count, reserve, truncate=resolved.request.truncate)


@contextmanager
def _endpoint(
    resolved: ResolvedRun, concurrency: int, notify: Notify
) -> Iterator[tuple[str, ContextLimit | None]]:
    """The base URL for the run, and the model's context where it is known; for local models, a server
    started for the run and stopped after."""
    ref = resolved.model
    if not ref.embedded:
        assert ref.base_url is not None
        yield ref.base_url, None
        return
    from annotator.llm import local

    path = local.ensure(ref.model, progress=notify)
    notify(f"starting the local model {ref.model} ({path.name})")
    # each slot reserves its own context: more than a few slots only cost memory on a small machine
    with local.LocalServer(path, parallel=min(concurrency, 4)) as server:
        yield server.base_url, _context(resolved, server)


def check_renders(resolved: ResolvedRun) -> None:
    """Render the prompt for every selected document before anything is created: a template that fails on
    some document (an undefined variable, a meta column that document lacks) is refused with the document
    named, instead of a run whose answers are all errors under a prompt version registered as it is.

    Rendering costs 50 µs (zero-shot) to 120 µs (few-shot) a document on this 2-core machine, so a
    100,000-document run waits 5-12 s more before its first request: small beside the requests themselves."""
    for document in resolved.documents:
        try:
            resolved.messages(Item(document.id, document.key, document.text, document.meta, 0))
        except TemplateError as exc:
            raise TemplateError(
                f"document {document.key!r}: {exc}; nothing was created (fix the template, then run again)"
            ) from None


class Terminated(KeyboardInterrupt):
    """SIGTERM (a `kill`, a scheduler ending the job): handled as Ctrl-C is, with every answer saved."""

    exit_code = 143


def _raise_terminated(_signum: int, _frame: Any) -> None:
    raise Terminated()


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """While a run works, SIGTERM stops it as Ctrl-C does (the run is left `interrupted`, answers saved)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


async def _drive(engine: Engine, items: list[Any]) -> bool:
    """Run the engine; returns whether SIGTERM stopped it. Inside the event loop SIGTERM cancels the engine
    the way asyncio handles Ctrl-C (an exception raised from a signal handler could land anywhere in the
    loop), so that the engine's own clean-up runs (every answer flushed)."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    terminated = False

    def on_sigterm() -> None:
        nonlocal terminated
        if terminated:  # a second SIGTERM must not cancel the clean-up that saves the answers
            return
        terminated = True
        if task is not None:
            task.cancel()

    try:
        loop.add_signal_handler(signal.SIGTERM, on_sigterm)
        installed = True
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals here
        installed = False
    try:
        await engine.run(items)
    except asyncio.CancelledError:
        if terminated:
            return True
        raise
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGTERM)  # this leaves SIG_DFL: put the run's handler back
            signal.signal(signal.SIGTERM, _raise_terminated)
    return False


def label(
    project: Project,
    request: RunRequest,
    progress: ProgressCallback | None = None,
    resume_id: int | None = None,
    notify: Notify | None = None,
    batching: Batching | None = None,
) -> RunOutcome:
    """Label the documents a request selects; returns when the run is done, stopped or failed.

    ``request.batch`` (or an open batch of the run) sends the requests through the provider's Batch API
    instead (`annotator.services.batch_run`; ``batching``: whether to wait for the batches, how often to ask).

    Ctrl-C or SIGTERM stops it (the run is left `interrupted` with every finished answer saved) and raises
    RunInterrupted. An abort (bad key, unknown model, a server that is not running) raises the error; the run
    is left `failed` when it has answers, and removed, with what it registered, when it has none (a command
    that fails before its first answer creates nothing).
    """
    notify = notify or (lambda _message: None)
    resolved = resolve_request(project, request)
    # every check a user can fail comes before the run is created or touched
    concurrency = request.concurrency or resolved.model.info.concurrency
    prices = price(resolved.model, project.settings.get("prices"))
    if request.max_cost is not None and prices is None:
        raise RunError(
            f"{arg('max_cost', request.max_cost)} needs a price for {resolved.model}: add "
            f'[prices."{resolved.model}"] input = ... '
            "output = ... (USD per million tokens) to annotator.toml"
        )
    key = api_key(resolved.model, project.root)
    check_renders(resolved)
    if request.batch:
        from annotator.services.batch_run import check_batchable

        check_batchable(resolved)
    with _sigterm_as_interrupt():
        return _label(
            project, resolved, request, key, concurrency, prices, progress, resume_id, notify, batching
        )


def _label(
    project: Project,
    resolved: ResolvedRun,
    request: RunRequest,
    key: str | None,
    concurrency: int,
    prices: Any,
    progress: ProgressCallback | None,
    resume_id: int | None,
    notify: Notify,
    batching: Batching | None = None,
) -> RunOutcome:
    store = RunStore(project, resolved)
    try:
        _, done = store.open(resume_id)
    except Terminated:  # nothing was asked: what this process created goes again
        store.discard()
        raise
    items = [i for i in resolved.items() if done.get((i.document_id, i.repeat)) not in ("ok", "invalid")]
    stats = Stats(total=len(resolved.items()), before=len(resolved.items()) - len(items))
    if request.batch or _has_open_batch(project, store.run_id):  # never ask live what a batch is asking
        return _label_batch(
            resolved, store, items, stats, key, prices, progress, notify, batching or Batching()
        )
    start = time.perf_counter()
    status: RunStatus = "done"
    message: str | None = None
    engine: Engine | None = None
    try:
        if items:
            with _endpoint(resolved, concurrency, notify) as (base_url, context):
                engine = Engine(
                    resolved, store, base_url, key, concurrency, prices, stats, progress, context=context
                )
                engine.spent_before = store.spent()
                if asyncio.run(_drive(engine, items)):
                    raise Terminated()
            if engine.aborted is not None:
                status, message = "failed", str(engine.aborted)
            elif engine.cost_capped:
                spent = store.spent()
                status, message = (
                    "interrupted",
                    (
                        f"stopped before exceeding --max-cost ${request.max_cost:g} (the run has cost ${spent:.4f})"
                    ),
                )
            elif engine.stop_reason is not None:
                status, message = "interrupted", engine.stop_reason
    except KeyboardInterrupt as exc:
        how = "SIGTERM" if isinstance(exc, Terminated) else "Ctrl-C"
        run = store.finish("interrupted", f"stopped by {how}", engine.server_model if engine else None)
        raise RunInterrupted(run, how) from None
    except BaseException as exc:
        # a user's error (exit 2) before the first answer leaves nothing; a bug leaves the run `failed`
        if not (isinstance(exc, AnnotatorError) and store.discard()):
            store.finish("failed", f"{type(exc).__name__}: {exc}", engine.server_model if engine else None)
        raise
    if engine is not None and engine.aborted is not None and store.discard():
        raise engine.aborted
    final = store.finish(status, message, engine.server_model if engine else None)
    if engine is not None and engine.aborted is not None:
        raise engine.aborted
    complete = status == "done" or (engine is not None and engine.cost_capped)
    return RunOutcome(final.id or 0, status, stats, time.perf_counter() - start, message, final, complete)


@dataclass(frozen=True)
class Batching:
    """How a batch command behaves: wait for its batches (else submit, check once, and return), and how often
    to ask the provider about them."""

    wait: bool = True
    poll_s: float = 30.0


def _has_open_batch(project: Project, run_id: int | None) -> bool:
    from annotator.services.batch_run import has_open_batch

    return has_open_batch(project, run_id)


def _label_batch(
    resolved: ResolvedRun,
    store: RunStore,
    items: list[Item],
    stats: Stats,
    key: str | None,
    prices: Any,
    progress: ProgressCallback | None,
    notify: Notify,
    batching: Batching,
) -> RunOutcome:
    """The batch path of `_label`: the same run, its requests through the provider's Batch API."""
    from annotator.services.batch_run import BatchRun, check_batchable

    start = time.perf_counter()
    job: BatchRun | None = None
    try:
        check_batchable(resolved)
        job = BatchRun(resolved, store, key, prices, stats, progress, notify, batching.poll_s)
        outcome = asyncio.run(job.run(items, batching.wait))
    except KeyboardInterrupt as exc:
        how = "SIGTERM" if isinstance(exc, Terminated) else "Ctrl-C"
        note = "; submitted batches go on at the provider" if job is not None and job.submitted else ""
        run = store.finish("interrupted", f"stopped by {how}{note}", None)
        raise RunInterrupted(run, how) from None
    except BaseException as exc:
        if not (isinstance(exc, AnnotatorError) and store.discard()):
            store.finish("failed", f"{type(exc).__name__}: {exc}", None)
        raise
    status: RunStatus = "done" if outcome.status == "done" else "interrupted"
    final = store.finish(status, outcome.message, job.engine.server_model)
    elapsed = time.perf_counter() - start
    complete = outcome.status in ("done", "capped")  # as a live run stopped by --max-cost
    return RunOutcome(final.id or 0, status, stats, elapsed, outcome.message, final, complete)


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a run: a KeyboardInterrupt that carries the run as stored (its id and counts)."""

    def __init__(self, run: Run, how: str = "Ctrl-C") -> None:
        super().__init__(f"run {run.id} interrupted by {how}")
        self.run = run
        self.how = how
        self.exit_code = 143 if how == "SIGTERM" else 130

    @property
    def line(self) -> str:
        """What to tell the user: what is saved, and the command that continues."""
        r = self.run
        stored = r.n_ok + r.n_invalid + r.n_error
        return (
            f"interrupted ({self.how}): run {r.id} has {stored} of {r.n_items} answers saved (ok {r.n_ok}, invalid "
            f"{r.n_invalid}, error {r.n_error}); run the same command again, or `annotator run --resume {r.id}`, "
            "to continue"
        )


def resume(
    project: Project,
    run_id: int,
    progress: ProgressCallback | None = None,
    notify: Notify | None = None,
    **overrides: Any,
) -> RunOutcome:
    """Continue a run: ask only for what is missing (and retry items that ended in an error)."""
    with project.transaction() as session:
        run = session.get(Run, run_id)
        if run is None or run.kind != "llm":
            raise RunError(f"no LLM run {run_id}; `annotator runs` lists them")
        stored = dict(run.params.get("request") or {})
    stored["base_url"] = overrides.pop("base_url", None) or run.params.get("base_url")
    batching = overrides.pop("batching", None)
    request = replace(RunRequest(**stored), **{k: v for k, v in overrides.items() if v is not None})
    return label(project, request, progress, resume_id=run_id, notify=notify, batching=batching)
