"""Import 1,000,000 short documents with the real CLI: peak memory (target: under 400 MB) and documents/s.

`annotator import docs FILE` runs as its own process in a fresh `annotator init` project, on a generated CSV
of id,text rows (~60 characters of text each); its peak RSS comes from the kernel (os.wait4's rusage of that
one process). Anchors measured in the same run, each its own process too: the interpreter with annotator's
CLI imported and nothing done (the floor under any command), and a bare import with the standard library
alone (csv.reader streaming into sqlite3 executemany, one transaction, no checks, no ORM).

ANNOTATOR_BENCH_DOCS=N changes the number of documents (e.g. to compare with an older version at 400,000).
"""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

N_DOCS = int(os.environ.get("ANNOTATOR_BENCH_DOCS", "1000000"))
TARGET_MB = 400.0
WORDS = [
    *("film", "plot", "actor", "scene", "story", "music", "slow", "witty", "dull", "warm", "cold", "bright"),
    *("long", "short", "sharp", "tender", "clumsy", "brilliant", "tedious", "charming", "moving", "flat"),
    *("script", "camera", "light", "dark", "funny", "sad", "odd", "fine"),
]

FLOOR = """
import csv, hashlib, sqlite3, sys
conn = sqlite3.connect(sys.argv[2])
conn.execute("CREATE TABLE documents (id INTEGER PRIMARY KEY, doc_key TEXT UNIQUE, text TEXT, sha TEXT)")
with open(sys.argv[1], encoding="utf-8", newline="") as fh:
    rows = csv.reader(fh)
    next(rows)
    conn.executemany(
        "INSERT INTO documents (doc_key, text, sha) VALUES (?, ?, ?)",
        ((k, t, hashlib.sha256(t.encode()).hexdigest()) for k, t in rows),
    )
conn.commit()
"""


def generate(path: Path, n: int) -> int:
    """n rows of id,text with ~60 characters of text (seeded); returns the file's size in bytes."""
    rng = random.Random(0)
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write("id,text\n")
        for i in range(n):
            words = []
            while sum(len(w) + 1 for w in words) < 52:
                words.append(rng.choice(WORDS))
            fh.write(f"doc-{i},Review {i % 1000}: {' '.join(words)}\n")
    return path.stat().st_size


def measure(args: list[str], cwd: Path) -> tuple[float, float, int, str]:
    """Run one process; (seconds, peak RSS in MB, exit status, the end of its stderr)."""
    err = cwd / "stderr.txt"
    with err.open("wb") as errfh:
        start = time.perf_counter()
        proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=errfh)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    rss_mb = usage.ru_maxrss / 1024  # kilobytes on Linux
    return seconds, rss_mb, proc.returncode, err.read_text(errors="replace")[-500:]


def count_documents(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM documents").fetchone()[0])


def main() -> None:
    exe = [sys.executable, "-m", "annotator"]
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        data = tmp / "docs.csv"
        size = generate(data, N_DOCS)
        subprocess.run([*exe, "init", str(tmp / "proj")], check=True, capture_output=True)
        floor_s, floor_mb, code, err = measure(
            [sys.executable, "-c", "import annotator.cli, annotator.data.corpus"], tmp
        )
        assert code == 0, err
        bare_s, bare_mb, code, err = measure(
            [sys.executable, "-c", FLOOR, str(data), str(tmp / "bare.db")], tmp
        )
        assert code == 0, err
        cli_s, cli_mb, code, err = measure(
            [*exe, "--project", str(tmp / "proj"), "import", "docs", str(data)], tmp
        )
        assert code == 0, err
        stored = count_documents(tmp / "proj" / "annotator.db")
    assert stored == N_DOCS, (stored, N_DOCS)
    verdict = "PASS" if cli_mb < TARGET_MB else "FAIL"
    print(f"  {N_DOCS:,} documents, {size / 1e6:,.0f} MB of CSV (~60 characters of text each)")
    print(
        f"  annotator import docs (CLI, new process): peak RSS {cli_mb:6,.0f} MB   target < {TARGET_MB:.0f} MB "
        f"-> {verdict}   {cli_s:6.1f} s   {N_DOCS / cli_s:9,.0f} documents/s"
    )
    print(f"  floor: interpreter + annotator CLI imported:  peak RSS {floor_mb:6,.0f} MB   {floor_s:6.1f} s")
    print(
        f"  anchor: csv.reader -> sqlite3 executemany:   peak RSS {bare_mb:6,.0f} MB   {bare_s:6.1f} s   "
        f"{N_DOCS / bare_s:9,.0f} documents/s   annotator/anchor time = {cli_s / bare_s:4.1f}x"
    )
    print(f"  memory above the floor: {(cli_mb - floor_mb) * 1e6 / N_DOCS:,.0f} bytes per document")


if __name__ == "__main__":
    main()
