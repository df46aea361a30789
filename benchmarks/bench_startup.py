"""CLI start-up: `annotator status` (target < 0.35 s) and `annotator run` on one cached document (< 0.5 s).

Each command is timed as a process, from its start to its exit, imports included, in a project of 1,000
documents whose one-document run is already answered (so `run` finds every answer stored and asks nothing).
Beside each, the same anchor: a Python process that opens the same SQLite file with sqlite3 and counts its
documents (the least a command that reads this database costs). Tool and anchor alternate, 7 rounds; medians.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.bench_labeling import timed
from benchmarks.loopback_server import start_server, stop

ROUNDS = 7
TARGETS = {"status": 0.35, "run (1 cached document)": 0.5}
ANCHOR = "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT count(*) FROM documents').fetchone())"


def main() -> None:
    proc, base_url = start_server(latency=0.0)
    try:
        with tempfile.TemporaryDirectory() as name:
            root = Path(name) / "p"
            cli = [sys.executable, "-m", "annotator", "--project", str(root)]
            subprocess.run(
                [*cli[:3], "init", str(root), "--example", "sentiment"], check=True, capture_output=True
            )
            docs = Path(name) / "docs.csv"
            docs.write_text("id,text\n" + "".join(f"d{i:04d},review {i} of a film\n" for i in range(1000)))
            subprocess.run([*cli, "import", "docs", str(docs)], check=True, capture_output=True)
            run = [*cli, "run", "--prompt", "sentiment/zero-shot.v1", "--model", "openai-compatible/loopback",
                   "--base-url", base_url, "--split", "all", "--sample", "1"]  # fmt: skip
            subprocess.run(run, check=True, capture_output=True)  # asks once; every later run is cached
            commands = {"status": [*cli, "status"], "run (1 cached document)": run}
            anchor = [sys.executable, "-c", ANCHOR, str(root / "annotator.db")]
            ours: dict[str, list[float]] = {k: [] for k in commands}
            floor: list[float] = []
            for _ in range(ROUNDS):
                for key, argv in commands.items():
                    floor.append(timed(anchor))
                    ours[key].append(timed(argv))
    finally:
        stop(proc)
    base = statistics.median(floor)
    print(f"  each a new process, imports included; medians of {ROUNDS}, alternating with the anchor:")
    print(f"  anchor (python + sqlite3, count the documents): {base:.3f} s")
    for key, times in ours.items():
        median = statistics.median(times)
        verdict = "meets" if median < TARGETS[key] else "MISSES"
        shown = ", ".join(f"{t:.2f}" for t in times)
        print(
            f"  annotator {key:<24} {median:.3f} s ({shown}); {median / base:4.1f}x the anchor; "
            f"{verdict} the target {TARGETS[key]} s"
        )


if __name__ == "__main__":
    main()
