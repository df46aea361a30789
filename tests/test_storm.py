"""Rate-limit storms: a 429 is waited through (--max-wait), other failures count (--retries), and the
adaptive concurrency limit neither collapses in a partial storm nor stays low after one.

A real server will not give a 429 storm on demand, so runs go against the scripted endpoint; the limit
itself is driven by a fake clock. No test asserts a timing.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import threading
from pathlib import Path

import pytest
from sqlmodel import select

from annotator.llm.transport import AdaptiveLimit, Backoff
from annotator.services import run as runner
from annotator.store.models import Run
from tests.conftest import film_texts, import_docs, run_annotations, scripted_request
from tests.scripted_server import Fail, ScriptedServer

WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"]


@pytest.fixture
def server():
    with ScriptedServer(label_for=lambda text: "negative" if "awful" in text else "positive") as srv:
        yield srv


@pytest.fixture
def docs(project, tmp_path: Path) -> dict[str, str]:
    """Ten documents, all in dev."""
    return import_docs(project, tmp_path, film_texts(WORDS))


_request = functools.partial(scripted_request, split="dev", concurrency=3, cache=False)


def test_a_storm_of_429s_is_waited_through_whatever_retries_says(project, docs, server) -> None:
    """Every item meets at least three 429s in a row, and every other request of the storm one more; with
    --retries 1 (two attempts) each would end in error if 429s counted: they are waited through instead."""
    count = itertools.count()
    lock = threading.Lock()

    def storm(text: str, attempt: int) -> Fail | None:
        with lock:
            n = next(count)
        if attempt <= 3 or (n < 60 and n % 2):  # the first 60 requests: every second one refused too
            return Fail(429, retry_after=0.2)
        return None

    server.rule = storm
    server.latency = 0.01
    outcome = runner.label(project, _request(server, retries=1, max_wait=120))
    stored = run_annotations(project, outcome.run_id)
    assert outcome.status == "done" and outcome.stats.error == 0
    assert len(stored) == 10 and all(a.status == "ok" for a in stored.values())
    assert all(a.attempts >= 4 for a in stored.values())  # more attempts than --retries 1 allows
    refused = [r for r in server.requests if r.status == 429]
    assert len(refused) >= 30 and outcome.stats.requests == len(server.requests)


def test_max_wait_ends_a_permanent_rate_limit_with_a_message_and_resume_continues(
    project, docs, server, cli
) -> None:
    server.rule = lambda text, attempt: Fail(429, retry_after=0.2)
    args = ["run", "--prompt", "sentiment/zero-shot.v1", "--model", "openai-compatible/scripted"]
    result = cli(
        *args, "--base-url", server.base_url, "--concurrency", "2", "--retries", "0", "--max-wait", "1"
    )
    assert result.code != 0, result
    with project.transaction() as s:
        run = s.exec(select(Run)).one()
    stored = run_annotations(project, run.id)
    errors = [a for a in stored.values() if a.status == "error"]
    assert errors and not any(a.status == "ok" for a in stored.values())
    for a in errors:
        assert "through rate limits (HTTP 429" in a.error and "--max-wait 1 s" in a.error
        assert f"`annotator run --resume {run.id}` continues" in a.error
        assert a.attempts >= 2  # --retries 0 allows one attempt: the time budget, not the count, ended it
    server.rule = None  # the storm is over
    resumed = cli("run", "--resume", str(run.id), "--base-url", server.base_url)
    assert resumed.code == 0, resumed
    assert all(a.status == "ok" for a in run_annotations(project, run.id).values())
    assert len(run_annotations(project, run.id)) == 10


def test_a_retry_after_beyond_max_wait_ends_the_item_at_once(project, docs, server) -> None:
    """Retry-After: 3600 with --max-wait 300: waiting could not help, so each item gives up on its first 429."""
    server.rule = lambda text, attempt: Fail(429, retry_after=3600)
    outcome = runner.label(project, scripted_request(server, concurrency=2, retries=0, max_wait=300))
    stored = run_annotations(project, outcome.run_id)
    assert len(stored) == 10 and all(a.status == "error" and a.attempts == 1 for a in stored.values())
    assert all("--max-wait 300 s" in a.error for a in stored.values())


def test_server_errors_still_count_against_retries(project, docs, server) -> None:
    server.script([Fail(500)] * 3, text_contains="alpha")
    # three 429s do not use up --retries 1; the two 500s after them do
    server.script([Fail(429, retry_after=0)] * 3 + [Fail(500)] * 2, text_contains="bravo")
    outcome = runner.label(project, _request(server, retries=1, max_wait=120))
    stored = run_annotations(project, outcome.run_id)
    alpha, bravo = stored["d00"], stored["d01"]
    assert alpha.status == "error" and "HTTP 500" in alpha.error and alpha.attempts == 2
    assert "gave up after 2 attempts" in alpha.error
    assert bravo.status == "error" and "HTTP 500" in bravo.error and bravo.attempts == 5
    assert sum(a.status == "ok" for a in stored.values()) == 8


def test_a_max_wait_of_zero_does_not_wait() -> None:
    assert Backoff(max_wait_s=0).delay(0, 1.0, rate_limited=True) >= 1.0  # the delay a 429 asks for...
    assert Backoff().delay(20, None, rate_limited=True) <= Backoff().rate_cap_s  # ...capped without one


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


async def _drive(
    limit: AdaptiveLimit,
    clock: FakeClock,
    seconds: float,
    ok: int,
    refused: int,
    retry_after: float | None = None,
) -> list[int]:
    """Advance the clock in 10 ms ticks; each tick brings ``ok`` answers (100 ms latency) and ``refused`` 429s
    to requests sent in that tick. Returns the limit after every tick."""
    seen = []
    for _ in range(round(seconds / 0.01)):
        clock.t += 0.01
        for _ in range(ok):
            await limit.succeeded(0.1)
        for _ in range(refused):
            await limit.rate_limited(clock.t - 0.001, retry_after)
        seen.append(limit.limit)
    return seen


def test_adaptive_limit_holds_the_goodput_through_a_partial_storm_and_recovers() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        limit = AdaptiveLimit(32, clock=clock)
        # a server that answers 100/s at 100 ms (10 in flight) and refuses the rest, without Retry-After
        steady = await _drive(limit, clock, 3.0, ok=1, refused=1)
        assert 10 <= steady[-1] <= 13  # from 32 to what the answered rate needs, plus headroom
        # the storm: two of every three requests refused with Retry-After: 1, still 100/s answered
        changes = limit.changes
        storm = await _drive(limit, clock, 10.0, ok=1, refused=2, retry_after=1.0)
        assert min(storm) >= 10  # never below the in-flight the answered requests need (was: halved to 1)
        assert limit.changes - changes <= 11  # at most one change per Retry-After window
        # the server stops answering altogether: the limit goes down, one cut per window at most, to 1
        changes = limit.changes
        down = await _drive(limit, clock, 5.0, ok=0, refused=1)
        assert down[-1] == 1 and 0 < limit.changes - changes <= 5.0 / limit.window() + 1
        # the storm ends: each window without a 429 doubles the limit, back to the maximum in 5 windows
        rounds = []
        while limit.limit < 32 and len(rounds) < 50:
            clock.t += limit.window() + 0.001
            await limit.succeeded(0.1)
            rounds.append(limit.limit)
        assert rounds == [2, 4, 8, 16, 32]
        await _drive(limit, clock, 60.0, ok=3, refused=0)  # a long run without 429s...
        assert len(limit._answered) <= 3 * 201  # ...keeps only the answers of the goodput's span

    asyncio.run(scenario())


def test_adaptive_limit_climbs_to_what_the_server_accepts_while_429s_go_on() -> None:
    """From a low limit, in a storm that never lets a window pass without a 429: the server answers all it is
    sent up to 80 in flight; each Retry-After window raises the limit towards 1.25 x the goodput."""

    async def scenario() -> list[int]:
        clock = FakeClock()
        limit = AdaptiveLimit(200, limit=2, clock=clock)
        owed, seen = 0.0, []
        for tick in range(3000):  # 30 s
            clock.t += 0.01
            owed += min(limit.limit, 80) * 0.01 / 0.1  # each slot answers once per 100 ms
            while owed >= 1:
                owed -= 1
                await limit.succeeded(0.1)
            await limit.rate_limited(clock.t - 0.001, 1.0)  # and every tick a 429, Retry-After: 1
            if tick % 100 == 99:
                seen.append(limit.limit)
        return seen

    seen = asyncio.run(scenario())
    assert seen == sorted(seen[: seen.index(max(seen)) + 1]) + seen[seen.index(max(seen)) + 1 :]
    assert 80 <= seen[-1] <= 105  # what the server accepts, with headroom; not the maximum of 200
    assert seen.index(seen[-1]) <= 25  # reached in fewer Retry-After windows than the 30 driven


def test_adaptive_limit_counts_a_burst_once_and_gates_requests() -> None:
    async def scenario() -> tuple[list[int], int]:
        clock = FakeClock()
        limit = AdaptiveLimit(10, clock=clock)
        sent = clock()
        clock.t += 0.2
        await limit.rate_limited(sent)
        await limit.rate_limited(sent)  # the same burst: counted once
        assert limit.limit == 7 and limit.changes == 1
        clock.t += 0.01
        await limit.rate_limited(clock())  # sent after the cut, but within the same window: no second cut
        assert limit.limit == 7
        clock.t += 1.0
        await limit.rate_limited(clock())  # a window later: cut again
        assert limit.limit == 4
        entered: list[int] = []

        async def one() -> None:
            async with limit:
                entered.append(limit.active)
                await asyncio.sleep(0)

        await asyncio.gather(*(one() for _ in range(20)))
        return entered, limit.active

    entered, active = asyncio.run(scenario())
    assert len(entered) == 20 and max(entered) == 4 and active == 0
