"""The run engine's answers: the run's tallies (`Stats`) and `AnswerRecorder`, which turns each answer into a
row (redacted, with its label probability and any note on its prompt), keeps the responses for the cache,
and hands both to one writer thread in small batches, so that the event loop never waits on the database and
a crash, kill -9 or Ctrl-C loses at most the requests in flight. The request pool is in
`annotator.llm.labeler`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from annotator.llm.cache import CachedCompletion
from annotator.llm.response import Answer, label_probability
from annotator.llm.runstore import RunStore
from annotator.llm.spec import Item
from annotator.redaction import redact_text
from annotator.store.models import utcnow

if TYPE_CHECKING:
    from annotator.llm.transport import Completion

FLUSH_EVERY_S = 0.05  # an answer waits at most this long before it is written (kill -9 loses no more)
FLUSH_AT = 256
RENEW_EVERY_S = 5.0
# the progress callback is told at most this often (and at every flush): the CLI's bar cost about 3 µs an
# answer, a tenth of a cached re-run's engine time, when it was told of each one; it redraws at 10 Hz anyway
PROGRESS_EVERY_S = 0.1


@dataclass
class Stats:
    total: int = 0  # items in the run
    before: int = 0  # answered before this session started
    ok: int = 0
    invalid: int = 0
    error: int = 0
    cached: int = 0
    requests: int = 0
    cost: float = 0.0
    started: float = field(default_factory=time.perf_counter)

    @property
    def done(self) -> int:
        return self.ok + self.invalid + self.error


ProgressCallback = Callable[[Stats], None]


class AnswerRecorder:
    """Answers and cached responses of one engine, written as they come by a single writer thread."""

    def __init__(
        self,
        store: RunStore,
        stats: Stats,
        progress: ProgressCallback,
        secrets: list[str | None],
    ) -> None:
        self.store = store
        self.stats = stats
        self.progress = progress
        self._secrets = secrets  # never stored: see annotator.redaction
        self.notes: dict[tuple[int, int], str] = {}  # (document, repeat) -> what was done to its prompt
        self.pending_cost = 0.0  # spent on the answers not yet handed to the writer
        self.flush_at = FLUSH_AT  # answers handed to the writer at once (more for cached ones)
        self._shown = time.monotonic()  # when the progress callback was last told
        self._unshown = False  # whether answers were recorded since
        self._pending: list[dict[str, Any]] = []
        self._cache_rows: list[dict[str, Any]] = []
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="annotator-writer")
        self._writes: list[Future[None]] = []
        self._redacted: dict[str, str | None] = {}

    def _redact(self, text: str | None) -> str | None:
        """`redact_text` with this engine's secrets, each distinct text once (answers repeat: a cached re-run
        of 10,000 labels has a handful of distinct texts; redacting one costs about 3 µs)."""
        if not text:
            return text
        redacted = self._redacted.get(text, self)
        if redacted is self:
            redacted = redact_text(text, self._secrets)
            if len(self._redacted) < 4096:
                self._redacted[text] = redacted
        return redacted  # type: ignore[return-value]

    def record(
        self,
        item: Item,
        status: str,
        answer: Answer | None,
        raw: str | None,
        error: str | None,
        completion: Completion | CachedCompletion | None,
        attempts: int,
        cached: bool,
        tokens: tuple[int, int],
    ) -> None:
        raw, error = self._redact(raw), self._redact(error)
        note = self.notes.get((item.document_id, item.repeat))
        if note is not None:  # a truncated document: its answer says so, whatever its status
            error = f"{note}; {error}" if error else note
        probability = None
        if answer is not None and answer.label and completion is not None and completion.content:
            probability = label_probability(completion.content, completion.logprobs, answer.label)
        self._pending.append(
            {
                "run_id": self.store.run_id,
                "document_id": item.document_id,
                "repeat": item.repeat,
                "label": answer.label if answer else None,
                "probability": probability,
                "rationale": answer.rationale if answer else None,
                "status": status,
                "raw": raw,
                "error": error,
                "tokens_in": tokens[0],
                "tokens_out": tokens[1],
                # an answer from the cache, or from a batch (no latency of its own), has none
                "latency_ms": (completion.latency_ms or None) if completion and not cached else None,
                "attempts": attempts,
                "cached": cached,
                "created_at": utcnow(),
            }
        )
        setattr(self.stats, status, getattr(self.stats, status) + 1)
        self.stats.cached += cached
        if len(self._pending) >= self.flush_at:
            self.flush()
        self._unshown = True
        if time.monotonic() - self._shown >= PROGRESS_EVERY_S:
            self._show()

    def _show(self) -> None:
        self._shown, self._unshown = time.monotonic(), False
        self.progress(self.stats)

    def remember(self, key: str, completion: Completion) -> None:
        """Keep a response for the cache (written with the next batch of answers)."""
        self._cache_rows.append(cache_row(key, completion, self._secrets))

    def flush(self, wait: bool = False) -> None:
        """Hand the pending answers to the writer thread (the event loop never waits on the database)."""
        for future in [f for f in self._writes if f.done()]:
            self._writes.remove(future)
            future.result()  # a failed write is a bug: surface it
        if self._pending or self._cache_rows:
            rows, cache_rows, spent = self._pending, self._cache_rows, self.pending_cost
            self._pending, self._cache_rows, self.pending_cost = [], [], 0.0
            self._writes.append(self._writer.submit(self.store.write, rows, cache_rows, spent))
        if self._unshown:
            self._show()
        if wait:
            for future in self._writes:
                future.result()
            self._writes.clear()

    async def flusher(self) -> None:
        """Write answers as they come, and keep the lease renewed even while no answer comes."""
        renewed = time.monotonic()
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            self.flush()
            if time.monotonic() - renewed > RENEW_EVERY_S:
                renewed = time.monotonic()
                self._writes.append(self._writer.submit(self.store.renew))

    def close(self) -> None:
        """Stop the writer thread (after a `flush(wait=True)`)."""
        self._writer.shutdown()


def cache_row(
    key: str, completion: Completion | CachedCompletion, secrets: list[str | None]
) -> dict[str, Any]:
    """The answer cache's row for a response, its text redacted (``secrets``: see annotator.redaction)."""
    content = redact_text(completion.content, secrets) or ""
    # an answer that held a secret keeps no token log-probabilities: their tokens spell it out
    logprobs = completion.logprobs if content == (completion.content or "") else None
    return {
        "key": key,
        "response": content,
        "logprobs": logprobs,
        "usage": {"prompt_tokens": completion.tokens_in, "completion_tokens": completion.tokens_out},
        "model": completion.model,
        "created_at": utcnow(),
    }
