"""Hugging Face models are read from the local cache only (issue 11): a model that is not on this machine fails
in one line at once, saying how to fetch it, instead of ~46 s of the hub client's retry lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from annotator.baselines.hub import ModelError, hub_cache_dir, local_model, resolve_encoder
from annotator.data.example import import_example
from annotator.data.splits import make_split
from tests.tiny_models import tiny_t5

ROOT = Path(__file__).resolve().parents[1]
HF_VARIABLES = ("HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


@pytest.fixture
def empty_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HF_HOME is an empty folder and nothing says "offline": only annotator keeps the network out of it."""
    for name in HF_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "hf-home"
    home.mkdir()
    monkeypatch.setenv("HF_HOME", str(home))
    return home


def _cache(home: Path, repo_id: str, files_from: Path | None) -> Path:
    """A model in the hub cache's layout: refs/main names a snapshot folder holding the files."""
    repo = home / "hub" / f"models--{repo_id.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    if files_from is not None:
        for file in files_from.iterdir():
            (snapshot / file.name).write_bytes(file.read_bytes())
    return snapshot


def test_a_missing_model_fails_at_once_in_one_line(project, empty_hub: Path) -> None:
    """The real command in a child process, HF_HUB_OFFLINE unset, the hub endpoint unreachable: exit 2 and one
    line on stderr, with no retry line (the hub client's retries are what took ~46 s)."""
    import_example(project, n=40, seed=3, raters=1)
    make_split(project, 0.3, seed=1)
    project.engine.dispose()
    env = {k: v for k, v in os.environ.items() if k not in HF_VARIABLES}
    env |= {"HF_HOME": str(empty_hub), "HF_ENDPOINT": "http://127.0.0.1:9", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "annotator", "baseline", "text2text", "--model", "google/flan-t5-small"],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert "Retry" not in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.startswith(
        f"error: text2text: model google/flan-t5-small is not in the Hugging Face cache ({empty_hub / 'hub'})"
    )
    assert "`hf download google/flan-t5-small`" in done.stderr
    with project.transaction() as session:  # nothing stored for the refused run
        from sqlmodel import col, select

        from annotator.store.models import Run

        assert not session.exec(select(Run).where(col(Run.kind) == "baseline")).all()


def test_the_helper_finds_cached_models_and_names_what_is_missing(empty_hub: Path, tmp_path: Path) -> None:
    assert hub_cache_dir() == empty_hub / "hub"
    folder = tiny_t5(tmp_path / "t5")
    assert local_model(str(folder)) == str(folder)  # a folder is used as it is
    snapshot = _cache(empty_hub, "someone/tiny-t5", folder)
    assert local_model("someone/tiny-t5") == str(snapshot)
    _cache(empty_hub, "someone/half", None).joinpath("config.json").write_text("{}")
    with pytest.raises(
        ModelError, match=r"someone/half is only partly in the Hugging Face cache .*no weights"
    ):
        local_model("someone/half")
    with pytest.raises(ModelError, match=r"is not in the Hugging Face cache .*hf download someone/absent"):
        local_model("someone/absent")
    with pytest.raises(ModelError, match="neither a model folder nor a Hugging Face id"):
        local_model("not an id/at all")


def test_encoder_hub_ids_use_the_same_check(empty_hub: Path) -> None:
    with pytest.raises(ModelError, match="hf download sentence-transformers/all-MiniLM-L6-v2"):
        resolve_encoder("sentence-transformers/all-MiniLM-L6-v2")


def test_text2text_runs_from_the_cache_without_network(project, cli, empty_hub: Path, tmp_path: Path) -> None:
    import_example(project, n=40, seed=3, raters=1)
    make_split(project, 0.3, seed=1)
    _cache(empty_hub, "someone/says-positive", tiny_t5(tmp_path / "t5", answer="positive"))
    result = cli("baseline", "text2text", "--model", "someone/says-positive", "--json")
    assert result.code == 0, result
    out = json.loads(result.out)
    assert out["coder"] == "text2text/someone/says-positive" and set(out["labels"]) == {"positive"}
