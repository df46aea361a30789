"""End to end with the real local model (SmolLM2 served by llama.cpp through xllamacpp), offline.

The model is pulled once per machine from its registry wheel (make test installs everything else).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import col, select

from annotator.data.example import import_example
from annotator.data.splits import make_split
from annotator.llm import local
from annotator.llm.spec import RunRequest
from annotator.services import run as runner
from annotator.store.models import Annotation, Document, Run
from tests.conftest import skip_unless_index_reachable

pytestmark = pytest.mark.model


@pytest.fixture(scope="session")
def smollm2() -> Path:
    if not local.model_path("smollm2").is_file():  # the first time, ensure() downloads it
        skip_unless_index_reachable()
    return local.ensure("smollm2")


@pytest.fixture
def example(project, smollm2):
    import_example(project, n=100, seed=7, raters=3)
    make_split(project, 0.3, seed=1, stratify_by_coder="critics")
    return project


def test_local_run_stores_every_answer_valid_or_invalid_with_raw_text(example) -> None:
    outcome = runner.label(
        example, RunRequest(prompt="sentiment/zero-shot.v1", model="local/smollm2", sample=20)
    )
    assert outcome.status == "done" and outcome.stats.done == 20
    with example.transaction() as s:
        rows = s.exec(select(Annotation).where(col(Annotation.run_id) == outcome.run_id)).all()
        run = s.get(Run, outcome.run_id)
    assert len(rows) == 20
    for a in rows:
        assert a.status in ("ok", "invalid") and a.raw  # never dropped, never a made-up label
        if a.status == "ok":
            assert a.label in ("negative", "positive", "neutral") and json.loads(a.raw)["label"] == a.label
            assert a.probability is None or 0 < a.probability <= 1
        else:
            assert a.label is None and a.error
    assert run.versions["xllamacpp"] and run.tokens_in > 0
    assert run.params["spec"]["model"]["file_sha256"] == local.LOCAL_MODELS["smollm2"].sha256
    assert all(a.probability is None for a in rows)  # llama.cpp's raw logprobs are not label probabilities


def test_cli_run_shows_progress_and_a_second_identical_run_is_instant(example, cli) -> None:
    args = [
        "run",
        "--prompt",
        "sentiment/zero-shot.v1",
        "--model",
        "local/smollm2",
        "--split",
        "dev",
        "--sample",
        "12",
        "--json",
    ]
    first = cli(*args)
    assert first.code == 0, first
    info = json.loads(first.out)
    assert info["items"] == 12 and info["ok"] + info["invalid"] == 12
    again = cli(*args[:-1])
    assert again.code == 0 and "nothing to do" in again.out and "0 requests" in again.out
    assert "starting the local model" not in again.err  # no server was even started
    shown = json.loads(cli("runs", "show", str(info["id"]), "--json").out)
    assert shown["model"] == "local/smollm2" and shown["params"]["temperature"] == 0


def test_a_document_longer_than_the_context_is_an_error_without_a_request_or_truncated(
    project, smollm2, tmp_path: Path, capfd
) -> None:
    from annotator.data.corpus import import_documents
    from tests.conftest import write

    long_text = "The film drags on. " * 1200  # about 6,000 tokens: three times SmolLM2's 2,048
    rows = f'long,"{long_text}"\nshort1,"A lovely film."\nshort2,"An awful film."\n'
    import_documents(project, write(tmp_path / "docs.csv", "id,text\n" + rows))
    make_split(project, 0.01, seed=1)  # every document in dev
    planned = runner.plan(project, RunRequest(prompt="sentiment/zero-shot.v1", model="local/smollm2"))
    context = planned.context
    assert context["tokens"] == 2048 and context["counted_by"] == "tokenizer"
    assert [row["document"] for row in context["too_long"]] == ["long"]
    assert context["too_long"][0]["tokens"] > 4000
    capfd.readouterr()
    outcome = runner.label(project, RunRequest(prompt="sentiment/zero-shot.v1", model="local/smollm2"))
    stderr = capfd.readouterr().err
    with project.transaction() as s:
        rows_ = s.exec(
            select(Document.doc_key, Annotation)
            .join(Annotation)
            .where(col(Annotation.run_id) == outcome.run_id)
        ).all()
    stored = {key: a for key, a in rows_}
    long = stored["long"]
    assert long.status == "error" and long.error.startswith("longer than the model's context (")
    assert f"({context['too_long'][0]['tokens']} tokens" in long.error
    assert long.attempts == 0 and long.raw is None and long.latency_ms is None  # no request was made
    assert {stored["short1"].status, stored["short2"].status} <= {"ok", "invalid"}
    assert "exceeds the available context" not in stderr and "send_error" not in stderr
    cut = runner.label(
        project, RunRequest(prompt="sentiment/zero-shot.v1", model="local/smollm2", truncate=True)
    )
    assert cut.run_id != outcome.run_id
    with project.transaction() as s:
        run = s.get(Run, cut.run_id)
        truncated = s.exec(
            select(Annotation)
            .join(Document)
            .where(col(Annotation.run_id) == cut.run_id, col(Document.doc_key) == "long")
        ).one()
    assert run.params["spec"]["truncate"] is True and run.params["request"]["truncate"] is True
    assert truncated.status in ("ok", "invalid") and truncated.raw and truncated.attempts >= 1
    assert truncated.error.startswith("truncated to fit the model's context: ")
    assert 0 < truncated.tokens_in <= 2048 - 64
