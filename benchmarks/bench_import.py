"""Import all 10,605 example sentences with their crowd and critics codes (target: under 30 s on 2 cores).

Figures: the whole `annotator import example` command in a fresh project (a real process, start-up
included), the library call alone, and a floor: the same rows written with plain sqlite3 executemany into
bare tables (no checks, no ORM), measured in the same run.
"""

from __future__ import annotations

import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 30.0
RATERS = 15


def _floor(tmp: Path) -> tuple[float, int]:
    from annotator.data.datasets import load_example

    start = time.perf_counter()
    data = load_example("rotten-tomatoes")
    conn = sqlite3.connect(tmp / "floor.db")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE documents (id INTEGER PRIMARY KEY, doc_key TEXT UNIQUE, text TEXT)")
    conn.execute("CREATE TABLE annotations (coder TEXT, doc_key TEXT, label TEXT, raw TEXT)")
    keys = [f"rt-{i}" for i in data.documents["id"]]
    conn.executemany(
        "INSERT INTO documents (doc_key, text) VALUES (?, ?)", zip(keys, data.documents["text"], strict=False)
    )
    rows = [
        (f"crowd-{k + 1}", key, "positive" if r[k] > 0 else "negative" if r[k] < 0 else "neutral", str(r[k]))
        for k in range(RATERS)
        for key, r in zip(keys, data.ratings, strict=False)
        if len(r) > k
    ]
    rows += [("critics", key, lab, None) for key, lab in zip(keys, data.critics or [], strict=False)]
    conn.executemany("INSERT INTO annotations VALUES (?, ?, ?, ?)", rows)
    conn.commit()
    conn.close()
    return time.perf_counter() - start, len(rows)


def _library(tmp: Path) -> tuple[float, int]:
    from annotator.data.example import import_example
    from annotator.project import init_project

    project = init_project(tmp / "lib", example="sentiment")
    start = time.perf_counter()
    result = import_example(project, raters=RATERS)
    return time.perf_counter() - start, result.codes_added


def _cli(tmp: Path) -> float:
    exe = [sys.executable, "-m", "annotator"]
    subprocess.run([*exe, "init", str(tmp / "cli")], check=True, capture_output=True)
    start = time.perf_counter()
    subprocess.run(
        [*exe, "--project", str(tmp / "cli"), "import", "example", "rotten-tomatoes"],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        floor_s, n_codes = _floor(tmp)
        lib_s, lib_codes = _library(tmp)
        cli_s = _cli(tmp)
    assert lib_codes == n_codes, (lib_codes, n_codes)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  10,605 documents + {n_codes:,} codes (critics + {RATERS} crowd pseudo-coders)")
    print(
        f"  annotator import example (CLI, new process): {cli_s:6.2f} s   target {TARGET_S:.0f} s  "
        f"-> {TARGET_S / cli_s:5.1f}x under target"
    )
    print(f"  import_example() library call:               {lib_s:6.2f} s   {n_codes / lib_s:,.0f} codes/s")
    print(
        f"  floor: plain sqlite3 executemany, no checks: {floor_s:6.2f} s   "
        f"annotator/floor = {lib_s / floor_s:4.1f}x"
    )
    print(f"  peak memory of this benchmark process: {peak_mb:,.0f} MB")


if __name__ == "__main__":
    main()
