"""LLM runs against a scripted OpenAI-compatible endpoint: answers, failures, cache, resume, concurrency.

The scripted server stands in only for failure modes a real server will not produce on demand; the real
local model is exercised in test_local_run.py.
"""

from __future__ import annotations

import functools
import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlmodel import col, select

from annotator.data.corpus import import_documents
from annotator.data.splits import make_split
from annotator.llm.spec import RunError
from annotator.llm.transport import RunAborted
from annotator.services import run as runner
from annotator.store.models import Annotation, Coder, PromptVersion, Run
from annotator.store.registry import freeze_prompt
from tests.conftest import (
    db_snapshot,
    film_texts,
    import_parts,
    run_annotations,
    scripted_args,
    scripted_request,
    write,
)
from tests.scripted_server import Broken, Fail, Label, ScriptedServer, Sleep

pytestmark = pytest.mark.both_databases

WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
    "sierra",
    "tango",
]


def _label_for(text: str) -> str:
    return "negative" if "awful" in text else "positive"


@pytest.fixture
def server():
    with ScriptedServer(label_for=_label_for) as srv:
        yield srv


@pytest.fixture
def docs(project, tmp_path: Path) -> dict[str, str]:
    """Twenty documents, all in dev except the last four (test)."""
    return import_parts(project, tmp_path, film_texts(WORDS), test_from=16)


_request = functools.partial(scripted_request, split="dev", concurrency=4, retries=2)


def test_run_stores_every_answer_with_provenance(project, docs, server) -> None:
    outcome = runner.label(project, _request(server))
    assert outcome.status == "done"
    stored = run_annotations(project, outcome.run_id)
    assert len(stored) == 16 and len(server.requests) == 16
    for key, a in stored.items():
        assert a.status == "ok" and a.label == _label_for(docs[key])
        assert a.raw == f'{{"label": "{a.label}"}}' and a.tokens_in and a.latency_ms is not None
        assert a.attempts == 1 and not a.cached
        assert a.probability is not None and abs(a.probability - 0.9) < 1e-6  # from the logprobs
    with project.transaction() as s:
        run = s.get(Run, outcome.run_id)
    assert run.n_ok == 16 and run.status == "done" and run.params["model_params"]["temperature"] == 0
    assert run.versions["annotator"] and run.spec_sha256 and run.lease_owner is None
    body = server.requests[0].body
    assert body["response_format"]["json_schema"]["schema"]["properties"]["label"]["enum"] == [
        "negative",
        "positive",
        "neutral",
    ]
    assert body["temperature"] == 0 and body["seed"] == 42 and body["logprobs"] is True


def test_same_spec_again_makes_no_call_and_a_tagged_run_is_answered_from_cache(project, docs, server) -> None:
    first = runner.label(project, _request(server, sample=8, seed=3))
    calls = len(server.requests)
    again = runner.label(project, _request(server, sample=8, seed=3))
    assert again.run_id == first.run_id and again.stats.done == 0 and again.stats.before == 8
    tagged = runner.label(project, _request(server, sample=8, seed=3, tag="copy"))
    assert tagged.run_id != first.run_id and len(server.requests) == calls
    assert all(a.cached and a.status == "ok" for a in run_annotations(project, tagged.run_id).values())
    fresh = runner.label(project, _request(server, sample=8, seed=3, tag="fresh", cache=False))
    assert fresh.stats.cached == 0 and len(server.requests) == calls + 8


def test_retries_honour_retry_after_and_recover_from_500_and_timeouts(project, docs, server) -> None:
    server.script([Fail(429, retry_after=1), Fail(500), Fail(503)], text_contains="alpha")
    server.script([Sleep(3)], text_contains="bravo")
    outcome = runner.label(project, _request(server, timeout=1.0, retries=3))
    stored = run_annotations(project, outcome.run_id)
    assert outcome.status == "done" and all(a.status == "ok" for a in stored.values())
    assert stored["d00"].attempts == 4 and stored["d01"].attempts == 2
    alpha = [r.time for r in server.requests if "alpha" in r.text]
    assert alpha[1] - alpha[0] >= 0.9  # waited for Retry-After: 1


def test_invalid_output_is_reasked_then_stored_invalid_with_raw_text(project, docs, server) -> None:
    server.script([Broken()], text_contains="alpha")  # a re-ask fixes it
    server.script([Label("ecstatic")], text_contains="charlie")  # never valid: neither the answer...
    server.script([Label("ecstatic")], text_contains="Input should be")  # ...nor the re-ask
    outcome = runner.label(project, _request(server, reasks=1))
    stored = run_annotations(project, outcome.run_id)
    assert stored["d00"].status == "ok" and stored["d00"].attempts == 2
    bad = stored["d02"]
    assert bad.status == "invalid" and bad.label is None and bad.raw == '{"label": "ecstatic"}'
    assert "ecstatic" not in (bad.label or "") and "Input should be" in bad.error
    reask = [r for r in server.requests if "That answer is not valid" in r.text]
    assert len(reask) == 2 and reask[0].body["messages"][-2]["role"] == "assistant"


def test_failing_item_ends_as_error_without_stopping_the_run_and_resume_retries_it(
    project, docs, server
) -> None:
    server.script([Fail(500)] * 3, text_contains="delta")
    outcome = runner.label(project, _request(server, retries=2))
    stored = run_annotations(project, outcome.run_id)
    assert (
        stored["d03"].status == "error" and "HTTP 500" in stored["d03"].error and stored["d03"].attempts == 3
    )
    assert sum(a.status == "ok" for a in stored.values()) == 15
    resumed = runner.resume(project, outcome.run_id)
    assert resumed.stats.done == 1 and run_annotations(project, outcome.run_id)["d03"].status == "ok"
    assert len(run_annotations(project, outcome.run_id)) == 16


def test_bad_key_stops_the_run_and_no_key_is_stored(project, docs, server, monkeypatch) -> None:
    secret = "sk-test-SECRET-do-not-store-123"
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", secret)
    server.rule = lambda text, attempt: Fail(401, message="invalid api key")
    with pytest.raises(
        RunAborted, match=r"refused the credentials \(HTTP 401\); check OPENAI_COMPATIBLE_API_KEY"
    ) as exc:
        runner.label(project, _request(server))
    assert secret not in str(exc.value)
    assert server.requests[0].body  # the key went in the header, not the body
    assert secret not in db_snapshot(project)
    with project.transaction() as s:  # refused before any answer: nothing was created
        assert s.exec(select(Run)).all() == []
        assert s.exec(select(PromptVersion)).all() == []
        assert s.exec(select(Coder).where(col(Coder.kind) == "llm")).all() == []


def test_max_cost_stops_before_spending_more(project, docs, server, tmp_path) -> None:
    toml = project.root / "annotator.toml"
    toml.write_text(
        toml.read_text() + '\n[prices."openai-compatible/scripted"]\ninput = 1000\noutput = 1000\n'
    )
    from annotator.project import load_project

    priced = load_project(project.root)
    outcome = runner.label(priced, _request(server, max_cost=0.5, concurrency=1))
    assert outcome.status == "interrupted" and "--max-cost" in outcome.message
    with priced.transaction() as s:
        run = s.get(Run, outcome.run_id)
    assert 0 < run.cost_usd <= 0.5 and 0 < run.n_ok < 16


def test_test_split_needs_a_frozen_prompt(project, docs, server) -> None:
    with pytest.raises(RunError, match="not frozen, so it may not run on the test split"):
        runner.label(project, _request(server, split="test"))
    assert server.requests == []
    freeze_prompt(project, "sentiment/zero-shot.v1")
    assert runner.label(project, _request(server, split="test")).stats.ok == 4


def test_document_text_reaches_the_model_verbatim(project, server, tmp_path) -> None:
    import_documents(project, write(tmp_path / "x.csv", 'id,text\nx,"{{ 7*7 }} and {% raw %}"\n'))
    make_split(project, 0.5, 1)
    make_split(project, 0.01, 1, force=True)  # one document: all dev
    runner.label(project, _request(server))
    assert server.requests[0].text == "{{ 7*7 }} and {% raw %}"


def _cli_run(project, server, *extra: str) -> subprocess.Popen:
    args = [
        sys.executable,
        "-m",
        "annotator",
        "--project",
        str(project.root),
        "run",
        *scripted_args(server),
        "--concurrency",
        "2",
        *extra,
    ]
    # a shell that starts a job in the background (CI runners may) makes it ignore SIGINT, and Python then
    # installs no Ctrl-C handler: give the child the default, as a terminal would
    return subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _stored_keys(project) -> set[str]:
    """What another process stored, read through a fresh connection (SQLite or PostgreSQL)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(project.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT d.doc_key FROM annotations a JOIN documents d ON d.id = a.document_id")
            )
            return {k for (k,) in rows}
    finally:
        engine.dispose()


def _wait_for(condition, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


@pytest.mark.slow
def test_kill_9_then_resume_asks_only_for_what_is_missing(project, docs, server) -> None:
    """Every dev document is asked at once: the first eight are answered, the other eight hang until the
    kill, so what is stored when it comes is known."""
    proc, fast = _stuck_run(project, docs, server)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = _stored_keys(project)
    assert saved == fast
    server.rule = None
    before = server.answered
    resumed = _cli_run(project, server)
    _out, err = resumed.communicate(timeout=60)
    assert resumed.returncode == 0, err
    assert len(_stored_keys(project)) == 16
    with project.transaction() as s:
        assert len(s.exec(select(Annotation)).all()) == 16  # no duplicate rows
        assert s.exec(select(Run.status)).one() == "done"
    key_of = {t: k for k, t in docs.items()}
    after = server.answered
    asked_again = {key_of[t] for t, n in after.items() if n > before.get(t, 0)}
    assert not asked_again & saved  # no stored answer was paid for twice
    assert asked_again == set(docs) - saved - {k for k in docs if int(k[1:]) >= 16}


@pytest.mark.slow
def test_the_same_run_started_twice_at_once(project, docs, server) -> None:
    server.latency = 0.2
    first, second = _cli_run(project, server), _cli_run(project, server)
    results = [p.communicate(timeout=90) for p in (first, second)]
    codes = sorted(p.returncode for p in (first, second))
    assert codes in ([0, 0], [0, 2]), results
    if codes == [0, 2]:
        loser = results[[first.returncode, second.returncode].index(2)]
        assert "being labeled by another annotator process" in loser[1]
    assert len(_stored_keys(project)) == 16
    assert all(n == 1 for n in server.answered.values()) and len(server.answered) == 16


def _stuck_run(project, docs, server) -> tuple[subprocess.Popen, set[str]]:
    """A CLI run that asks for every dev document at once: the first eight are answered, the other eight hang
    until the test's signal, so what is stored when it comes is known. Returns the process and those eight."""
    fast = {k for k in docs if int(k[1:]) < 8}
    slow = {docs[k] for k in docs if k not in fast}
    server.rule = lambda text, attempt: Sleep(300) if text in slow else None
    proc = _cli_run(project, server, "--concurrency", "16", "--timeout", "300")
    _wait_for(lambda: _stored_keys(project) == fast)
    _wait_for(lambda: len(server.requests) == 16)  # the hung ones are in flight: none will be answered
    return proc, fast


@pytest.mark.slow
def test_ctrl_c_leaves_the_run_interrupted_with_answers_saved(project, docs, server) -> None:
    proc, fast = _stuck_run(project, docs, server)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "interrupted" in err
    with project.transaction() as s:
        run = s.exec(select(Run)).one()
    assert run.status == "interrupted" and run.lease_owner is None
    assert _stored_keys(project) == fast
    # the message names the run and what is saved, and the command that continues it
    saved = run.n_ok + run.n_invalid + run.n_error
    assert f"run {run.id} has {saved} of 16 answers saved" in err, err
    assert f"annotator run --resume {run.id}" in err and "--resume RUN" not in err


@pytest.mark.slow
def test_sigterm_is_handled_as_ctrl_c(project, docs, server) -> None:
    proc, fast = _stuck_run(project, docs, server)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    with project.transaction() as s:
        run = s.exec(select(Run)).one()
    assert run.status == "interrupted" and run.error == "stopped by SIGTERM" and run.lease_owner is None
    saved = run.n_ok + run.n_invalid + run.n_error
    assert saved == 8 and _stored_keys(project) == fast
    assert f"interrupted (SIGTERM): run {run.id} has {saved} of 16 answers saved" in err, err
    assert "Traceback" not in err


@pytest.mark.slow
def test_after_kill_9_the_run_shows_stale_with_the_answers_it_stored(project, docs, server, cli) -> None:
    proc, fast = _stuck_run(project, docs, server)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _stored_keys(project) == fast
    listed = cli("runs", "--json")
    [row] = json.loads(listed.out)
    assert row["status"] == "stale" and row["ok"] == len(fast) and "--resume" in row["message"]
    table = cli("runs")
    assert "stale (process gone)" in table.out
    server.rule = None
    resumed = cli("run", "--resume", str(row["id"]))
    assert resumed.code == 0, resumed
    [row] = json.loads(cli("runs", "--json").out)
    assert row["status"] == "done" and row["ok"] == 16


def test_a_live_lease_holder_keeps_its_run_even_after_the_lease_time(project, docs, server) -> None:
    import os
    import socket
    from datetime import timedelta

    from annotator.llm.runstore import RunBusy
    from annotator.store.models import utcnow

    outcome = runner.label(project, _request(server, sample=3))
    with project.transaction() as s:  # pretend a live process (this one) holds it, with an expired lease
        run = s.get(Run, outcome.run_id)
        run.lease_owner, run.lease_pid, run.lease_host = "someone-else", os.getpid(), socket.gethostname()
        run.lease_until = utcnow() - timedelta(hours=1)
        s.add(run)
    with pytest.raises(RunBusy, match="being labeled by another annotator process"):
        runner.label(project, _request(server, sample=3))


def test_documents_added_later_make_a_new_run_not_a_bigger_one(project, docs, server, tmp_path) -> None:
    first = runner.label(project, _request(server))
    import_documents(project, write(tmp_path / "more.csv", "id,text\nz1,zulu film\n"))
    make_split(project, 0.01, seed=1, new_only=True)
    second = runner.label(project, _request(server))
    assert second.run_id != first.run_id and second.stats.total == 17
    assert second.stats.cached == 16  # the 16 answers it shares with the first run cost nothing


def test_max_cost_needs_max_tokens_and_counts_what_the_run_spent_before(project, docs, server) -> None:
    toml = project.root / "annotator.toml"
    toml.write_text(
        toml.read_text() + '\n[prices."openai-compatible/scripted"]\ninput = 1000\noutput = 1000\n'
    )
    from annotator.project import load_project

    priced = load_project(project.root)
    write(
        priced.prompts_dir / "sentiment/nomax.v1.jinja", "[system]\nLabel it.\n[user]\n{{ document.text }}\n"
    )
    with pytest.raises(RunError, match=r"max_cost=1\.0 needs a bound on each answer"):
        runner.label(priced, _request(server, prompt="sentiment/nomax.v1", max_cost=1.0))
    with priced.transaction() as s:
        assert s.exec(select(Run)).all() == []  # a refused request leaves no run behind
    first = runner.label(priced, _request(server, max_cost=0.3, concurrency=1))
    again = runner.resume(priced, first.run_id)  # the stored --max-cost applies to the whole run
    with priced.transaction() as s:
        run = s.get(Run, first.run_id)
    assert again.stats.done == 0 and run.cost_usd <= 0.3


def test_a_codebook_changed_after_freezing_is_refused_on_test(project, docs, server) -> None:
    freeze_prompt(project, "sentiment/zero-shot.v1")
    path = project.codebooks_dir / "sentiment.yaml"
    path.write_text(
        path.read_text()
        .replace("version: 1", "version: 2")
        .replace("\ndescription: >-\n", "\ndescription: >-\n  Edited.\n", 1)
    )
    with pytest.raises(RunError, match=r"the codebook \(sentiment@2\) changed since"):
        runner.label(project, _request(server, split="test"))
    assert server.requests == []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("localhost:8000/v1", "write a full address"),
        ("http://bob:pw@127.0.0.1:9/v1", "user name or password"),
        ("http://127.0.0.1:9/v1?api-key=SECRET", "must not have a ?query"),
    ],
)
def test_bad_base_urls_are_refused_before_any_request(project, docs, url: str, message: str, cli) -> None:
    result = cli(
        "run", "--prompt", "sentiment/zero-shot.v1", "--model", "openai-compatible/x", "--base-url", url
    )
    assert result.code == 2 and message in result.err and "SECRET" not in result.err


def test_a_server_that_is_not_there_stops_the_run_at_once(project, docs, cli) -> None:
    with socket_closed_port() as port:
        result = cli(
            "run",
            "--prompt",
            "sentiment/zero-shot.v1",
            "--model",
            "openai-compatible/x",
            "--base-url",
            f"http://127.0.0.1:{port}/v1",
            "--sample",
            "3",
        )
    assert result.code == 2 and "cannot connect to" in result.err and "is the server running" in result.err
    with project.transaction() as s:  # exit 2 before any answer: no run row, no prompt version registered
        assert s.exec(select(Run).where(col(Run.kind) == "llm")).all() == []
        assert s.exec(select(PromptVersion)).all() == []


def test_reasks_are_answered_from_the_cache_too(project, docs, server) -> None:
    server.script([Broken()], text_contains="alpha")
    runner.label(project, _request(server, sample=4, seed=1))
    calls = len(server.requests)
    again = runner.label(project, _request(server, sample=4, seed=1, tag="again"))
    assert len(server.requests) == calls and again.stats.ok == 4


def socket_closed_port():
    import contextlib
    import socket

    @contextlib.contextmanager
    def closed():
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()  # nothing listens there now
        yield port

    return closed()


def test_plan_counts_what_is_done_and_what_the_cache_holds(project, docs, server, cli) -> None:
    args = [
        "plan",
        *scripted_args(server),
        "--sample",
        "6",
        "--seed",
        "2",
        "--json",
    ]
    before = json.loads(cli(*args).out)
    assert before["to_ask"] == 6 and before["from_cache"] == 0 and before["existing_run"] is None
    assert before["messages"][-1]["role"] == "user" and before["max_tokens_set"] is True
    runner.label(project, _request(server, sample=6, seed=2))
    after = json.loads(cli(*args).out)
    assert after["already_done"] == 6 and after["to_ask"] == 0
    tagged = json.loads(cli(*args, "--tag", "copy").out)
    assert (
        tagged["from_cache"] == 6 and tagged["to_ask"] == 0 and server.requests
    )  # plan itself asked nothing
    assert len(server.requests) == 6


def test_a_bug_while_preparing_prompts_fails_the_run_instead_of_hanging(
    project, docs, server, monkeypatch
) -> None:
    from annotator.llm import labeler

    def broken(self, items):
        raise RuntimeError("a bug in the producer")

    monkeypatch.setattr(labeler.Engine, "_prepare", broken)
    with pytest.raises(RuntimeError, match="a bug in the producer"):
        runner.label(project, _request(server, sample=3))
    with project.transaction() as s:
        run = s.exec(select(Run)).one()
    assert run.status == "failed" and "a bug in the producer" in run.error and server.requests == []


def test_truncate_is_for_local_models(project, docs, server) -> None:
    with pytest.raises(RunError, match="truncate=True applies to local models"):
        runner.label(project, _request(server, truncate=True))
    assert server.requests == []


def test_a_batch_of_answers_waits_out_another_process_holding_the_database() -> None:
    """A long import in another process holds SQLite's write lock past the busy timeout: the run's writer
    tries again instead of losing answers already paid for; anything else (or past the budget) stands."""
    from sqlalchemy.exc import OperationalError

    from annotator.llm.runstore import _while_locked

    def failing(times: int, message: str):
        calls: list[int] = []

        def write() -> None:
            calls.append(1)
            if len(calls) <= times:
                raise OperationalError("INSERT", {}, sqlite3.OperationalError(message))

        return write, calls

    write, calls = failing(2, "database is locked")
    _while_locked(write)
    assert len(calls) == 3
    write, calls = failing(1, "no such table: annotations")
    with pytest.raises(OperationalError):
        _while_locked(write)
    assert len(calls) == 1
    write, calls = failing(5, "database is locked")
    with pytest.raises(OperationalError):
        _while_locked(write, budget_s=0)
    assert len(calls) == 1


@pytest.mark.sqlite_only  # SQLite's write lock, from a second sqlite3 connection
def test_discard_checks_for_answers_and_deletes_in_one_write_transaction(project, docs, server) -> None:
    """A run that failed before its first answer is removed, but only under the write lock: an answer another
    process stores between the check and the delete would otherwise be deleted with the run."""
    from sqlalchemy import event

    from annotator.llm.runstore import RunStore
    from annotator.store import db

    path = db.sqlite_path(project.database_url)
    store = RunStore(project, runner.resolve_request(project, _request(server)))
    run, _ = store.open()
    tried: list[str] = []

    def write_meanwhile(_conn, _cursor, statement: str, *_args) -> None:
        """When discard checks for answers: try to write from another connection (a neighbour process)."""
        if "FROM annotations" in statement and not tried:
            other = sqlite3.connect(path, timeout=0)
            try:
                other.execute("UPDATE runs SET error = 'neighbour' WHERE id = ?", (run.id,))
                other.commit()
                tried.append("written")
            except sqlite3.OperationalError as exc:
                tried.append(str(exc))
            finally:
                other.close()

    event.listen(project.engine, "before_cursor_execute", write_meanwhile)
    try:
        assert store.discard() is True
    finally:
        event.remove(project.engine, "before_cursor_execute", write_meanwhile)
    assert tried == ["database is locked"]  # the check ran under the write lock
    with project.transaction() as s:
        assert s.get(Run, run.id) is None

    kept = RunStore(project, runner.resolve_request(project, _request(server)))
    run, _ = kept.open()
    with sqlite3.connect(path) as conn:
        doc_id = conn.execute("SELECT id FROM documents ORDER BY id LIMIT 1").fetchone()[0]
        conn.execute(
            "INSERT INTO annotations (run_id, document_id, repeat, status, attempts, cached, created_at) "
            "VALUES (?, ?, 0, 'ok', 1, 0, '2024-01-01 00:00:00')",
            (run.id, doc_id),
        )
    assert kept.discard() is False  # a run with an answer is kept
    with project.transaction() as s:
        assert s.get(Run, run.id) is not None
