"""The workbench under a team: 20 coders posting codes at once to `annotator serve` (target: 50 codes/s).

Each round, 20 HTTP clients (one thread each) post 100 codes each, one in ten twice at the same moment (a
double click): 2,200 requests. Figures: codes stored per second and the p50/p95 latency of a code submission,
for the real `annotator serve` process (session, CSRF token, account, queue and label checks, the ORM, SQLite)
and for the anchor (`benchmarks.workbench_anchor`: a bare Starlette app that writes each code with one
sqlite3 INSERT), alternating, three rounds each; medians and the ratio. Each round starts both servers afresh,
so the start-up of each (process start to its first answer, imports included; target 2 s) is a figure too. The clients run in this process, on
the same 2 cores as the server.
"""

from __future__ import annotations

import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

CODERS, PER_ROUND, ROUNDS = 20, 100, 3
TARGET_PER_S = 50.0
TARGET_START_S = 2.0  # `annotator serve` answering its first request


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(argv: list[str], port: int, took: list[float]) -> subprocess.Popen[bytes]:
    """Start a server process; appends to ``took`` the seconds until it answered its first request."""
    began = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(6000):
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
            took.append(time.perf_counter() - began)
            return proc
        except httpx.TransportError:
            time.sleep(0.005)
    proc.kill()
    raise RuntimeError(f"{argv[0]} did not start")


def _round(base: str, links: dict[str, str], keys: dict[str, list[str]]) -> tuple[float, list[float]]:
    latencies: list[float] = []
    lock = threading.Lock()

    def code(name: str) -> None:
        client = httpx.Client(base_url=base, timeout=120, headers={"x-coder": name})
        client.get(links[name])
        found = re.search(r'name="csrf" value="([^"]+)"', client.get("/code").text)
        csrf = found.group(1) if found else ""

        def post(key: str) -> float:
            start = time.perf_counter()
            answer = client.post("/code", data={"csrf": csrf, "document": key, "label": "positive"})
            assert answer.status_code == 303, answer.text[:300]
            return time.perf_counter() - start

        with ThreadPoolExecutor(2) as pair:
            for i, key in enumerate(keys[name]):
                sent = [pair.submit(post, key) for _ in range(2 if i % 10 == 0 else 1)]
                took = [s.result() for s in sent]
                with lock:
                    latencies.extend(took)

    start = time.perf_counter()
    threads = [threading.Thread(target=code, args=(n,)) for n in links]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, latencies


def _project(tmp: Path) -> tuple[Path, dict[str, str], dict[str, list[str]]]:
    from annotator.data.corpus import import_documents
    from annotator.project import init_project
    from annotator.services.workbench import accounts
    from annotator.services.workbench.assign import assign
    from annotator.store.coding import queue

    project = init_project(tmp / "wb", example="sentiment")
    n = CODERS * PER_ROUND * ROUNDS
    (tmp / "docs.csv").write_text("id,text\n" + "".join(f"d{i:05d},review number {i}\n" for i in range(n)))
    import_documents(project, tmp / "docs.csv")
    links = {f"c{k:02d}": accounts.add_coder(project, f"c{k:02d}") for k in range(CODERS)}
    assign(project, ",".join(links), n=PER_ROUND * ROUNDS, split="all")
    keys = {}
    for name, link in links.items():
        me = accounts.sign_in(project, link.token)
        assert me is not None
        with project.transaction() as session:
            keys[name] = [d.doc_key for _, d in queue(session, me.coder_id)]
    return project.root, {k: v.path for k, v in links.items()}, keys


def _summary(label: str, runs: list[tuple[float, list[float], int]]) -> float:
    rates = [codes / seconds for seconds, _, codes in runs]
    p50 = statistics.median(statistics.median(lat) for _, lat, _ in runs) * 1000
    p95 = statistics.median(sorted(lat)[int(len(lat) * 0.95)] for _, lat, _ in runs) * 1000
    rate = statistics.median(rates)
    shown = ", ".join(f"{r:.0f}" for r in rates)
    print(f"{label:<18} {rate:7.0f} codes/s (rounds: {shown})   p50 {p50:6.1f} ms   p95 {p95:6.1f} ms")
    return rate


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        root, links, keys = _project(tmp)
        ours: list[tuple[float, list[float], int]] = []
        anchor: list[tuple[float, list[float], int]] = []
        up_ours: list[float] = []
        up_anchor: list[float] = []
        for r in range(ROUNDS):
            part = {name: k[r * PER_ROUND : (r + 1) * PER_ROUND] for name, k in keys.items()}
            codes = CODERS * PER_ROUND
            port = _port()
            proc = _start(
                [sys.executable, "-m", "annotator", "-p", str(root), "serve", "--port", str(port)],
                port,
                up_ours,
            )
            try:
                seconds, lat = _round(f"http://127.0.0.1:{port}", links, part)
                ours.append((seconds, lat, codes))
            finally:
                proc.terminate()
                proc.wait()
            port = _port()
            db = tmp / f"anchor{r}.db"
            proc = _start(
                [sys.executable, "-m", "benchmarks.workbench_anchor", str(db), str(port)], port, up_anchor
            )
            try:
                seconds, lat = _round(f"http://127.0.0.1:{port}", links, part)
                anchor.append((seconds, lat, codes))
            finally:
                proc.terminate()
                proc.wait()
        print(
            f"{CODERS} coders x {PER_ROUND} codes a round (+10% double clicks), {ROUNDS} rounds each, alternating"
        )
        rate = _summary("annotator serve", ours)
        floor = _summary("anchor (bare)", anchor)
        verdict = "meets" if rate >= TARGET_PER_S else "MISSES"
        print(f"annotator / anchor: {rate / floor:.2f}x; {verdict} the target of {TARGET_PER_S:.0f} codes/s")
        up, up_floor = statistics.median(up_ours), statistics.median(up_anchor)
        shown = ", ".join(f"{t:.2f}" for t in up_ours)
        verdict = "meets" if up <= TARGET_START_S else "MISSES"
        print(
            f"start-up to the first answer: annotator serve {up:.2f} s (rounds: {shown}), anchor {up_floor:.2f} s, "
            f"{up / up_floor:.2f}x; {verdict} the target of {TARGET_START_S:.0f} s"
        )


if __name__ == "__main__":
    main()
