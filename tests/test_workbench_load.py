"""Twenty coders code at once over HTTP: 10,000 codes, one in ten sent twice at the same moment (a double
click), against a real `annotator serve` process. Every code is stored exactly once: none lost, none
duplicated. `benchmarks/bench_workbench.py` times the same load."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import col, select

from annotator.project import Project
from annotator.services.workbench import accounts
from annotator.services.workbench.assign import assign
from annotator.store.coding import queue
from annotator.store.models import Annotation, Assignment, Run
from tests.conftest import import_docs

pytestmark = [pytest.mark.slow, pytest.mark.both_databases]

CODERS, PER_CODER = 20, 500


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(project: Project) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "annotator", "-p", str(project.root), "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(base + "/", timeout=2)
            return proc, base
        except httpx.TransportError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(
        f"annotator serve did not start: {proc.stdout.read().decode() if proc.stdout else ''}"
    )


def _label(key: str) -> str:
    return "negative" if int(key[1:]) % 3 == 0 else "positive"


def test_twenty_coders_store_ten_thousand_codes_once_each(project: Project, tmp_path: Path) -> None:
    import_docs(project, tmp_path, {f"d{i:05d}": f"review number {i}" for i in range(CODERS * PER_CODER)})
    links = {f"coder{k:02d}": accounts.add_coder(project, f"coder{k:02d}") for k in range(CODERS)}
    assign(project, ",".join(links), n=PER_CODER, overlap=0, seed=1)
    keys: dict[str, list[str]] = {}
    for name, link in links.items():
        me = accounts.sign_in(project, link.token)
        assert me is not None
        with project.transaction() as session:
            keys[name] = [doc.doc_key for _, doc in queue(session, me.coder_id)]
    proc, base = _serve(project)
    failures: list[str] = []

    def code(name: str) -> None:
        client = httpx.Client(base_url=base, timeout=120)
        client.get(links[name].path)
        token = re.search(r'name="csrf" value="([^"]+)"', client.get("/code").text)
        assert token is not None
        csrf = token.group(1)

        def post(key: str) -> httpx.Response:
            return client.post("/code", data={"csrf": csrf, "document": key, "label": _label(key)})

        with ThreadPoolExecutor(2) as pair:
            for i, key in enumerate(keys[name]):
                sends = [pair.submit(post, key) for _ in range(2 if i % 10 == 0 else 1)]  # a double click
                for sent in sends:
                    status = sent.result().status_code
                    if status != 303:
                        failures.append(f"{name} {key}: {status}")

    try:
        threads = [threading.Thread(target=code, args=(name,)) for name in links]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert failures == []
    with project.transaction() as session:
        rows = session.exec(
            select(Annotation.document_id, func.count())
            .join(Run, col(Run.id) == col(Annotation.run_id))
            .where(col(Run.kind) == "human")
            .group_by(col(Annotation.document_id))
        ).all()
        coded = session.exec(select(func.count()).where(col(Assignment.coded_at).is_not(None))).one()
    assert len(rows) == CODERS * PER_CODER  # none lost
    assert {n for _, n in rows} == {1}  # none stored twice
    assert coded == CODERS * PER_CODER
