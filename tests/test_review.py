"""Disagreement review and adjudication (the lead's side of the workbench): through the services, the CLI and
HTTP. Humans code in the workbench, an LLM run (the real engine against a scripted endpoint) labels the
documents they coded, the lead reviews and tags the run's disagreements, adjudicates the humans' disagreements
into a gold coder, and `validate` scores the run against it."""

from __future__ import annotations

import csv
from pathlib import Path

import httpx
import pytest

from annotator.errors import InputError
from annotator.project import Project
from annotator.services.validation import validate
from annotator.services.workbench import adjudicate, review
from tests.conftest import db_snapshot, signed_in_as
from tests.workbench_server import csrf, serving, signed_in

pytestmark = pytest.mark.both_databases


def test_the_confusion_matrix_is_on_the_documents_the_run_was_asked(project: Project, coded) -> None:
    run_id = int(coded["run"])  # type: ignore[call-overload]
    found = review.disagreements(project, run_id, "humans")
    assert found.n_asked == 40  # 20 shared + 10 + 10 own: every document alice or bob coded
    assert found.n_units + found.n_tied == found.n_asked  # two coders who disagree tie: left out and counted
    assert sum(map(sum, found.counts)) == found.n_units
    assert found.labels[-1] == review.NO_ANSWER
    wrong = [k for k in found.cells if k.split("|")[0] != k.split("|")[1]]
    flipped = [k for k in found.cells if k == "negative|positive" or k == "positive|negative"]
    assert wrong == flipped and wrong  # bob's own flipped documents: the human "majority" is bob alone
    doc = found.cells[wrong[0]][0]["document"]
    shown = review.document_review(project, run_id, doc, "humans")
    assert shown.human_codes and shown.label is not None and shown.truth != shown.label
    with pytest.raises(InputError, match=r"^reference='people': use humans or gold:NAME$"):
        review.disagreements(project, run_id, "people")
    with pytest.raises(InputError, match=r"^run_id=999: no LLM or baseline run"):
        review.disagreements(project, 999)


def test_notes_are_stored_with_the_run_and_exported(project: Project, coded, tmp_path: Path, cli) -> None:
    run_id = int(coded["run"])  # type: ignore[call-overload]
    lena, alice = signed_in_as(project, "lena"), signed_in_as(project, "alice")
    found = review.disagreements(project, run_id)
    doc = next(iter(v for k, v in found.cells.items() if k.split("|")[0] != k.split("|")[1]))[0]["document"]
    with pytest.raises(InputError, match="for leads"):
        review.save_note(project, alice, run_id, doc, "humans", ["model error"], "no")
    before = db_snapshot(project)
    with pytest.raises(InputError, match=r"^tags='typo': use any of codebook unclear"):
        review.save_note(project, lena, run_id, doc, "humans", ["typo"], "x")
    assert db_snapshot(project) == before
    saved = review.save_note(
        project, lena, run_id, doc, "humans", ["human error", "ambiguous text"], " bob slipped "
    )
    assert saved.tags == ["human error", "ambiguous text"] and saved.memo == "bob slipped"
    again = review.save_note(project, lena, run_id, doc, "humans", ["human error"], "bob slipped")
    assert again.tags == ["human error"]  # replaced, not added
    out = tmp_path / "notes.csv"
    result = cli("review", "export", str(out))
    assert result.code == 0, result
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == 1 and rows[0]["document"] == doc and rows[0]["tags"] == "human error"
    assert (
        rows[0]["codebook_version"] == "1"
        and rows[0]["author"] == "lena"
        and rows[0]["truth"] != rows[0]["label"]
    )
    refused = cli("review", "export", str(out))
    assert refused.code == 2 and "--force" in refused.err
    summary = review.note_summary(project)
    assert summary.by_tag == [{"tag": "human error", "n": 1}]


def test_adjudication_passes_unanimous_items_and_waits_for_a_lead_on_the_rest(
    project: Project, coded, cli
) -> None:
    state = adjudicate.open_adjudication(project, "alice,bob")
    assert (
        state.items == 20 and state.unanimous == 16 and len(state.pending) == 4
    )  # bob flipped 4 shared ones
    assert all(p["why"] == "coders disagree" for p in state.pending)
    lena = signed_in_as(project, "lena")
    first, second = state.pending[0]["document"], state.pending[1]["document"]
    adjudicate.decide(project, lena, first, "negative", "the sarcasm reads negative")
    after = adjudicate.decide(project, lena, second, "Positive")
    assert after.adjudicated == 2 and len(after.pending) == 2
    with pytest.raises(InputError, match=r"^label='meh': not a label"):
        adjudicate.decide(project, lena, state.pending[2]["document"], "meh")
    with pytest.raises(InputError, match="adjudication is for leads"):
        adjudicate.decide(project, signed_in_as(project, "alice"), second, "negative")
    scored = validate(project, "adjudicated", split="dev", n_boot=50)
    [entry] = scored.runs
    assert entry["n_gold"] == 18  # the gold coder has what was unanimous or decided: 16 + 2
    again = cli("adjudicate", "--coders", "alice,bob", "--json")
    assert again.code == 0 and '"adjudicated": 2' in again.out  # opening again keeps the decisions
    refused = cli("adjudicate", "--coders", "alice", "--gold", "g2")
    assert refused.code == 2 and "--coders alice: adjudication needs two or more human coders" in refused.err


def test_with_a_run_unanimous_items_it_disagrees_with_also_wait(project: Project, coded) -> None:
    run_id = int(coded["run"])  # type: ignore[call-overload]
    state = adjudicate.open_adjudication(project, "alice,bob", gold="checked", run_id=run_id)
    whys = {p["why"] for p in state.pending}
    assert state.unanimous + len(state.pending) == state.items
    assert whys <= {"coders disagree", "the run disagrees with the coders"}


def test_a_coder_gets_403_on_every_lead_page_and_post(project: Project, coded) -> None:
    run_id = coded["run"]
    adjudicate.open_adjudication(project, "alice,bob")
    with serving(project) as base:
        alice = signed_in(base, coded["alice"].path)  # type: ignore[attr-defined]
        token = csrf(alice)
        for path in (
            "/dashboard",
            "/review",
            f"/review/{run_id}",
            f"/review/{run_id}/cell?truth=positive&label=negative",
            f"/review/{run_id}/doc?doc=d00",
            "/adjudicate",
            "/adjudicate?gold=new",
            "/assign",
        ):
            page = alice.get(path)
            assert page.status_code == 403, path
            assert "awful film" not in page.text and "lovely film" not in page.text
        for path, data in (
            (f"/review/{run_id}/doc", {"doc": "d00", "tag": "model error"}),
            ("/adjudicate", {"doc": "d00", "label": "negative"}),
            ("/adjudicate/open", {"coder": ["alice", "bob"], "gold": "mine"}),
            ("/assign", {"coder": ["alice", "bob"], "n": "1"}),
        ):
            assert alice.post(path, data={**data, "csrf": token}).status_code == 403, path
        anon = httpx.Client(base_url=base)
        assert anon.get(f"/review/{run_id}").status_code == 401
        lena = signed_in(base, coded["lead"].path)  # type: ignore[attr-defined]
        matrix = lena.get(f"/review/{run_id}")
        assert matrix.status_code == 200 and "documents agree" in matrix.text
        bad = lena.get("/review/999")
        assert bad.status_code == 400 and "run_id \u201c999\u201d" in bad.text


def test_a_lead_opens_an_adjudication_in_the_browser_and_refreshes_it(project: Project, coded) -> None:
    run_id = coded["run"]
    with serving(project) as base:
        lena = signed_in(base, coded["lead"].path)  # type: ignore[attr-defined]
        form = lena.get("/adjudicate?gold=final")
        assert form.status_code == 200 and 'action="/adjudicate/open"' in form.text
        assert "alice (30 coded)" in form.text and f'value="{run_id}"' in form.text
        token = csrf(lena, "/adjudicate?gold=final")
        before = db_snapshot(project)
        for bad, named in (
            ({"coder": ["alice"]}, "needs two or more human coders"),
            ({"coder": ["alice", "bob"], "run": "x"}, "run \u201cx\u201d: give a whole number"),
            ({"coder": ["alice", "bob"], "run": "999"}, "run_id \u201c999\u201d"),
            ({"coder": ["alice", "zoe"]}, "\u2019zoe\u2019 is not a human coder"),
        ):
            answer = lena.post("/adjudicate/open", data={"csrf": token, "gold": "final", **bad})
            assert answer.status_code == 400 and named in answer.text.replace("&#39;", "\u2019"), answer.text
        assert db_snapshot(project) == before
        data = {"csrf": token, "gold": "final", "coder": ["alice", "bob"], "run": str(run_id), "split": "dev"}
        opened = lena.post("/adjudicate/open", data=data)
        assert opened.status_code == 303 and opened.headers["location"] == "/adjudicate?gold=final"
        page = lena.get("/adjudicate?gold=final").text
        assert "From alice, bob" in page and 'id="refresh"' in page
        first = adjudicate.state(project, "final")
        assert first.coders == ["alice", "bob"] and first.run_id == run_id and first.split == "dev"
        refreshed = lena.post("/adjudicate/open", data={"csrf": csrf(lena, "/adjudicate?gold=final"),
                                                        "gold": "final", "coder": ["alice", "bob"],
                                                        "run": str(run_id), "split": "dev"})  # fmt: skip
        assert refreshed.status_code == 303
        assert adjudicate.state(project, "final").unanimous == first.unanimous


def test_the_report_describes_the_coding_process(project: Project, coded, tmp_path: Path) -> None:
    from annotator.report import build_report

    run_id = int(coded["run"])  # type: ignore[call-overload]
    lena = signed_in_as(project, "lena")
    state = adjudicate.open_adjudication(project, "alice,bob")
    adjudicate.decide(project, lena, state.pending[0]["document"], "negative", "irony")
    found = review.disagreements(project, run_id)
    doc = next(v for k, v in found.cells.items() if k.split("|")[0] != k.split("|")[1])[0]["document"]
    review.save_note(project, lena, run_id, doc, "humans", ["codebook unclear"], "the definition of neutral")
    for suffix in ("html", "md"):
        out = tmp_path / f"report.{suffix}"
        build_report(project, out)
        text = out.read_text(encoding="utf-8")
        assert "Human coding: workbench, review and adjudication" in text
        assert "alice" in text and "bob" in text
        assert "16 documents on which every coder agreed passed through; 1 adjudicated by lena" in text
        assert "codebook unclear: 1" in text
        assert "20 documents were queued to more than one coder" in text
