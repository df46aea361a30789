"""The asked set as `validate` loads it: each run's gold items are the ones it selected, answers only on those."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import col, delete, select

from annotator.data.corpus import import_codes, import_documents
from annotator.services.validation import load_gold_and_runs
from annotator.store.asked import asked_sets, store_asked
from annotator.store.models import Annotation, Document, RunDocument
from tests.conftest import scripted_run, write

N = 50
KEYS = [f"a{i:02d}" for i in range(N)]


def _setup(project, tmp_path: Path) -> int:
    rows = "".join(f'{k},"word{k} text"\n' for k in KEYS)
    import_documents(project, write(tmp_path / "docs.csv", "id,text\n" + rows))
    with project.transaction() as s:
        for d in s.exec(select(Document)).all():
            d.split = "dev" if int(d.doc_key[1:]) < 40 else "test"
            s.add(d)
    # gold on the first 30 dev documents only
    gold = "".join(f"{k},positive\n" for k in KEYS[:30])
    import_codes(project, write(tmp_path / "gold.csv", "id,label\n" + gold), coder="critics", kind="gold")
    return scripted_run(project, lambda text: "positive", sample=20, seed=1).run_id


def _doc_ids(project) -> dict[str, int]:
    with project.transaction() as s:
        return {d.doc_key: d.id for d in s.exec(select(Document)).all()}


def test_run_info_asked_is_gold_within_the_selection(project, tmp_path: Path) -> None:
    run_id = _setup(project, tmp_path)
    ids = _doc_ids(project)
    gold_ids = {ids[k] for k in KEYS[:30]}
    with project.transaction() as s:
        selected = asked_sets(s, [run_id])[run_id]
        data = load_gold_and_runs(s, "critics", "dev", None, None)
    (info,) = data["runs"]
    assert len(selected) == 20 and info.n_asked == 20
    assert info.asked == selected & gold_ids
    assert set(info.answers) == info.asked  # answers only on asked gold items


def test_selection_is_the_asked_set_even_when_answers_are_missing(project, tmp_path: Path) -> None:
    run_id = _setup(project, tmp_path)
    ids = _doc_ids(project)
    gold_ids = {ids[k] for k in KEYS[:30]}
    with project.transaction() as s:
        selected = asked_sets(s, [run_id])[run_id]
        gone = sorted(selected & gold_ids)[:3]
        s.exec(
            delete(Annotation).where(col(Annotation.run_id) == run_id, col(Annotation.document_id).in_(gone))
        )
    with project.transaction() as s:
        (info,) = load_gold_and_runs(s, "critics", "dev", None, None)["runs"]
    assert info.asked == selected & gold_ids and not set(gone) & set(info.answers)


def test_without_a_stored_selection_the_answered_documents_are_asked(project, tmp_path: Path) -> None:
    """A run from before run_documents existed (no rows): its asked set is what it answered."""
    run_id = _setup(project, tmp_path)
    ids = _doc_ids(project)
    with project.transaction() as s:
        answered = asked_sets(s, [run_id])[run_id]
        s.exec(delete(RunDocument).where(col(RunDocument.run_id) == run_id))
    with project.transaction() as s:
        assert asked_sets(s, [run_id])[run_id] == answered
        (info,) = load_gold_and_runs(s, "critics", "dev", None, None)["runs"]
    assert info.asked == answered & {ids[k] for k in KEYS[:30]}
    # and a stored selection wins over the answers
    with project.transaction() as s:
        store_asked(s, run_id, [ids[k] for k in KEYS[:30]])
    with project.transaction() as s:
        (info,) = load_gold_and_runs(s, "critics", "dev", None, None)["runs"]
    assert len(info.asked) == 30 and info.n_asked == 30
