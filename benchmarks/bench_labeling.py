"""LLM labeling throughput: annotator's run engine against a loopback server, beside plain clients.

Figures (same machine, same run):
- 100 ms latency, concurrency 32, N=3,200: annotator's labels/s as a share of the 320/s ceiling (target
  >= 90%) and as a multiple of a sequential loop over the openai client, the reference notebook's way
  (target >= 25x); beside it, the plain AsyncOpenAI + Semaphore + gather and a plain aiohttp client.
- A cached re-run of 10,000 labels (a second run whose every request is in the cache): labels/s (target
  >= 2,000/s).
The loopback server runs in its own process (benchmarks/loopback_server.py, ~0.07 ms CPU per request).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.loopback_server import _aiohttp_run, _openai_run, _payload, start_server, stop

LATENCY = 0.1
CONCURRENCY = 32
N = 3200
N_SEQUENTIAL = 30
N_CACHED = 10_000
CEILING = CONCURRENCY / LATENCY


def _sequential(base_url: str, n: int) -> float:
    """labels/s of a loop over the sync openai client, one text at a time."""
    import openai

    client = openai.OpenAI(base_url=base_url, api_key="loopback", max_retries=0)
    client.chat.completions.create(**_payload(-1))  # type: ignore[call-overload]
    start = time.perf_counter()
    for i in range(n):
        completion = client.chat.completions.create(**_payload(i))  # type: ignore[call-overload]
        json.loads(completion.choices[0].message.content)["label"]
    return n / (time.perf_counter() - start)


def _project(tmp: Path, n: int):  # type: ignore[no-untyped-def]
    from sqlalchemy import update

    from annotator.example import import_example
    from annotator.project import init_project
    from annotator.store.models import Document

    project = init_project(tmp, example="sentiment")
    import_example(project, n=n, seed=1, raters=1)
    with project.transaction() as session:  # every document in dev
        session.connection().execute(update(Document).values(split="dev"))
    return project


def _annotator(project, base_url: str, n: int, tag: str, cache: bool = True) -> tuple[float, int, int]:  # type: ignore[no-untyped-def]
    """labels/s of `annotator run` (the library call: resolve, store, engine), cached answers, requests."""
    from annotator.llm import runner
    from annotator.llm.spec import RunRequest

    request = RunRequest(
        prompt="sentiment/zero-shot.v1",
        model="openai-compatible/loopback",
        base_url=base_url,
        split="dev",
        concurrency=CONCURRENCY,
        tag=tag,
        cache=cache,
    )
    start = time.perf_counter()
    outcome = runner.label(project, request)
    elapsed = time.perf_counter() - start
    assert outcome.stats.done == n and outcome.stats.ok == n, outcome.stats
    return n / elapsed, outcome.stats.cached, outcome.stats.requests


def main() -> None:
    proc, base_url = start_server(latency=LATENCY)
    try:
        with tempfile.TemporaryDirectory() as name:
            project = _project(Path(name) / "p", N)
            sequential = _sequential(base_url, N_SEQUENTIAL)
            sdk = N / asyncio.run(_openai_run(base_url, N, CONCURRENCY))
            plain = N / asyncio.run(_aiohttp_run(base_url, N, CONCURRENCY))
            ours = [_annotator(project, base_url, N, tag=f"bench-{i}", cache=False)[0] for i in range(3)]
            best = statistics.median(ours)
    finally:
        stop(proc)
    print(
        f"  {N:,} labels at {LATENCY * 1000:.0f} ms latency, concurrency {CONCURRENCY} (ceiling {CEILING:.0f}/s):"
    )
    print(f"    sequential openai client (N={N_SEQUENTIAL}):   {sequential:7.1f} labels/s")
    print(
        f"    AsyncOpenAI + Semaphore + gather:        {sdk:7.1f} labels/s  {sdk / CEILING:5.1%} of ceiling"
    )
    print(
        f"    plain aiohttp + Semaphore + gather:      {plain:7.1f} labels/s  {plain / CEILING:5.1%} of ceiling"
    )
    print(
        f"    annotator run (median of {', '.join(f'{x:.1f}' for x in ours)}): {best:7.1f} labels/s  "
        f"{best / CEILING:5.1%} of ceiling (target 90%), {best / sequential:4.1f}x sequential (target 25x), "
        f"{best / sdk:4.2f}x AsyncOpenAI"
    )
    proc, base_url = start_server(latency=0.0)
    try:
        with tempfile.TemporaryDirectory() as name:
            project = _project(Path(name) / "p", N_CACHED)
            fill, _, requests = _annotator(project, base_url, N_CACHED, tag="fill")
            cached_rates = []
            for i in range(2):
                rate, cached, _ = _annotator(project, base_url, N_CACHED, tag=f"cached-{i}")
                assert cached == N_CACHED
                cached_rates.append(rate)
    finally:
        stop(proc)
    print(
        f"  cached re-run of {N_CACHED:,} labels: {statistics.median(cached_rates):,.0f} labels/s (target 2,000/s); "
        f"the first run at 0 ms latency: {fill:,.0f} labels/s with {requests:,} requests"
    )


if __name__ == "__main__":
    main()
