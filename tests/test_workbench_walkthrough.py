"""The workbench as a new user meets it, end to end: every step through the `annotator` command (a real
process) or a real browser (headless Chromium), nothing through the library.

A lead creates a project from the bundled example, adds two coders and assigns them 50 documents each, 20 in
common, from the Assign page; `annotator serve` runs as its own process; each coder codes its queue with the
keyboard; the dashboard shows their alpha on the overlap with its n; the real local model labels what they
coded (`annotator run --coded-by alice,bob`); the lead opens the run's disagreements, tags two, opens an
adjudication in the browser and decides every waiting document; `validate --gold adjudicated` scores the run
on it; the report describes the coding process.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.test_local_run import smollm2  # noqa: F401  (the fixture that pulls the model once)
from tests.test_workbench_browser import _driver, _go, _wait_for_progress

pytestmark = [pytest.mark.slow, pytest.mark.model]

ANNOTATOR = str(Path(sys.executable).parent / "annotator")


def _cli(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        [ANNOTATOR, *args], cwd=cwd, capture_output=True, text=True, timeout=900, check=False
    )
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _link(out: str) -> str:
    found = re.search(r"(/signin/\S+)", out)
    assert found is not None, out
    return found.group(1)


def _start_server(root: Path, port: int) -> subprocess.Popen[str]:
    server = subprocess.Popen(
        [ANNOTATOR, "serve", "--port", str(port)],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 401:
                return server
        except httpx.TransportError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise AssertionError(f"annotator serve did not start: {server.communicate()[0]}")
        time.sleep(0.1)


NEGATIVE = ("bad", "dull", "boring", "worst", "fails", "mess", "tedious", "not ")


def _reading(text: str) -> str:
    """How our scripted coders read a text: negative if it has a negative word."""
    return "negative" if any(w in text.lower() for w in NEGATIVE) else "positive"


def _code_queue(driver, base: str, link: str, flip_among: set[str]) -> dict[str, str]:
    """Sign in with ``link`` and code the whole queue with the keyboard (by `_reading`); every fourth
    document met that is in ``flip_among`` gets the other polarity. Returns what was coded."""
    from selenium.webdriver.common.by import By

    driver.delete_all_cookies()
    driver.get(base + link)
    keys = {
        str(b.get_attribute("value")): str(b.get_attribute("data-key"))
        for b in driver.find_elements(By.CSS_SELECTOR, "#code-form button.label")
    }
    coded: dict[str, str] = {}
    met = 0
    for k in range(50):
        doc = str(driver.find_element(By.NAME, "document").get_attribute("value"))
        label = _reading(driver.find_element(By.ID, "text").text)
        if doc in flip_among:
            if met % 4 == 0:
                label = "negative" if label == "positive" else "positive"
            met += 1
        driver.find_element(By.TAG_NAME, "body").send_keys(keys[label])
        coded[doc] = label
        _wait_for_progress(driver, k + 1)
    assert "Your queue is done" in driver.page_source
    return coded


def test_a_new_user_runs_the_whole_workbench_loop(tmp_path: Path, smollm2) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    _cli(tmp_path, "init", "walk", "--example", "sentiment")
    root = tmp_path / "walk"
    _cli(root, "import", "example", "rotten-tomatoes")
    _cli(root, "split", "--test", "0.3", "--seed", "1", "--stratify-by-coder", "critics")
    links = {"lena": _link(_cli(root, "coders", "add", "lena", "--role", "lead"))}
    for name in ("alice", "bob"):
        links[name] = _link(_cli(root, "coders", "add", name))
    port = _free_port()
    server = _start_server(root, port)
    base = f"http://127.0.0.1:{port}"
    driver = _driver(tmp_path)
    try:
        # the lead assigns from the Assign page: 50 documents each, 20 of them shared
        driver.get(base + links["lena"])
        driver.get(base + "/assign")
        for box in driver.find_elements(By.CSS_SELECTOR, 'input[name="coder"]'):
            if box.get_attribute("value") in ("alice", "bob"):
                box.click()
        driver.find_element(By.ID, "n").send_keys("50")
        overlap = driver.find_element(By.ID, "overlap")
        overlap.clear()
        overlap.send_keys("20")
        _go(driver, driver.find_element(By.ID, "assign"))
        assert "Assignment 1 queued: 80 documents" in driver.find_element(By.ID, "made").text

        # each coder codes its 50 documents with the keyboard; bob reads a quarter of the shared ones otherwise
        alice = _code_queue(driver, base, links["alice"], set())
        bob = _code_queue(driver, base, links["bob"], set(alice))
        shared = set(alice) & set(bob)
        disagree = {d for d in shared if alice[d] != bob[d]}
        assert len(shared) == 20 and len(disagree) == 5

        # the dashboard shows their alpha on the 20 shared documents, with its interval and n
        driver.delete_all_cookies()
        driver.get(base + links["lena"])
        driver.get(base + "/dashboard")
        alpha = driver.find_element(By.CSS_SELECTOR, "section.agreement p").text
        assert re.search(
            r"alpha \(nominal\): -?\d\.\d{3} \[-?\d\.\d{3}, -?\d\.\d{3}\] provisional, n = 20 documents",
            alpha,
        ), alpha

        # the real local model labels the documents both coded
        ran = json.loads(_cli(root, "run", "--prompt", "sentiment/zero-shot.v1", "--model", "local/smollm2",
                              "--coded-by", "alice,bob", "--coded-by-all", "--json"))  # fmt: skip
        run_id = ran["id"]
        assert ran["status"] == "done" and ran["ok"] + ran["invalid"] == 20

        # the lead reviews the run's disagreements with the humans and tags two documents
        driver.get(base + "/review")
        _go(driver, driver.find_element(By.CSS_SELECTOR, f'a[href="/review/{run_id}"]'))
        assert "documents agree" in driver.find_element(By.ID, "units").text
        tagged: set[str] = set()
        for k in range(2):
            cells = driver.find_elements(By.CSS_SELECTOR, "#matrix td.disagree a")
            assert cells, "the run agrees with the coders everywhere"
            _go(driver, cells[k % len(cells)])
            docs = driver.find_elements(By.CSS_SELECTOR, "#cell a")
            _go(driver, docs[-1] if k and len(docs) > 1 else docs[0])
            tagged.add(str(driver.find_element(By.NAME, "doc").get_attribute("value")))
            driver.find_element(By.CSS_SELECTOR, 'input[value="model error"]').click()
            driver.find_element(By.NAME, "memo").send_keys(f"walkthrough note {k}")
            _go(driver, driver.find_element(By.ID, "save-note"))
            driver.get(base + f"/review/{run_id}")

        # the lead opens an adjudication in the browser and decides every waiting document
        driver.get(base + "/adjudicate")
        _go(driver, driver.find_element(By.ID, "open"))
        state = driver.find_element(By.ID, "adjudication-state").text
        assert "15 unanimous (passed through), 0 adjudicated, 5 waiting" in state, state
        for _ in range(5):
            _go(driver, driver.find_element(By.CSS_SELECTOR, '#adjudicate-form button[value="negative"]'))
        assert "5 adjudicated, 0 waiting" in driver.find_element(By.ID, "adjudication-state").text
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
    finally:
        driver.quit()
        server.send_signal(signal.SIGINT)
        out, _ = server.communicate(timeout=30)
    assert f"annotator workbench on http://127.0.0.1:{port}" in out
    assert "alice (coder)" in out and links["alice"].split("/")[-1] not in out  # names, never a token

    validated = json.loads(_cli(root, "validate", "--gold", "adjudicated", "--split", "dev", "--json"))
    entry = next(r for r in validated["runs"] if r["run_id"] == run_id)
    assert entry["n_gold"] == 20  # the run was asked the 20 adjudicated documents
    _cli(root, "report", "--out", "report.html")
    report = (root / "report.html").read_text(encoding="utf-8")
    assert "Human coding: workbench, review and adjudication" in report
    assert "20 documents were queued to more than one coder" in report
    assert "15 documents on which every coder agreed passed through; 5 adjudicated by lena" in report
    assert "model error: 2" in report and len(tagged) == 2
