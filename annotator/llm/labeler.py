"""The run engine: label every missing (document, repeat) of a run with a bounded pool of async requests.

Flow: a producer renders prompts in chunks and answers what it can from the cache; workers send the rest,
at most C requests in flight (retries and adaptive concurrency in transport.py). There are 4 C workers: an
item that waits out a 429's Retry-After holds no request slot, so others use it meanwhile (in a storm where
every other request gets 429 Retry-After: 1 at 100 ms latency an item takes about 1.2 s instead of 0.1 s:
C items alone would send a twelfth of what C slots can); every answer is validated against the codebook's
response model, re-asked on invalid output, and stored as ok / invalid / error with its raw text. Answers
are written in small batches as they come, so a crash, kill -9 or Ctrl-C loses at most the requests in
flight; resuming asks only for what is missing.

The pool (and the HTTP client, imported then) starts with the first item the cache cannot answer. Until
then the producer works in large steps, each read from the cache in a few queries and written in one
transaction: a fully cached re-run of 10,000 labels spends about 0.2 s here, where 32-item steps (an ORM
read in a transaction each), a Jinja render per prompt and the HTTP client took about 0.9 s.

This module holds the request pool (`Engine`: producer, workers, cost cap, re-asks); recording and writing
the answers, and the run's tallies (`Stats`), are in `annotator.llm.engine_answers` (re-exported here).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from annotator.errors import TemplateError
from annotator.llm import cache
from annotator.llm.cache import CachedCompletion
from annotator.llm.engine_answers import (
    FLUSH_AT,
    AnswerRecorder,
    ProgressCallback,
    Stats,
)
from annotator.llm.providers import cost
from annotator.llm.response import Answer, Validator
from annotator.llm.runstore import RunStore
from annotator.llm.spec import ContextLimit, Item, ResolvedRun, fit
from annotator.prompts import Message
from annotator.redaction import known_secrets

if TYPE_CHECKING:  # the transport and its HTTP client (openai: ~0.4 s to import) load with the pool
    from annotator.llm.transport import AdaptiveLimit, Backoff, ChatClient, Completion, RunAborted

ITEMS_PER_SLOT = 4  # items in progress per request slot: an item waiting out a Retry-After holds no slot
# prompts rendered per step: small steps keep the event loop responsive while requests are in flight (and a
# local model's long prompts are each counted by its tokenizer, a request each)
PRODUCER_CHUNK = 32
# prompts per step while every item so far was answered from the cache (no request waits on the loop): read
# from the cache in queries of cache.LOOKUP_CHUNK keys, and their answers written in one transaction before
# the next step (a SQLite commit costs about 1.3 ms; 256-answer batches were a fifth of the writing time)
CACHED_STEP = 2000
REASK = (
    "That answer is not valid: {error}. Reply again with only a JSON object that follows the required schema, "
    "using exactly one of these labels: {labels}."
)


class NeedsRequest(Exception):
    """An item the cache alone cannot answer (see `Engine._label`): the request it needs next."""

    def __init__(self, messages: list[Message], key: str) -> None:
        self.messages, self.key = messages, key


@dataclass(slots=True)
class Work:
    item: Item
    messages: list[Message]
    params: dict[str, Any]
    key: str
    first: CachedCompletion | None = None  # a cached first answer that did not validate


class Engine:
    def __init__(
        self,
        resolved: ResolvedRun,
        store: RunStore,
        base_url: str,
        api_key: str | None,
        concurrency: int,
        prices: tuple[float, float] | None,
        stats: Stats,
        progress: ProgressCallback | None = None,
        context: ContextLimit | None = None,
    ) -> None:
        self.r = resolved
        self.context = context  # a known context window: prompts that do not fit are not sent
        self.store = store
        self.base_url = base_url
        self.api_key = api_key
        self.concurrency = max(1, concurrency)
        self.prices = prices
        self.stats = stats
        # answers are recorded and written apart from the pool; secrets never stored: see annotator.redaction
        self.answers = AnswerRecorder(
            store, stats, progress or (lambda _stats: None), [api_key, *known_secrets(None)]
        )
        req = resolved.request
        self.workers = self.concurrency * ITEMS_PER_SLOT
        self.timeout = req.timeout or resolved.model.info.timeout_s
        self.max_cost = req.max_cost
        self.reserved = 0.0
        self.stop_reason: str | None = None
        self.cost_capped = False
        self.spent_before = 0.0  # what earlier sessions of this run spent (counts against --max-cost)
        self.reached = False  # whether any request got an answer (a refused first connection aborts)
        self.aborted: RunAborted | None = None
        self.failed: Exception | None = None  # what broke the producer (a bug)
        self.server_model: str | None = None
        self._consecutive_transient = 0
        self._schema_sha = resolved.spec["schema_sha256"]
        self._labels = ", ".join(resolved.codebook.allowed_labels)
        self._keys = cache.CacheKeys(resolved.cache_model, self._schema_sha, resolved.logprobs)
        self._params: dict[int, dict[str, Any]] = {}  # each repeat's parameters, one object per repeat
        self._validate = Validator(resolved.answer_model, resolved.codebook)
        # the request pool, started when the first item needs a request (a fully cached run starts none)
        self._queue: asyncio.Queue[Work | None] | None = None
        self._pool: list[asyncio.Task[None]] = []
        self._client: ChatClient | None = None
        self.backoff: Backoff  # set with the pool

    def flush(self, wait: bool = False) -> None:
        """Hand the pending answers to the writer thread (the event loop never waits on the database)."""
        self.answers.flush(wait)

    # ---- requests -----------------------------------------------------------------------------------
    def _estimate(self, messages: list[Message]) -> float:
        chars = sum(len(m["content"]) for m in messages)
        out = int(self.r.params.get("max_tokens") or 64)
        return cost(self.prices, chars // 4 + 10 * len(messages), out) or 0.0

    async def _ask(
        self,
        client: ChatClient,
        limit: AdaptiveLimit,
        work: Work,
        messages: list[Message],
        key: str,
        waited_s: float = 0.0,
    ) -> Completion:
        estimate = self._estimate(messages) if self.max_cost is not None else 0.0
        if (
            self.max_cost is not None
            and self.spent_before + self.stats.cost + self.reserved + estimate > self.max_cost
        ):
            self.cost_capped = True
            self._stop(f"stopped before exceeding --max-cost ${self.max_cost:g}")
            raise asyncio.CancelledError
        self.reserved += estimate
        try:
            completion = await client.complete(
                self.r.payload(messages, work.params), limit, self.backoff, waited_s
            )
        finally:
            self.reserved -= estimate
        self.stats.requests += completion.attempts
        self.reached = True
        spent = cost(self.prices, completion.tokens_in, completion.tokens_out) or 0.0
        self.stats.cost += spent
        self.answers.pending_cost += spent
        self.server_model = self.server_model or completion.model
        self.answers.remember(key, completion)
        return completion

    async def _label(self, client: ChatClient | None, limit: AdaptiveLimit | None, work: Work) -> None:
        """Ask until the answer validates (re-asks taken from the cache where it has them), and record it.
        Without a client: from the cache alone, raising `NeedsRequest`, with nothing recorded, at the first
        ask it does not answer."""
        if client is not None:  # only a request raises it: without a client, no except clause is reached
            from annotator.llm.transport import RequestFailed

        messages, attempts, tokens_in, tokens_out = list(work.messages), 0, 0, 0
        waited = 0.0  # time this item spent waiting through rate limits (its budget is --max-wait)
        completion: Completion | CachedCompletion | None = None
        answer: Answer | None = None
        for ask in range(self.r.request.reasks + 1):
            if ask == 0 and work.first is not None:
                completion = work.first
                if completion.attempts:  # a batch run's own answer (llm/batch): this run's request
                    attempts, tokens_in, tokens_out = 1, completion.tokens_in, completion.tokens_out
            else:
                key = work.key if ask == 0 else self._keys.key(messages, work.params, work.item.repeat)
                cached = self._cached(key, work.item) if ask > 0 else None  # a re-ask answered before
                if cached is None and (client is None or limit is None):
                    raise NeedsRequest(messages, key)
                try:
                    if cached is not None:
                        completion = cached
                    else:
                        assert client is not None and limit is not None
                        completion = await self._ask(client, limit, work, messages, key, waited)
                except RequestFailed as exc:
                    self.stats.requests += exc.attempts
                    self._consecutive_transient = self._consecutive_transient + 1 if exc.transient else 0
                    if self._consecutive_transient >= max(10, 2 * self.concurrency):
                        self._stop(f"the server stopped answering ({exc})")
                    error = str(exc)
                    if exc.rate_limited:
                        error += f"; `annotator run --resume {self.store.run_id}` continues"
                    self.answers.record(
                        work.item,
                        "error",
                        None,
                        None,
                        error,
                        completion,
                        attempts + exc.attempts,
                        False,
                        (tokens_in, tokens_out),
                    )
                    return
                attempts += completion.attempts
                waited += completion.waited_s
                tokens_in += completion.tokens_in
                tokens_out += completion.tokens_out
            self._consecutive_transient = 0
            answer = self._validate(completion.content)
            if answer.label is not None:
                self.answers.record(
                    work.item,
                    "ok",
                    answer,
                    completion.content,
                    None,
                    completion,
                    max(attempts, 1),
                    attempts == 0,
                    (tokens_in, tokens_out),
                )
                return
            messages = [
                *messages,
                {"role": "assistant", "content": completion.content or ""},
                {"role": "user", "content": REASK.format(error=answer.error, labels=self._labels)},
            ]
        assert completion is not None and answer is not None
        self.answers.record(
            work.item,
            "invalid",
            None,
            completion.content,
            answer.error,
            completion,
            max(attempts, 1),
            attempts == 0,
            (tokens_in, tokens_out),
        )

    def _stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason

    def _cached(self, key: str, item: Item) -> CachedCompletion | None:
        if not self.r.request.cache:
            return None
        hit = self.store.cached([key]).get(key)
        return None if hit is None else self._from_cache(key, hit, item)

    def _from_cache(self, key: str, hit: Any, item: Item) -> CachedCompletion:
        """A cached answer as a completion that cost this run no request (a batch run's own: see llm/batch)."""
        return CachedCompletion.of(hit)

    def _params_for(self, repeat: int) -> dict[str, Any]:
        params = self._params.get(repeat)
        if params is None:
            params = self._params[repeat] = self.r.params_for(repeat)
        return params

    # ---- the pool -----------------------------------------------------------------------------------
    def _prepare(self, items: list[Item]) -> list[Work]:
        """Render prompts and answer what the cache can; returns the work that needs a request."""
        works: list[Work] = []
        for item in items:
            params = self._params_for(item.repeat)
            try:
                messages = self.r.messages(item)
            except TemplateError as exc:
                self.answers.record(item, "error", None, None, str(exc), None, 0, False, (0, 0))
                continue
            if self.context is not None:
                fitted = fit(self.r, item, messages, self.context)
                if fitted.messages is None:  # not sent: the server would refuse it
                    self.answers.record(item, "error", None, None, fitted.error, None, 0, False, (0, 0))
                    continue
                messages = fitted.messages
                if fitted.note is not None:
                    self.answers.notes[(item.document_id, item.repeat)] = fitted.note
            works.append(Work(item, messages, params, self._keys.key(messages, params, item.repeat)))
        hits: dict[str, Any] = {}
        todo: list[Work] = []
        if self.r.request.cache and works:
            hits = self.store.cached([w.key for w in works])
        for work in works:
            hit = hits.get(work.key)
            if hit is None:
                todo.append(work)
                continue
            completion = self._from_cache(work.key, hit, work.item)
            answer = self._validate(completion.content)
            if answer.label is not None or self.r.request.reasks == 0:
                status = "ok" if answer.label is not None else "invalid"
                self.answers.record(
                    work.item,
                    status,
                    answer if answer.label else None,
                    completion.content,
                    answer.error,
                    completion,
                    completion.attempts,
                    completion.attempts == 0,
                    (completion.tokens_in, completion.tokens_out),
                )
            else:
                work.first = completion
                todo.append(work)
        return todo

    async def _produce(self, items: list[Item]) -> None:
        try:
            start = 0
            while start < len(items):
                if self.stop_reason:
                    break
                bulk = start > 0 and not self._pool  # every item so far answered from the cache
                step = CACHED_STEP if bulk else PRODUCER_CHUNK
                self.answers.flush_at = CACHED_STEP if bulk else FLUSH_AT
                todo = [w for w in self._prepare(items[start : start + step]) if not await self._settled(w)]
                start += step
                if bulk:
                    self.flush(wait=True)  # the step's answers in one transaction (nothing else waits)
                if todo and self._queue is None:
                    self.answers.flush_at = FLUSH_AT
                    self._start_pool()
                for work in todo:
                    assert self._queue is not None
                    await self._queue.put(work)
                await asyncio.sleep(0)
        except Exception as exc:  # a bug: stop the workers (else they wait for work forever), then raise it
            self.failed = exc
            self._stop(f"{type(exc).__name__}: {exc}")
            if self._queue is not None:
                for _ in range(self.workers):  # a worker waiting for work finds the queue empty
                    with contextlib.suppress(asyncio.QueueFull):
                        self._queue.put_nowait(None)
            return
        if self._queue is not None:
            for _ in range(self.workers):
                await self._queue.put(None)

    async def _settled(self, work: Work) -> bool:
        """Whether the cache answers every ask an item needs (a cached first answer that did not validate,
        and its re-asks, cached by the run that asked them): then it is recorded now, by `_label` without a
        client, and takes no place in the request pool (a fully cached run starts none)."""
        if work.first is None:
            return False
        try:
            await self._label(None, None, work)
        except NeedsRequest:
            return False
        return True

    def _start_pool(self) -> None:
        """Start the request pool, the HTTP client and the workers: on the first item that needs a request."""
        from annotator.llm.transport import AdaptiveLimit, Backoff, chat_client

        req = self.r.request
        self.backoff = Backoff(retries=req.retries, max_wait_s=req.max_wait)
        self._queue = asyncio.Queue(maxsize=self.workers)
        self._client = chat_client(
            self.r.model, self.base_url, self.api_key, self.timeout, self.concurrency, self.r.answer_model
        )
        limit = AdaptiveLimit(self.concurrency)
        self._pool = [
            asyncio.create_task(self._work(self._client, limit, self._queue)) for _ in range(self.workers)
        ]
        self._pool_started.set()

    async def _work(
        self, client: ChatClient, limit: AdaptiveLimit, queue: asyncio.Queue[Work | None]
    ) -> None:
        from annotator.llm.transport import RunAborted

        while self.stop_reason is None:
            work = await queue.get()
            if work is None:
                return
            try:
                await self._label(client, limit, work)
            except RunAborted as exc:
                self.aborted = self.aborted or exc
                self._stop(str(exc))
            except asyncio.CancelledError:
                if self.stop_reason is None:
                    raise
                return

    async def run(self, items: list[Item]) -> None:
        """Label ``items``: answer what the cache has, ask for the rest, store every answer.

        The objects alive when the run starts (the modules, the run's documents) are set aside from the cyclic
        garbage collector while it works (`gc.freeze`, undone at the end): the engine makes tens of thousands
        of small objects, and a full collection over the ~110,000 alive before it cost 50-60 ms in a
        cached re-run of 10,000 labels (0.9 s in all). Not done when the process froze objects itself (a
        server sharing memory with its workers), which the unfreeze would undo."""
        spare = gc.get_freeze_count() == 0
        if spare:
            gc.freeze()
        try:
            await self._run(items)
        finally:
            if spare:
                gc.unfreeze()

    async def _run(self, items: list[Item]) -> None:
        self._pool_started = asyncio.Event()
        flusher = asyncio.create_task(self.answers.flusher())
        producer = asyncio.create_task(self._produce(items))
        started = asyncio.create_task(self._pool_started.wait())
        try:
            # until the producer is done (every item answered from the cache, or queued) or the pool starts
            await asyncio.wait({producer, started}, return_when=asyncio.FIRST_COMPLETED)
            if self._pool:
                await asyncio.gather(*self._pool)  # workers end on the producer's sentinels, or on a stop
            if self.failed is not None:
                raise self.failed
        finally:
            for task in (flusher, producer, started, *self._pool):
                task.cancel()
            if self._client is not None:
                await self._client.close()
            self.flush(wait=True)
            self.answers.close()
