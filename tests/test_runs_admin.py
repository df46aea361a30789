"""What a run leaves behind: nothing on exit 2 (a template that fails on a document), and `runs archive` /
`runs restore` / `runs delete` on real temp projects with scripted LLM runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import col, select

from annotator.data.corpus import import_codes
from annotator.services.runs import RunDetail, RunSummary, list_runs, restore, show_run
from annotator.store.models import Annotation, Document, Metric, PromptVersion, Run, RunDocument
from annotator.store.registry import freeze_prompt
from tests.conftest import copy_run, db_snapshot, flip, import_docs, word_texts, write
from tests.scripted_server import ScriptedServer

N = 30
KEYS = [f"d{i:02d}" for i in range(N)]
GOLD = ["positive" if i % 3 else "negative" for i in range(N)]
RUN_KEYS = [  # one row of `annotator runs --json` before the result was typed: the same keys, in the same order
    "id",
    "coder",
    "kind",
    "model",
    "prompt",
    "codebook",
    "split",
    "status",
    "items",
    "ok",
    "invalid",
    "error",
    "tokens_in",
    "tokens_out",
    "cost_usd",
    "started",
    "finished",
    "elapsed_s",
    "message",
    "archived",
]
RUN_DETAIL_KEYS = [  # `annotator runs show --json`: a row's keys, then these
    *RUN_KEYS,
    "params",
    "sample",
    "versions",
    "labels",
    "cached",
    "mean_latency_ms",
    "problems",
    "prompt_sha256",
    "prompt_frozen_at",
    "spec_sha256",
    "source",
]


@pytest.fixture
def docs(project, tmp_path: Path):
    """Thirty dev documents, each with its own word, a `source` column on all but d07, and gold codes."""
    import_docs(
        project, tmp_path, word_texts(KEYS), columns={"source": ["" if k == "d07" else "web" for k in KEYS]}
    )
    with project.transaction() as s:
        d07 = s.exec(select(Document).where(col(Document.doc_key) == "d07")).one()
        d07.meta = {}
        s.add(d07)
    codes = "".join(f"{k},{lab}\n" for k, lab in zip(KEYS, GOLD, strict=True))
    import_codes(project, write(tmp_path / "gold.csv", "id,label\n" + codes), coder="critics", kind="gold")
    return project


def _run(project, flips: set[int], tag: str) -> int:
    """A scripted LLM run that copies gold but for the documents at ``flips``."""
    return copy_run(project, KEYS, flip(GOLD, flips), tag=tag)


def test_a_template_failing_on_one_document_creates_nothing(docs, cli) -> None:
    path = docs.root / "prompts" / "sentiment" / "meta.v1.jinja"
    original = (docs.root / "prompts" / "sentiment" / "zero-shot.v1.jinja").read_text()
    path.write_text(
        original.replace("{{ document.text }}", "{{ document.meta.source }}: {{ document.text }}")
    )
    before = db_snapshot(docs)
    with ScriptedServer(label_for=lambda _t: "positive") as server:
        args = ["run", "--prompt", "sentiment/meta.v1", "--model", "openai-compatible/scripted"]
        result = cli(*args, "--base-url", server.base_url)
        assert result.code == 2 and "document 'd07'" in result.err and "source" in result.err, result
        assert "nothing was created" in result.err and server.requests == []
        assert db_snapshot(docs) == before  # no run, no prompt version registered
        # the fix is a new text under the same version: accepted, since the broken one was never registered
        path.write_text(
            original.replace(
                "{{ document.text }}", "{{ document.meta.source | default('') }} {{ document.text }}"
            )
        )
        fixed = cli(*args, "--base-url", server.base_url)
    assert fixed.code == 0, fixed
    with docs.transaction() as s:
        assert [p.ref for p in s.exec(select(PromptVersion)).all()] == ["sentiment/meta.v1"]


def test_archive_hides_a_run_from_listings_comparisons_and_the_report(docs, cli, tmp_path) -> None:
    keep, hide = _run(docs, {1}, "keep"), _run(docs, {1, 2, 3}, "hide")
    assert cli("runs", "archive", str(hide)).code == 0
    assert [r["id"] for r in json.loads(cli("runs", "--json").out)] == [keep]
    listed = {r["id"]: r for r in json.loads(cli("runs", "--all", "--json").out)}
    assert listed[hide]["archived"] and not listed[keep]["archived"]
    assert "archived" in cli("runs", "--all").out
    validated = json.loads(cli("validate", "--split", "dev", "--json").out)
    assert [r["run_id"] for r in validated["runs"]] == [keep]
    compared = json.loads(cli("compare", "--split", "dev", "--json").out)
    assert [r["run_id"] for r in compared["runs"]] == [keep]
    # named explicitly, an archived run is still used
    named = json.loads(cli("validate", "--split", "dev", "--runs", str(hide), "--json").out)
    assert [r["run_id"] for r in named["runs"]] == [hide]
    report = tmp_path / "report.md"
    assert cli("report", "--out", str(report)).code == 0
    text = report.read_text()
    assert (
        f"Archived runs, left out of this report (kept in the database; `annotator runs --all` lists them): {hide}."
        in text
    )
    assert f"| {hide} | llm |" not in text and f"| {keep} | llm |" in text
    # the same settings again do not add answers to a hidden run: refused, with the two ways on
    with ScriptedServer(label_for=lambda _t: "positive") as server:
        args = ["run", "--prompt", "sentiment/zero-shot.v1", "--model", "openai-compatible/scripted"]
        args += ["--base-url", server.base_url, "--sample", "3", "--json"]
        made = json.loads(cli(*args).out)["id"]
        assert cli("runs", "archive", str(made)).code == 0
        asked = len(server.requests)
        same = cli(*args)
        assert same.code == 2 and f"archived run {made}" in same.err and f"runs restore {made}" in same.err
        assert len(server.requests) == asked and "--tag" in same.err
    # archiving twice says so; restore brings it back
    again = cli("runs", "archive", str(hide))
    assert again.code == 2 and "already archived" in again.err and f"runs restore {hide}" in again.err
    assert cli("runs", "restore", str(hide)).code == 0
    assert {r["id"] for r in json.loads(cli("runs", "--json").out)} == {keep, hide}


def test_delete_asks_first_refuses_what_a_result_cites_and_removes_the_rest(docs, cli) -> None:
    cited, loose = _run(docs, {1}, "cited"), _run(docs, {2}, "loose")
    assert cli("validate", "--split", "dev", "--runs", str(cited)).code == 0
    # not on a terminal and no --yes: refused, nothing removed
    refused = cli("runs", "delete", str(loose))
    assert refused.code == 2 and "--yes" in refused.err
    assert {r["id"] for r in json.loads(cli("runs", "--json").out)} == {cited, loose}
    # a run a stored result cites is kept: its provenance would dangle
    blocked = cli("runs", "delete", str(cited), "--yes")
    assert blocked.code == 2 and "cited by 1 stored result(s): validation #" in blocked.err
    assert f"annotator runs archive {cited}" in blocked.err
    done = cli("runs", "delete", str(loose), "--yes")
    assert done.code == 0 and f"deleted run {loose} and its {N} answers" in done.out
    with docs.transaction() as s:
        assert s.get(Run, loose) is None
        assert s.exec(select(Annotation).where(col(Annotation.run_id) == loose)).all() == []
        assert s.exec(select(RunDocument).where(col(RunDocument.run_id) == loose)).all() == []
        assert len(s.exec(select(Metric)).all()) == 1 and s.get(Run, cited) is not None
    # imports and unknown ids are refused with a line each
    with docs.transaction() as s:
        gold = s.exec(select(Run.id).where(col(Run.kind) == "gold")).one()
    imported = cli("runs", "delete", str(gold), "--yes")
    assert imported.code == 2 and "gold import" in imported.err and "archive" in imported.err
    missing = cli("runs", "delete", "999", "--yes")
    assert missing.code == 2 and "no run 999" in missing.err


def test_an_archived_gold_import_is_not_gold(docs, cli) -> None:
    _run(docs, {1}, "one")
    assert cli("validate", "--split", "dev").code == 0
    with docs.transaction() as s:
        gold = s.exec(select(Run.id).where(col(Run.kind) == "gold")).one()
    assert cli("runs", "archive", str(gold)).code == 0
    refused = cli("validate", "--split", "dev")
    assert refused.code == 2 and "has no codes" in refused.err, refused


def _as_printed(data: object) -> object:
    return json.loads(json.dumps(data, default=str))


def test_runs_and_run_details_are_typed_and_their_json_is_what_the_cli_prints(docs, cli) -> None:
    run_id = _run(docs, {1, 2}, "typed")
    (summary,) = list_runs(docs, imports=False)
    assert isinstance(summary, RunSummary) and summary.id == run_id and summary.kind == "llm"
    assert list(summary.to_json()) == RUN_KEYS and summary.status == "done" and summary.ok == N
    printed = json.loads(cli("runs", "--json").out)
    assert [list(row) for row in printed] == [RUN_KEYS]
    assert printed == _as_printed([summary.to_json()])
    detail = show_run(docs, run_id)
    assert isinstance(detail, RunDetail) and list(detail.to_json()) == RUN_DETAIL_KEYS
    assert sum(detail.labels.values()) == N and detail.problems == []
    shown = json.loads(cli("runs", "show", str(run_id), "--json").out)
    assert list(shown) == RUN_DETAIL_KEYS and shown == _as_printed(detail.to_json())
    text = cli("runs", "show", str(run_id)).out
    assert f"run {run_id}" in text and f"items {N}: ok {N}" in text
    # the imports are listed when asked for, typed alike
    (gold,) = list_runs(docs, kind="gold")
    assert gold.kind == "gold" and gold.model is None and list(gold.to_json()) == RUN_KEYS


def test_a_restored_run_is_on_the_reports_leaderboard(docs, cli) -> None:
    from annotator.report.gather import gather

    with docs.transaction() as s:  # the report's leaderboard is of the test split
        for d in s.exec(select(Document)).all():
            d.split = "test"
            s.add(d)
    freeze_prompt(docs, "sentiment/zero-shot.v1")
    keep = copy_run(docs, KEYS, flip(GOLD, {1}), tag="keep", split="test")
    hide = copy_run(docs, KEYS, flip(GOLD, {1, 2, 3}), tag="hide", split="test")
    assert cli("runs", "archive", str(hide)).code == 0
    assert cli("compare", "--split", "test").code == 0  # a stored board without `hide`, which is archived
    restore(docs, hide)
    (board,) = gather(docs)["comparisons"]
    assert {e["run_id"] for e in board["result"]["runs"]} == {keep, hide}
