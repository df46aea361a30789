"""Run a labeling job through a provider's Batch API (`annotator run --batch`): submit what the cache cannot
answer, watch the batches, collect their answers, send the re-asks, until every item is stored.

The run is the same run a live run of the same settings would be (the batch is how it is asked, not what):
its rows, statuses and provenance are a live run's, and `annotator run --resume N` continues it either way.
Batches outlive the command: the terminal may be closed (or `--no-wait` given) once they are submitted;
`annotator runs` shows them, and `annotator run --resume N` (or the same command again) picks them up,
collects what they answered and submits what is still missing. See `annotator.llm.batch` for how the
answers are read, and `annotator.llm.batch_api` for the provider's side.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from annotator.llm.batch import BatchEngine, Collected, Needed, completion_fields, lines, read_output, split
from annotator.llm.cache import CachedCompletion
from annotator.llm.engine_answers import ProgressCallback, Stats, cache_row
from annotator.llm.providers import cost
from annotator.llm.runstore import RunStore
from annotator.llm.spec import Item, ResolvedRun, RunError
from annotator.redaction import known_secrets
from annotator.store.batches import open_batches, run_batches, store_collected, update_state
from annotator.store.models import ProviderBatch

if TYPE_CHECKING:
    from annotator.llm.batch_api import BatchAPI, Remote

POLL_S = 30.0
RENEW_S = 20.0  # the run's lease is renewed at least this often while it waits  # seconds between two questions to the provider about an open batch (--poll)
BATCH_PROVIDERS = ("openai", "groq")
BATCH_DISCOUNT = 0.5  # OpenAI's and Groq's batch prices: half the live price (2025)


def batch_prices(prices: tuple[float, float] | None) -> tuple[float, float] | None:
    """USD per million tokens through the Batch API."""
    return None if prices is None else (prices[0] * BATCH_DISCOUNT, prices[1] * BATCH_DISCOUNT)


def check_batchable(resolved: ResolvedRun) -> None:
    """Refuse a batch run that cannot work, before anything is created."""
    ref = resolved.model
    if ref.provider not in BATCH_PROVIDERS:
        raise RunError(
            f"--batch works with {' and '.join(p + '/' for p in BATCH_PROVIDERS)} models (their Batch APIs); "
            f"{ref} is asked live: drop --batch"
        )
    if not resolved.request.cache:
        raise RunError("--batch reads the batch's answers through the answer cache: drop --no-cache")


def has_open_batch(project: Any, run_id: int | None) -> bool:
    if run_id is None:
        return False
    with project.transaction() as session:
        return bool(open_batches(session, [run_id]))


@dataclass
class BatchOutcome:
    status: str  # done, or waiting (batches still open)
    message: str | None


class BatchRun:
    """One command's work on a batch run (the run opened by the caller, its lease held)."""

    def __init__(
        self,
        resolved: ResolvedRun,
        store: RunStore,
        key: str | None,
        prices: tuple[float, float] | None,
        stats: Stats,
        progress: ProgressCallback | None,
        notify: Any,
        poll_s: float = POLL_S,
    ) -> None:
        self.r = resolved
        self.store = store
        self.project = store.project
        self.key = key
        self.prices = batch_prices(prices)
        self.stats = stats
        self.notify = notify
        self.poll_s = max(0.01, poll_s)
        assert resolved.model.base_url is not None
        self.engine = BatchEngine(
            resolved, store, resolved.model.base_url, key, 1, self.prices, stats, progress
        )
        self.secrets: list[str | None] = [key, *known_secrets(None)]
        self.errors: dict[str, str] = {}  # cache key -> why this command's batches did not answer it
        self.submitted = 0  # batches this command created
        self.sent: set[str] = set()  # the cache keys of their requests
        self.api: BatchAPI | None = None

    def _batches(self, open_only: bool = False) -> list[ProviderBatch]:
        assert self.store.run_id is not None
        with self.project.transaction() as session:
            return run_batches(session, self.store.run_id, open_only)

    async def run(self, items: list[Item], wait: bool) -> BatchOutcome:
        from annotator.llm.batch_api import BatchAPI

        assert self.r.model.base_url is not None
        self.engine.owned = {k for b in self._batches() for k in b.keys}
        self.api = BatchAPI(self.r.model, self.r.model.base_url, self.key)
        try:
            return await self._loop(items, wait)
        finally:
            await self.api.close()
            self.engine.flush(wait=True)
            self.engine.answers.close()

    async def _loop(self, items: list[Item], wait: bool) -> BatchOutcome:
        while True:
            still_open = await self._watch(wait)
            if still_open:
                return BatchOutcome("waiting", self._waiting(still_open))
            needed = await self.engine.pending(items)
            for key in [k for k in needed if k in self.errors]:
                self.engine.fail(needed.pop(key), self.errors[key])
            self.engine.flush(wait=True)
            if not needed:
                return BatchOutcome("done", None)
            # a request this command sent came back answered (in the cache) or failed (in errors): a bug else
            if needed.keys() & self.sent:
                raise RuntimeError(f"batch run: {len(needed.keys() & self.sent)} requests sent again")
            items = [item for want in needed.values() for item in want.items]  # what the next pass reads
            needed = self._within_budget(needed)
            if not needed:
                return BatchOutcome(
                    "capped",
                    f"stopped before exceeding --max-cost ${self.r.request.max_cost:g} (the run has cost "
                    f"${self.store.spent():.4f})",
                )
            await self._submit(needed)

    def _within_budget(self, needed: dict[str, Needed]) -> dict[str, Needed]:
        """The requests whose estimated cost (at batch prices) fits under --max-cost with what the run spent."""
        cap = self.r.request.max_cost
        if cap is None:
            return needed
        left = cap - self.store.spent()
        fits: dict[str, Needed] = {}
        for key, want in needed.items():
            left -= self.engine._estimate(want.body["messages"])
            if left < 0:
                break
            fits[key] = want
        return fits

    async def _submit(self, needed: dict[str, Needed]) -> None:
        assert self.api is not None and self.store.run_id is not None
        files = split(lines(needed))
        keys = list(needed)
        at = 0
        for number, rows in enumerate(files, 1):
            part = keys[at : at + len(rows)]
            at += len(rows)
            name = f"annotator-run-{self.store.run_id}-{int(time.time())}-{number}.jsonl"
            file_id, remote = await self.api.submit(rows, name, {"annotator_run": str(self.store.run_id)})
            with self.project.transaction() as session:
                session.add(
                    ProviderBatch(
                        run_id=self.store.run_id,
                        provider=self.r.model.provider,
                        remote_id=remote.remote_id,
                        input_file_id=file_id,
                        state=remote.state,
                        n_requests=len(rows),
                        keys=part,
                    )
                )
            self.store.created = {}  # a run with a batch at the provider is kept, answers or not
            self.engine.owned.update(part)
            self.sent.update(part)
            self.submitted += 1
            self.notify(
                f"batch {remote.remote_id} submitted to {self.r.model.provider}: {_requests(len(rows))} "
                f"(file {number} of {len(files)})"
            )

    async def _watch(self, wait: bool) -> list[ProviderBatch]:
        """Ask about each open batch, collect the finished ones; while ``wait``, until none is open. Returns
        the batches still open."""
        assert self.api is not None
        shown: dict[str, tuple[str, int]] = {}
        while True:
            still_open = []
            for batch in self._batches(open_only=True):
                remote = await self._check(batch)
                if shown.get(batch.remote_id) != (remote.state, remote.answered):
                    shown[batch.remote_id] = (remote.state, remote.answered)
                    self.notify(
                        f"batch {remote.remote_id}: {remote.state}, {remote.answered:,} of "
                        f"{batch.n_requests:,} answered"
                        + (f", {remote.failed:,} failed" if remote.failed else "")
                    )
                if remote.done:
                    await self._collect(batch, remote)
                    continue
                with self.project.transaction() as session:
                    assert batch.id is not None
                    update_state(session, batch.id, remote.state, remote.answered, remote.failed)
                batch.state = remote.state
                still_open.append(batch)
            if not still_open or not wait:
                return still_open
            waited = 0.0
            while waited < self.poll_s:  # the lease (60 s) renewed while waiting, however long --poll is
                self.store.renew()
                step = min(RENEW_S, self.poll_s - waited)
                await asyncio.sleep(step)
                waited += step

    async def _check(self, batch: ProviderBatch) -> Remote:
        """The batch as the provider describes it; one it no longer knows (deleted, or gone long after it
        ended) is taken as ended without answers, so that its requests are stored as errors and a resume sends
        them again, rather than a run that waits for it forever."""
        from annotator.llm.batch_api import BatchError, Remote

        assert self.api is not None
        try:
            return await self.api.check(batch.remote_id)
        except BatchError as exc:
            if exc.status != 404:
                raise
            if not await self.api.knows_file(batch.input_file_id):  # another key or address: not lost
                raise BatchError(
                    f"{self.r.model.provider} knows neither batch {batch.remote_id} nor its input file "
                    f"{batch.input_file_id}: is this the key and the address the batch was sent with?"
                ) from None
            why = f"{self.r.model.provider} no longer knows batch {batch.remote_id}"
            return Remote(batch.remote_id, "lost", 0, 0, batch.n_requests, None, None, why)

    async def _collect(self, batch: ProviderBatch, remote: Remote) -> None:
        """Store a finished batch's answers in the cache (and their cost on the run); remember what failed."""
        assert self.api is not None
        asked = set(batch.keys)
        collected = Collected()
        for file_id in (remote.output_file_id, remote.error_file_id):
            if file_id:
                read_output(await self.api.download(file_id), asked, self.secrets, collected)
        if remote.state == "lost":
            why = f"{remote.error}: its requests have no answer"
        else:
            why = f"the batch ended {remote.state} without answering this request" + (
                f" ({remote.error})" if remote.error else ""
            )
        why += f"; `annotator run --resume {self.store.run_id}` sends it again"
        for key in asked - collected.answers.keys() - collected.errors.keys():
            collected.errors[key] = why
        rows, spent = [], 0.0
        for key, body in collected.answers.items():
            completion = CachedCompletion(**completion_fields(body))
            self.engine.server_model = self.engine.server_model or completion.model
            rows.append(cache_row(key, completion, self.secrets))
            spent += cost(self.prices, completion.tokens_in, completion.tokens_out) or 0.0
        batch.state, batch.answered, batch.failed = (
            remote.state,
            len(collected.answers),
            len(collected.errors),
        )
        with self.project.transaction() as session:
            stored = store_collected(session, batch, rows, spent, remote.error)
        if stored:
            self.stats.requests += len(collected.answers)
            self.stats.cost += spent
        self.errors.update(collected.errors)
        self.notify(
            f"batch {batch.remote_id} collected: {len(collected.answers):,} answers"
            + (f", {len(collected.errors):,} without one" if collected.errors else "")
        )

    def _waiting(self, still_open: list[ProviderBatch]) -> str:
        states = ", ".join(f"{b.remote_id} {b.state}" for b in still_open)
        return (
            f"waiting for {len(still_open)} batch{'es' if len(still_open) > 1 else ''} at "
            f"{self.r.model.provider} ({states}); `annotator run --resume {self.store.run_id}` collects the answers"
        )


def _requests(n: int) -> str:
    return f"{n:,} request{'' if n == 1 else 's'}"
