"""`annotator run --batch`: the run's requests through a provider's Batch API (a loopback server in OpenAI's
wire format, tests/batch_server.py), stored exactly as a live run stores them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlmodel import select

from annotator.project import init_project
from annotator.store.models import ProviderBatch, Run
from tests.batch_server import BatchServer
from tests.conftest import db_snapshot, film_texts, import_docs, label_by_word, run_annotations
from tests.scripted_server import Fail, Label, ScriptedServer

KEY = "sk-batch-test-0123456789abcdef"
# every third document negative; 'fixable' answered without a label first (`{}`), then right on the re-ask;
# 'hopeless' outside the codebook for good
LABELS = label_by_word({"awful": "negative", "hopeless": "bogus"})


def _texts() -> dict[str, str]:
    texts = film_texts([f"w{i}" for i in range(10)])
    texts["d10"] = "a fixable film"
    texts["d11"] = "a hopeless film"
    return texts


def _rule(text: str, attempt: int) -> Label | None:
    """'fixable' first answers `{}`; the re-ask of that (which names the missing field) gets a codebook
    label, the re-ask of 'hopeless' (which names the label outside the codebook) none."""
    if "fixable" in text:
        return Label({})
    if "That answer is not valid" in text:
        return None if "Field required" in text else Label("bogus")
    return None


def _args(server: ScriptedServer, *extra: str) -> list[str]:
    model = ["--model", "openai/gpt-4o-mini", "--base-url", server.base_url]
    return ["run", "--prompt", "sentiment/zero-shot.v1", *model, "--poll", "0.02", *extra]


@pytest.fixture
def keyed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


def _rows(project, run_id: int) -> dict[str, tuple]:
    return {
        key: (a.label, a.status, a.raw, a.error, a.attempts, a.cached, a.tokens_in, a.tokens_out)
        for key, a in run_annotations(project, run_id).items()
    }


def _batches(project) -> list[ProviderBatch]:
    with project.transaction() as session:
        return list(session.exec(select(ProviderBatch).order_by(ProviderBatch.id)))


def test_a_batch_run_stores_the_rows_a_live_run_stores(project, tmp_path, cli, keyed) -> None:
    import_docs(project, tmp_path, _texts())
    with BatchServer(label_for=LABELS, rule=_rule, key=KEY) as server:
        result = cli(*_args(server, "--batch"))
        assert result.code == 0, result
        # the first answers in one batch; the re-asks of the two invalid ones in a second
        assert [len(lines) for lines in server.uploads.values()] == [12, 2]
        reasks = [line["body"]["messages"][-1]["content"] for line in server.uploads["file-in-2"]]
        assert all("That answer is not valid" in r and "negative, positive" in r for r in reasks)
        first = server.uploads["file-in-1"][0]
        assert first["method"] == "POST" and first["url"] == "/v1/chat/completions"
        assert first["body"]["response_format"]["type"] == "json_schema"
        assert all(b["metadata"] == {"annotator_run": "1"} for b in server.batches.values())
    assert "batch batch_1 submitted to openai: 12 requests" in result.err
    batched = _rows(project, 1)

    live_project = init_project(tmp_path / "live", example="sentiment")
    import_docs(live_project, tmp_path / "live", _texts())
    os.chdir(live_project.root)
    with ScriptedServer(label_for=LABELS, rule=_rule) as live:
        assert cli(*_args(live)).code == 0
    assert _rows(live_project, 1) == batched  # labels, statuses, raw text, errors, attempts, tokens
    assert batched["d10"][:2] == ("positive", "ok") and batched["d10"][4] == 2
    assert batched["d11"][1] == "invalid" and batched["d11"][2] == '{"label": "bogus"}'
    assert not any(row[5] for row in batched.values())  # answers this run paid for: not `cached`
    with project.transaction() as session:
        run = session.get(Run, 1)
        assert run is not None and run.status == "done" and run.n_ok == 11 and run.n_invalid == 1
        assert run.cost_usd > 0 and run.tokens_in > 0
    with live_project.transaction() as session:
        live_run = session.get(Run, 1)
        assert live_run is not None
        assert run.cost_usd == pytest.approx(live_run.cost_usd / 2)  # batch prices: half
    assert KEY not in db_snapshot(project)


def test_nothing_is_asked_twice_across_live_and_batch(project, tmp_path, cli, keyed) -> None:
    import_docs(project, tmp_path, film_texts([f"w{i}" for i in range(6)]))
    with ScriptedServer(label_for=LABELS) as live:
        assert cli(*_args(live, "--sample", "3")).code == 0
        assert len(live.requests) == 3
    with BatchServer(label_for=LABELS) as server:
        result = cli(*_args(server, "--batch"))
        assert result.code == 0, result
        assert [len(lines) for lines in server.uploads.values()] == [3]  # the other three from the cache
    assert sum(row[5] for row in _rows(project, 2).values()) == 3


def test_the_terminal_closed_then_resume_collects(project, tmp_path, cli, keyed) -> None:
    import_docs(project, tmp_path, _texts())
    with BatchServer(label_for=LABELS, rule=_rule) as server:
        server.hold = True  # in progress until released
        args = [sys.executable, "-m", "annotator", "--project", str(project.root), *_args(server, "--batch")]
        child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            while not server.polls and time.monotonic() < deadline:
                time.sleep(0.05)
            assert server.polls, "the batch was never submitted"
        finally:
            child.send_signal(signal.SIGKILL)  # the terminal closed: no clean-up at all
            child.communicate(timeout=30)
        listed = cli("runs", "--json")
        (row,) = json.loads(listed.out)
        assert row["status"] == "batch" and "batch_1 in_progress" in row["message"]
        assert "annotator run --resume 1" in row["message"]
        assert "waiting for batch" in cli("runs").out

        server.release()
        polls = server.polls
        result = cli("run", "--resume", "1", "--poll", "0.02")
        assert result.code == 0, result
        assert server.polls > polls and len(server.uploads) == 2  # no line was sent twice
        assert sum(len(lines) for lines in server.uploads.values()) == 14
    rows = _rows(project, 1)
    assert len(rows) == 12 and rows["d10"][:2] == ("positive", "ok") and rows["d11"][1] == "invalid"
    assert all(b.collected_at is not None for b in _batches(project))


def test_no_wait_submits_and_returns_then_runs_shows_it(project, tmp_path, cli, keyed) -> None:
    import_docs(project, tmp_path, film_texts([f"w{i}" for i in range(4)]))
    with BatchServer(label_for=LABELS, finish_after=3) as server:
        first = cli(*_args(server, "--batch", "--no-wait"))
        assert first.code == 1, first  # not complete yet
        assert "waiting for 1 batch at openai" in first.out and "--resume 1" in first.out
        shown = cli("runs", "show", "1", "--json")
        assert json.loads(shown.out)["status"] == "batch"
        # the same command again (no --resume) asks nothing live: it watches the batch
        again = cli(*_args(server, "--no-wait"))
        assert again.code == 1, again
        assert not [r for r in server.requests if r.headers]  # no chat request came over HTTP
        done = cli("run", "--resume", "1", "--poll", "0.02")
        assert done.code == 0, done
        assert len(server.uploads) == 1
    assert {row[1] for row in _rows(project, 1).values()} == {"ok"}


def test_partial_failures_and_an_expired_batch_end_as_errors_that_resume_sends_again(
    project, tmp_path, cli, keyed
) -> None:
    texts = film_texts([f"w{i}" for i in range(6)])
    import_docs(project, tmp_path, texts)
    with BatchServer(label_for=LABELS) as server:
        server.script(text_contains="w1 film", responses=[Fail(500, message=f"overloaded; your key {KEY}")])
        server.expire_after = 4  # the batch ends `expired` after its first 4 lines
        result = cli(*_args(server, "--batch"))
        assert result.code == 0, result  # as a live run whose requests failed: done, with errors to resume
        rows = _rows(project, 1)
        errors = {k: r[3] for k, r in rows.items() if r[1] == "error"}
        assert len(errors) == 3  # w1 failed; the last two lines expired
        assert "HTTP 500" in errors["d01"] and KEY not in errors["d01"] and "overloaded" in errors["d01"]
        assert all("could not be executed before the completion window expired" in e for k, e in errors.items()
                   if k != "d01")  # fmt: skip
        assert "resume with: annotator run --resume 1" in result.out
        again = cli("run", "--resume", "1", "--poll", "0.02")
        assert again.code == 0, again
        assert [len(lines) for lines in server.uploads.values()] == [6, 3]
    assert {row[1] for row in _rows(project, 1).values()} == {"ok"}
    assert KEY not in db_snapshot(project)


def test_files_are_split_under_the_provider_limits(project, tmp_path, cli, keyed, monkeypatch) -> None:
    from annotator.llm import batch

    monkeypatch.setattr(batch, "MAX_LINES", 4)
    import_docs(project, tmp_path, film_texts([f"w{i}" for i in range(10)]))
    with BatchServer(label_for=LABELS) as server:
        assert cli(*_args(server, "--batch")).code == 0
        assert [len(lines) for lines in server.uploads.values()] == [4, 4, 2]
        assert len(server.batches) == 3
    assert len(_rows(project, 1)) == 10


def test_refusals_create_nothing(project, tmp_path, cli, keyed) -> None:
    import_docs(project, tmp_path, film_texts(["a", "b"]))
    before = db_snapshot(project)
    local = cli("run", "--prompt", "sentiment/zero-shot.v1", "--model", "local/smollm2", "--batch")
    assert local.code == 2 and "--batch works with openai/ and groq/ models" in local.err
    with BatchServer(label_for=LABELS, key="sk-the-right-one") as server:
        refused = cli(*_args(server, "--batch"))
        assert refused.code == 2, refused
        assert "refused the credentials (HTTP 401); check OPENAI_API_KEY" in refused.err
        assert KEY not in refused.err + refused.out  # the server echoed it
        no_cache = cli(*_args(server, "--batch", "--no-cache"))
        assert no_cache.code == 2 and "drop --no-cache" in no_cache.err
    assert db_snapshot(project) == before


def test_plan_uses_batch_prices(project, tmp_path, cli) -> None:
    import_docs(project, tmp_path, film_texts(["a", "b", "c"]))
    args = ["plan", "--prompt", "sentiment/zero-shot.v1", "--model", "openai/gpt-4o-mini", "--json"]
    live = json.loads(cli(*args).out)
    batch = json.loads(cli(*args, "--batch").out)
    assert batch["price_per_million"] == [p / 2 for p in live["price_per_million"]]
    assert batch["cost_usd"] == pytest.approx(live["cost_usd"] / 2, abs=1e-4)
    assert batch["time_basis"] == "batch"
    text = cli(*args[:-1], "--batch").out
    assert "batch prices: half the live price" in text and "within 24 hours" in text


def test_batch_output_lines_are_not_trusted(tmp_path: Path) -> None:
    from annotator.llm.batch import Collected, read_output

    asked = {"k1", "k2", "k3"}
    text = "\n".join(
        [
            json.dumps({"custom_id": "k1", "response": {"status_code": 200, "body": {"choices": [{}]}}}),
            json.dumps({"custom_id": "other", "response": {"status_code": 200, "body": {"choices": [{}]}}}),
            "not json",
            json.dumps({"custom_id": "k2", "response": {"status_code": 400, "body": {"error": {"message": "x s3cr3t"}}}}),
        ]
    )  # fmt: skip
    got = read_output(text, asked, ["s3cr3t"], Collected())
    assert set(got.answers) == {"k1"} and set(got.errors) == {"k2"}
    assert "s3cr3t" not in got.errors["k2"] and "HTTP 400" in got.errors["k2"]


def test_groq_batches_through_its_own_client(project, tmp_path, cli, monkeypatch) -> None:
    monkeypatch.setenv("GROQ_API_KEY", KEY)
    import_docs(project, tmp_path, film_texts([f"w{i}" for i in range(5)]))
    with BatchServer(label_for=LABELS, key=KEY) as server:
        root = server.base_url.removesuffix("/v1")
        model = ["--model", "groq/llama-3.1-8b-instant", "--base-url", f"{root}/openai/v1"]
        result = cli("run", "--prompt", "sentiment/zero-shot.v1", *model, "--batch", "--poll", "0.02")
        assert result.code == 0, result
        assert [len(lines) for lines in server.uploads.values()] == [5]
    assert {row[1] for row in _rows(project, 1).values()} == {"ok"}
    with project.transaction() as session:
        run = session.get(Run, 1)
        assert run is not None and "groq" in run.versions


def test_max_cost_holds_back_what_would_exceed_it(project, tmp_path, cli, keyed) -> None:
    import_docs(project, tmp_path, film_texts([f"w{i}" for i in range(10)]))
    with BatchServer(label_for=LABELS) as server:
        # about 1.3e-5 USD a request at batch prices: room for a few, not for ten
        result = cli(*_args(server, "--batch", "--max-cost", "0.00006"))
        assert result.code == 0, result
        assert "stopped before exceeding --max-cost $6e-05" in result.out
        sent = sum(len(lines) for lines in server.uploads.values())
        assert 0 < sent < 10
    with project.transaction() as session:
        run = session.get(Run, 1)
        assert run is not None and run.status == "interrupted" and run.cost_usd <= 0.00006
        assert run.n_ok == sent


def test_a_batch_the_provider_lost_ends_as_errors_that_resume_sends_again(
    project, tmp_path, cli, keyed
) -> None:
    import_docs(project, tmp_path, film_texts([f"w{i}" for i in range(4)]))
    with BatchServer(label_for=LABELS) as server:
        server.hold = True
        assert cli(*_args(server, "--batch", "--no-wait")).code == 1
        with BatchServer(label_for=LABELS) as elsewhere:  # another address (or key): nothing is abandoned
            moved = cli("run", "--resume", "1", "--base-url", elsewhere.base_url, "--poll", "0.02")
            assert moved.code == 2 and "knows neither batch batch_1 nor its input file" in moved.err
        assert json.loads(cli("runs", "--json").out)[0]["status"] == "batch"
        refused = cli("runs", "delete", "1", "--yes")
        assert refused.code == 2 and "batches still open" in refused.err
        server.batches.clear()  # deleted at the provider; its input file is still there
        lost = cli("run", "--resume", "1", "--poll", "0.02")
        assert lost.code == 0, lost
        rows = _rows(project, 1)
        assert {r[1] for r in rows.values()} == {"error"}
        assert all("openai no longer knows batch batch_1" in r[3] for r in rows.values())
        server.release()
        again = cli("run", "--resume", "1", "--poll", "0.02")
        assert again.code == 0, again
        assert len(server.uploads) == 2
    assert {r[1] for r in _rows(project, 1).values()} == {"ok"}


def test_documents_sharing_a_request_count_it_once(project, tmp_path, cli, keyed) -> None:
    texts = {"a1": "the same lovely film", "a2": "the same lovely film", "b": "an awful film"}
    import_docs(project, tmp_path, texts)
    with BatchServer(label_for=LABELS) as server:
        assert cli(*_args(server, "--batch")).code == 0
        assert [len(lines) for lines in server.uploads.values()] == [2]  # one request for a1 and a2
    rows = _rows(project, 1)
    shared = sorted((rows["a1"][4], rows["a1"][5]), reverse=True), sorted((rows["a2"][4], rows["a2"][5]))
    assert {(rows[k][4], rows[k][5]) for k in ("a1", "a2")} == {(1, False), (0, True)}, shared
    with project.transaction() as session:
        run = session.get(Run, 1)
        assert run is not None and run.tokens_in == rows["b"][6] + max(rows["a1"][6], rows["a2"][6])
