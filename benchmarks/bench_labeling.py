"""LLM labeling throughput: `annotator run` as a user runs it, against a loopback server, beside anchors.

Figures (same machine, same run; tool and anchor alternated, medians of 3 on both sides):
- The headline: the `annotator run` CLI process timed end to end (imports, database, engine, storing), N=3,000
  at 100 ms latency, at concurrency 32 (target >= 88% of the 320/s ceiling) and 128 (target >= 80% of
  1,280/s), beside a hand-written labeling process (`benchmarks.client_anchor`: sqlite3 + aiohttp +
  gather, timed the same way).
- Second: the run engine alone (a warm `runner.label()` call in this process) beside a plain aiohttp loop
  in this process (target >= 0.95x), and a sequential loop over the openai client, the reference notebook's
  way (target >= 25x).
- A cached re-run of 10,000 labels (a second run whose every request is in the cache), through the CLI.
- A rate-limit storm, the real `annotator run` CLI process against a server that admits 80 requests/s (a
  token bucket: above it, 429 without Retry-After) at 100 ms, concurrency 32: 60 s in which every other
  request is refused with 429 Retry-After: 1, then, 10 s later, a 10 s outage in which every request is.
  Targets: 0 errors; labels/s during the storm >= 70% of what the server admits; back to 90% of that within
  5 s of the storm's and the outage's end (`python -m benchmarks.bench_labeling storm` runs this part alone).
The loopback server runs in its own process (benchmarks/loopback_server.py, ~0.07 ms CPU per request).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.loopback_server import (
    _aiohttp_run,
    _openai_run,
    _payload,
    server_stats,
    start_server,
    start_storm,
    stop,
)

LATENCY = 0.1
CONCURRENCY = 32
N = 3000
ROUNDS = 3
CLI_CONCURRENCY = (32, 128)
CLI_TARGET = {32: 0.88, 128: 0.80}
ENGINE_TARGET = 0.95
N_SEQUENTIAL = 30
N_CACHED = 10_000
CEILING = CONCURRENCY / LATENCY
ACCEPT_RATE = 80.0  # requests/s the rate-limited server admits
STORM_S = 60.0
STORM_LEAD_S = 8.0  # seconds of the run before the storm starts
OUTAGE_GAP_S = 10.0  # then, after the storm, this long until the outage
OUTAGE_S = 10.0  # every request refused
N_STORM = 7500  # enough for the run to outlast the outage by 10 s or more at the admitted rate
STORM_TARGET = 0.70
RECOVERY_TARGET_S = 5.0


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

    from annotator.data.example import import_example
    from annotator.project import init_project
    from annotator.store.models import Document

    project = init_project(tmp, example="sentiment")
    import_example(project, n=n, seed=1, raters=1)
    with project.transaction() as session:  # every document in dev
        session.connection().execute(update(Document).values(split="dev"))
    return project


def _annotator(project, base_url: str, n: int, tag: str, cache: bool = True) -> tuple[float, int, int]:  # type: ignore[no-untyped-def]
    """labels/s of `annotator run` (the library call: resolve, store, engine), cached answers, requests."""
    from annotator.llm.spec import RunRequest
    from annotator.services import run as runner

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


def _storm(tmp: Path) -> dict[str, float]:
    """Run the CLI through the storm and then the outage; the figures, from the answers' stored times (what
    the user gets) and the server's counters."""
    from sqlmodel import col, select

    from annotator.store.models import Annotation, Run, as_utc

    project = _project(tmp / "storm", N_STORM)
    proc, base_url = start_server(latency=LATENCY, accept_rate=ACCEPT_RATE)
    run: subprocess.Popen[str] | None = None
    try:
        cmd = [
            sys.executable,
            "-m",
            "annotator",
            "--project",
            str(project.root),
            "run",
            "--prompt",
            "sentiment/zero-shot.v1",
            "--model",
            "openai-compatible/loopback",
            "--base-url",
            base_url,
            "--concurrency",
            str(CONCURRENCY),
            "--tag",
            "storm",
        ]
        run = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while server_stats(base_url)["requests"] == 0 and run.poll() is None:
            if time.monotonic() > deadline:
                raise RuntimeError("the CLI run made no request within 120 s")
            time.sleep(0.1)
        time.sleep(STORM_LEAD_S)
        start, end = start_storm(base_url, STORM_S, every=2, retry_after=1.0)
        time.sleep(max(0.0, end + OUTAGE_GAP_S - time.time()))
        _, out_end = start_storm(base_url, OUTAGE_S, every=1, retry_after=1.0)
        out, err = run.communicate(timeout=1800)
        counters = server_stats(base_url)
    finally:
        if run is not None and run.poll() is None:
            run.kill()
        stop(proc)
    if run.returncode != 0:
        print(f"    (the CLI run exited {run.returncode}: {(err or out).strip()[-300:]})")
    with project.transaction() as session:
        rows = session.exec(
            select(Annotation.status, Annotation.created_at).join(Run).where(col(Run.kind) == "llm")
        ).all()
    ok = sorted(as_utc(t).timestamp() for status, t in rows if status == "ok")  # type: ignore[union-attr]
    errors = sum(status == "error" for status, _ in rows)
    first, last = ok[0], ok[-1]

    def count(a: float, b: float) -> int:
        return sum(a <= t < b for t in ok)

    def recovery(since: float) -> float:
        """Seconds after `since` until a second holds 90% of the admitted rate (nan: not before the end)."""
        t = since
        while t + 1.0 <= last:
            if count(t, t + 1.0) >= 0.9 * ACCEPT_RATE:
                return t - since
            t += 0.1
        return float("nan")

    return {
        "before": count(first + 2.0, start) / max(start - first - 2.0, 1e-9),  # after 2 s of warming up
        "during": count(start, end) / STORM_S,
        "after": count(end, end + OUTAGE_GAP_S) / OUTAGE_GAP_S,
        "recovery": recovery(end),
        "outage_recovery": recovery(out_end),
        "errors": errors,
        "refused": counters["refused"],
        "storm_refused": counters["storm_refused"],
        "requests": counters["requests"] + counters["refused"],
        "labels": len(ok),
        "tail": last - out_end,
    }


def _s(value: float) -> str:
    return "not reached" if value != value else f"{value:.1f} s"


def storm() -> None:
    with tempfile.TemporaryDirectory() as name:
        f = _storm(Path(name))
    ratio = f["during"] / ACCEPT_RATE
    passed = (
        f["errors"] == 0
        and ratio >= STORM_TARGET
        and f["recovery"] <= RECOVERY_TARGET_S
        and f["outage_recovery"] <= RECOVERY_TARGET_S
    )
    print(
        f"  rate-limit storm: `annotator run` CLI, {N_STORM:,} labels, concurrency {CONCURRENCY}, "
        f"{LATENCY * 1000:.0f} ms; the server admits {ACCEPT_RATE:.0f} requests/s (429 above); from "
        f"{STORM_LEAD_S:.0f} s in, {STORM_S:.0f} s of every other request 429 Retry-After: 1, then after "
        f"{OUTAGE_GAP_S:.0f} s, {OUTAGE_S:.0f} s of every request 429 Retry-After: 1"
    )
    print(
        f"    labels/s before the storm {f['before']:.1f}, during it {f['during']:.1f} ({ratio:.0%} of the "
        f"{ACCEPT_RATE:.0f}/s the server admits; target {STORM_TARGET:.0%}), after it {f['after']:.1f}"
    )
    print(
        f"    errors {f['errors']:.0f} (target 0) of {N_STORM:,}; back to 90% of the admitted rate "
        f"{_s(f['recovery'])} after the storm, {_s(f['outage_recovery'])} after the outage (target "
        f"{RECOVERY_TARGET_S:.0f} s); the last label {f['tail']:.1f} s after the outage"
    )
    print(
        f"    requests {f['requests']:,.0f}: {f['refused']:,.0f} answered 429 ({f['storm_refused']:,.0f} by the "
        f"storm and the outage, {f['refused'] - f['storm_refused']:,.0f} above the admitted rate)"
    )
    print(f"    storm target: {'PASS' if passed else 'FAIL'}")


def main(parts: list[str] | None = None) -> None:
    parts = parts or ["throughput", "storm"]
    if "throughput" in parts:
        throughput()
    if "storm" in parts:
        storm()


def timed(argv: list[str]) -> float:
    """Wall seconds of a process, from its start to its exit (which must be 0)."""
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{argv[:4]} failed: {done.stderr[-2000:]}")
    return elapsed


def _cli_run(root: Path, base_url: str, concurrency: int, tag: str, cache: bool = True) -> float:
    argv = [sys.executable, "-m", "annotator", "--project", str(root), "run", "--prompt", "sentiment/zero-shot.v1",
            "--model", "openai-compatible/loopback", "--base-url", base_url, "--split", "dev",
            "--concurrency", str(concurrency), "--tag", tag]  # fmt: skip
    return timed(argv + ([] if cache else ["--no-cache"]))


def _anchor_run(root: Path, base_url: str, concurrency: int) -> float:
    db = str(root / "annotator.db")
    return timed([sys.executable, "-m", "benchmarks.client_anchor", db, base_url, str(concurrency)])


def _rates(seconds: list[float], n: int) -> tuple[float, str]:
    rates = [n / s for s in seconds]
    return statistics.median(rates), ", ".join(f"{r:.0f}" for r in rates)


def throughput() -> None:
    proc, base_url = start_server(latency=LATENCY)
    cli: dict[int, list[float]] = {c: [] for c in CLI_CONCURRENCY}
    anchor: dict[int, list[float]] = {c: [] for c in CLI_CONCURRENCY}
    engine: list[float] = []
    plain: list[float] = []
    sequential: list[float] = []
    try:
        with tempfile.TemporaryDirectory() as name:
            project = _project(Path(name) / "p", N)
            for i in range(ROUNDS):
                for c in CLI_CONCURRENCY:
                    anchor[c].append(_anchor_run(project.root, base_url, c))
                    cli[c].append(_cli_run(project.root, base_url, c, tag=f"cli-{c}-{i}", cache=False))
                plain.append(N / asyncio.run(_aiohttp_run(base_url, N, CONCURRENCY)))
                engine.append(_annotator(project, base_url, N, tag=f"engine-{i}", cache=False)[0])
                sequential.append(_sequential(base_url, N_SEQUENTIAL))
            sdk = N / asyncio.run(_openai_run(base_url, N, CONCURRENCY))
    finally:
        stop(proc)
    print(
        f"  `annotator run` CLI process end to end, N={N:,} at {LATENCY * 1000:.0f} ms, {ROUNDS} rounds alternating:"
    )
    for c in CLI_CONCURRENCY:
        ceiling = c / LATENCY
        ours, shown = _rates(cli[c], N)
        floor, floor_shown = _rates(anchor[c], N)
        verdict = "meets" if ours / ceiling >= CLI_TARGET[c] else "MISSES"
        print(
            f"    C={c:<4} annotator run {ours:6.0f} labels/s ({shown}) {ours / ceiling:5.1%} of the {ceiling:.0f}/s "
            f"ceiling, {verdict} the target {CLI_TARGET[c]:.0%}; hand-written process {floor:6.0f}/s ({floor_shown}) "
            f"{floor / ceiling:5.1%}; annotator/anchor {ours / floor:4.2f}x"
        )
    best, shown = statistics.median(engine), ", ".join(f"{x:.0f}" for x in engine)
    loop, loop_shown = statistics.median(plain), ", ".join(f"{x:.0f}" for x in plain)
    seq = statistics.median(sequential)
    verdict = "meets" if best / loop >= ENGINE_TARGET else "MISSES"
    print(f"  the engine alone (a warm library call), N={N:,}, C={CONCURRENCY}:")
    print(
        f"    runner.label() {best:6.1f} labels/s ({shown}) {best / CEILING:5.1%} of ceiling; plain aiohttp loop "
        f"{loop:6.1f}/s ({loop_shown}); engine/aiohttp {best / loop:4.2f}x, {verdict} the target {ENGINE_TARGET}x"
    )
    print(
        f"    {best / seq:4.1f}x a sequential openai loop ({seq:.1f}/s, N={N_SEQUENTIAL}; target 25x); "
        f"AsyncOpenAI + gather (once) {sdk:6.1f}/s"
    )
    cached()


def cached() -> None:
    """A cached re-run of N_CACHED labels through the CLI: a new run (its own tag) whose every answer is in the
    cache, beside a first run that asked a 0 ms server."""
    proc, base_url = start_server(latency=0.0)
    try:
        with tempfile.TemporaryDirectory() as name:
            project = _project(Path(name) / "p", N_CACHED)
            fill = _cli_run(project.root, base_url, CONCURRENCY, tag="fill")
            rounds = [_cli_run(project.root, base_url, CONCURRENCY, tag=f"cached-{i}") for i in range(ROUNDS)]
            requests = server_stats(base_url)["requests"]
    finally:
        stop(proc)
    rate, shown = _rates(rounds, N_CACHED)
    print(
        f"  cached re-run of {N_CACHED:,} labels, CLI process: {rate:,.0f} labels/s ({shown}; target 10,000/s); "
        f"the first run at 0 ms latency: {N_CACHED / fill:,.0f} labels/s; requests in all: {requests:,.0f}"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
