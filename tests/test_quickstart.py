"""`annotator quickstart`: the whole pipeline on a small sample with the real local model, offline."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlmodel import col, func, select

from annotator.errors import InputError
from annotator.llm import local
from annotator.project import load_project
from annotator.services.quickstart import prepare_folder, run_quickstart
from annotator.store.models import Metric, PromptVersion, Run


@pytest.mark.model
@pytest.mark.slow
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
        "$ annotator estimate --run",
        "$ annotator estimate --across-runs",
        "$ annotator plan-gold",
        "$ annotator report",
    ):
        assert command in out
    assert "[20/20] write the methods report" in out and "leaderboard on the held-out test split" in out
    project = load_project(tmp_path / "demo")
    with project.transaction() as s:
        kinds = dict(s.exec(select(Run.kind, func.count()).group_by(col(Run.kind))).all())
        frozen = s.exec(select(PromptVersion).where(col(PromptVersion.frozen_at).is_not(None))).all()
        test_runs = s.exec(select(Run).where(col(Run.split) == "test", col(Run.kind) == "llm")).all()
        metrics = set(s.exec(select(Metric.kind)).all())
    assert kinds["llm"] == 3 and kinds["baseline"] == 3
    assert len(frozen) == 1 and frozen[0].ref in out
    assert len(test_runs) == 1 and test_runs[0].prompt_id == frozen[0].id and test_runs[0].n_items == 30
    assert {"agreement", "validation", "compare", "estimate", "estimate_runs"} <= metrics
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


def test_refusals_name_the_parameter_a_caller_passed(cli, tmp_path: Path, monkeypatch) -> None:
    """Before any step runs: the service names its parameters, the CLI its flags."""

    def no_step(args: list[str]) -> int:
        raise AssertionError(f"no step should run: {args}")

    with pytest.raises(InputError, match=r"^n=5: use 100 to 10605 sentences"):
        run_quickstart(tmp_path / "demo", 5, 40, False, cli=no_step, say=print)
    with pytest.raises(InputError, match=r"^sample=3: label at least 10"):
        run_quickstart(tmp_path / "demo", 100, 3, False, cli=no_step, say=print)
    (tmp_path / "mine").mkdir()
    with pytest.raises(InputError, match=r"or add force=True to replace an earlier quickstart"):
        prepare_folder(tmp_path / "mine", force=False)
    with pytest.raises(InputError, match=r"force=True only replaces a quickstart folder"):
        prepare_folder(tmp_path / "mine", force=True)
    monkeypatch.chdir(tmp_path)
    res = cli("quickstart", "other", "--n", "5")
    assert res.code == 2 and res.err.startswith("error: --n 5: use 100 to 10605 sentences")
    res = cli("quickstart", "other", "--sample", "3")
    assert res.code == 2 and res.err.startswith("error: --sample 3: label at least 10")
    res = cli("quickstart", "mine")
    assert res.code == 2 and "or add --force to replace an earlier quickstart" in " ".join(res.err.split())
    res = cli("quickstart", "mine", "--force")
    assert res.code == 2 and "--force only replaces a quickstart folder" in " ".join(res.err.split())
    assert not (tmp_path / "other").exists() and (tmp_path / "mine").is_dir()


def test_the_prompt_frozen_is_the_one_with_the_higher_dev_macro_f1(project, tmp_path: Path) -> None:
    """The decision in the middle of the quickstart, on scripted runs: v2 copies the critics, v1 is often wrong."""
    from annotator.data.corpus import import_codes
    from annotator.services.quickstart import _better_prompt
    from tests.conftest import copy_run, flip, import_docs, word_texts, write

    keys = [f"d{i:02d}" for i in range(40)]
    gold = ["positive" if i % 3 else "negative" for i in range(40)]
    import_docs(project, tmp_path, word_texts(keys), split="dev")
    rows = "".join(f"{k},{lab}\n" for k, lab in zip(keys, gold, strict=True))
    import_codes(project, write(tmp_path / "critics.csv", "id,label\n" + rows), coder="critics", kind="gold")
    copy_run(project, keys, flip(gold, range(0, 40, 4)), prompt="sentiment/zero-shot.v1")
    copy_run(project, keys, gold, prompt="sentiment/zero-shot.v2")
    said: list[str] = []
    assert _better_prompt(project.root, said.append) == "sentiment/zero-shot.v2"
    assert said[0].startswith("dev macro-F1 against the critics: sentiment/zero-shot.v1 0.")
    assert said[0].endswith("sentiment/zero-shot.v2 1.000")
