"""`annotator quickstart`: the whole pipeline on a small sample with the real local model, offline."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlmodel import col, func, select

from annotator.llm import local
from annotator.project import load_project
from annotator.store.models import Metric, PromptVersion, Run

pytestmark = [pytest.mark.model, pytest.mark.slow]


def test_quickstart_runs_every_step_and_ends_with_the_leaderboard(cli, tmp_path: Path, monkeypatch) -> None:
    local.ensure("smollm2")
    monkeypatch.chdir(tmp_path)
    result = cli("quickstart", "demo", "--n", "100", "--sample", "10")
    assert result.code == 0, result
    out = result.out
    for command in (
        "$ annotator init",
        "$ annotator split",
        "$ annotator prompt freeze",
        "$ annotator baseline tfidf",
        "--coded-by humans --sample 10",
        "$ annotator agreement --split test",
        "$ annotator validate",
        "$ annotator compare",
        "$ annotator export",
        "$ annotator report",
    ):
        assert command in out
    assert "[17/17] write the methods report" in out and "leaderboard on the held-out test split" in out
    project = load_project(tmp_path / "demo")
    with project.transaction() as s:
        kinds = dict(s.exec(select(Run.kind, func.count()).group_by(col(Run.kind))).all())
        frozen = s.exec(select(PromptVersion).where(col(PromptVersion.frozen_at).is_not(None))).all()
        test_runs = s.exec(select(Run).where(col(Run.split) == "test", col(Run.kind) == "llm")).all()
        metrics = set(s.exec(select(Metric.kind)).all())
    assert kinds["llm"] == 3 and kinds["baseline"] == 3
    assert len(frozen) == 1 and frozen[0].ref in out
    assert len(test_runs) == 1 and test_runs[0].prompt_id == frozen[0].id and test_runs[0].n_items == 30
    assert {"agreement", "validation", "compare"} <= metrics
    report = tmp_path / "demo" / "report.html"
    assert f"methods report: {report}" in out and report.stat().st_size > 10_000
    exported = pd.read_csv(tmp_path / "demo" / "exports" / f"run-{test_runs[0].id}.csv")
    assert len(exported) == 30 and set(exported["status"]) <= {"ok", "invalid", "error"}
    # a second quickstart into the same folder is refused; --force replaces only a quickstart folder
    again = cli("quickstart", "demo", "--n", "100")
    assert again.code == 2 and "already exists" in again.err
    (tmp_path / "mine").mkdir()
    refused = cli("quickstart", "mine", "--force")
    assert refused.code == 2 and "was not made by `annotator quickstart`" in refused.err
    assert cli("quickstart", "other", "--n", "5").code == 2
