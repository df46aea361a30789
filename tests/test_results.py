"""Typed results (issue 12): `plan` and `status` return frozen dataclasses whose ``to_json()`` is what the CLI
prints; stored agreement, validation and compare rows carry the schema of their result, and the report does
not show a row of a schema it does not read as if it were current."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from annotator.data.corpus import import_codes
from annotator.data.example import import_example
from annotator.data.selection import Overlap
from annotator.data.splits import make_split
from annotator.llm.spec import RunRequest
from annotator.project import Project
from annotator.report import report_text
from annotator.services import run as runner
from annotator.services.agreement import agreement
from annotator.services.compare import compare
from annotator.services.plan import Plan
from annotator.services.results import SCHEMAS, readable, schema_of
from annotator.services.status import Status, project_status
from annotator.services.validation import validate
from annotator.store.models import Metric
from annotator.store.registry import freeze_prompt
from tests.conftest import import_docs, label_by_word, scripted_run, write
from tests.scripted_server import ScriptedServer

PLAN_KEYS = [  # `annotator plan --json` before the result was typed: the same keys, in the same order
    "prompt",
    "codebook",
    "model",
    "params",
    "split",
    "sample",
    "coded_by",
    "selection",
    "documents",
    "repeats",
    "items",
    "already_done",
    "from_cache",
    "to_ask",
    "existing_run",
    "overlap",
    "messages",
    "example_document",
    "tokens_sampled",
    "tokens_in_per_item",
    "tokens_in_mean",
    "tokens_in_max",
    "tokens_in_max_document",
    "tokens_out_per_item",
    "tokens_out_assumed",
    "max_tokens_set",
    "price_per_million",
    "cost_usd",
    "cost_usd_max",
    "seconds_per_item",
    "time_s",
    "time_basis",
    "time_note",
    "concurrency",
    "context",
]
STATUS_KEYS = [
    "project",
    "root",
    "database",
    "schema",
    "documents",
    "split",
    "coders",
    "runs",
    "archived_runs",
    "prompts",
]


def _as_printed(data: dict[str, Any]) -> Any:
    return json.loads(json.dumps(data, default=str))


def test_plan_is_typed_and_its_json_is_what_the_cli_prints(project: Project, cli, tmp_path: Path) -> None:
    import_docs(project, tmp_path, {f"d{i}": f"word{i} film" for i in range(8)})
    rows = "".join(f"d{i},positive\n" for i in range(3))
    import_codes(project, write(tmp_path / "alice.csv", "id,label\n" + rows), coder="alice", kind="human")
    with ScriptedServer(label_for=lambda text: "positive") as server:
        request = RunRequest(
            prompt="sentiment/zero-shot.v1",
            model="openai-compatible/scripted",
            base_url=server.base_url,
            coded_by="alice",
        )
        planned = runner.plan(project, request)
        printed = json.loads(
            cli(
                "plan",
                "--prompt",
                "sentiment/zero-shot.v1",
                "--model",
                "openai-compatible/scripted",
                "--base-url",
                server.base_url,
                "--coded-by",
                "alice",
                "--json",
            ).out
        )
        assert server.requests == []
    assert isinstance(planned, Plan)
    assert planned.documents == 3 and planned.to_ask == 3 and planned.existing_run is None
    assert planned.overlap == [Overlap("alice", "human", 3, 3)]
    assert planned.coded_by == {"names": ["alice"], "mode": "any", "coders": ["alice"]}
    assert planned.context is None and planned.messages[0]["content"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        planned.to_ask = 0  # type: ignore[misc]
    assert list(printed) == PLAN_KEYS
    assert printed == _as_printed(planned.to_json())
    assert printed["overlap"] == [{"coder": "alice", "kind": "human", "coded": 3, "of": 3}]


def test_status_is_typed_and_its_json_is_what_the_cli_prints(project: Project, cli) -> None:
    import_example(project, n=40, raters=3, seed=1)
    make_split(project, test=0.25, seed=1)
    info = project_status(project)
    assert isinstance(info, Status)
    assert info.project == project.name and info.documents["total"] == 40
    assert info.documents["dev"] + info.documents["test"] == 40
    assert info.split is not None and info.split["seed"] == 1
    assert {c["kind"] for c in info.coders} == {"human", "gold"} and info.archived_runs == 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.project = "x"  # type: ignore[misc]
    printed = json.loads(cli("status", "--json").out)
    assert list(printed) == STATUS_KEYS
    assert printed == _as_printed(info.to_json())


def test_schema_of_a_stored_result() -> None:
    assert schema_of({}) == 0 and schema_of(None) == 0 and schema_of({"schema": 1}) == 1
    assert readable("validation", {}) and readable("validation", {"schema": SCHEMAS["validation"]})
    assert not readable("validation", {"schema": 99}) and not readable("validation", {"schema": "1"})


def _analysed(project: Project) -> dict[str, int]:
    """A run on the test split, then agreement, validation and compare stored: kind -> its metric id."""
    import_example(project, n=120, raters=5, seed=3)
    make_split(project, test=0.3, seed=1, stratify_by_coder="critics")
    freeze_prompt(project, "sentiment/zero-shot.v1")
    scripted_run(project, label_by_word({}, "positive"), split="test")
    ids = {
        "agreement": agreement(project, split="test", n_boot=50).metric_id,
        "validation": validate(project, split="test", n_boot=50).runs[0]["metric_id"],
        "compare": compare(project, split="test", n_boot=50).metric_id,
    }
    return ids


def _set_schema(project: Project, metric_id: int, schema: Any) -> None:
    with project.transaction() as s:
        row = s.get(Metric, metric_id)
        assert row is not None
        row.result = row.result | {"schema": schema}
        s.add(row)


@pytest.fixture
def analysed(project: Project) -> dict[str, int]:
    return _analysed(project)


def test_stored_results_carry_their_schema(project: Project, analysed: dict[str, int]) -> None:
    with project.transaction() as s:
        rows = s.exec(select(Metric).order_by(col(Metric.id))).all()
        stored = {r.kind: r.result for r in rows}
    assert set(stored) == {"agreement", "validation", "compare"}
    for kind, result in stored.items():
        assert result["schema"] == SCHEMAS[kind] == 1, kind
    md = report_text(project, "md")  # current rows are shown as stored
    assert f"(metric {analysed['agreement']}" in md
    assert f"metric {analysed['validation']})" in md
    assert f"Metric {analysed['compare']}, computed" in md
    assert "Stored results left out" not in md


def test_a_row_of_an_unknown_schema_is_not_shown_as_current(
    project: Project, analysed: dict[str, int]
) -> None:
    for metric_id in analysed.values():
        _set_schema(project, metric_id, 99)
    md = report_text(project, "md")
    assert f"(metric {analysed['agreement']}" not in md  # reliability computed for the report instead
    assert "Computed for this report with the default settings" in md
    assert f"metric {analysed['validation']})" not in md and "Validated: run" not in md
    assert f"Metric {analysed['compare']}, computed" not in md  # the leaderboard was computed again
    for kind, metric_id in analysed.items():
        assert f"metric {metric_id} ({kind}, result schema 99; this version reads schema 1)" in md
    with project.transaction() as s:
        compares = s.exec(select(Metric).where(col(Metric.kind) == "compare")).all()
    assert len(compares) == 2 and compares[-1].result["schema"] == 1
    html = report_text(project, "html")
    assert "Stored results left out" in html and f"metric {analysed['validation']} (validation" in html


def test_rows_stored_before_results_carried_a_schema_read_as_before(
    project: Project, analysed: dict[str, int]
) -> None:
    """No schema: schema 0, read with the checks of before (an agreement with min_units is of the coverage
    rule's kind; a leaderboard whose runs have alpha vs the majority too)."""
    with project.transaction() as s:
        for row in s.exec(select(Metric)).all():
            row.result = {k: v for k, v in row.result.items() if k != "schema"}
            s.add(row)
    md = report_text(project, "md")
    assert f"(metric {analysed['agreement']}" in md and f"metric {analysed['validation']})" in md
    assert f"Metric {analysed['compare']}, computed" in md and "Stored results left out" not in md
    with project.transaction() as s:
        row = s.get(Metric, analysed["agreement"])
        assert row is not None
        row.result = {k: v for k, v in row.result.items() if k != "min_units"}  # before the coverage rule
        s.add(row)
    md = report_text(project, "md")
    assert f"(metric {analysed['agreement']}" not in md
    assert "Computed for this report with the default settings" in md and "Stored results left out" not in md
