"""`annotator validate` and `annotator gold build` on real temp projects with a scripted LLM run."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path

import pytest
from sklearn.metrics import cohen_kappa_score, confusion_matrix, f1_score, precision_recall_fscore_support
from sqlmodel import col, select

from annotator.data.corpus import import_codes
from annotator.data.gold import build_gold
from annotator.errors import AnnotatorError
from annotator.llm.spec import RunRequest
from annotator.services import run as runner
from annotator.services.validation import INVALID, Validation, validate
from annotator.store.models import Annotation, Coder, Document, Metric, PromptVersion, Run
from annotator.store.registry import freeze_prompt
from tests.conftest import copy_run, import_docs, model_answers, stays_invalid, word_texts, write
from tests.scripted_server import ScriptedServer

N = 40
KEYS = [f"d{i:02d}" for i in range(N)]
GOLD = ["positive" if i % 3 else "negative" for i in range(N)]
# the model: wrong on 4 documents, an invalid answer on 3, the uncertain label on 1
WRONG = {5, 10, 20, 31}
BOGUS = {7, 14, 22}
NEUTRAL = {2}


MODEL = model_answers(GOLD, wrong=WRONG, uncertain=NEUTRAL, invalid=BOGUS)
VALIDATION_KEYS = [  # `annotator validate --json` before the result was typed: the same keys, in the same order
    "gold",
    "gold_kind",
    "codebook",
    "codebook_versions",
    "split",
    "by",
    "labels",
    "uncertain_label",
    "uncertain_note",
    "n_gold",
    "n_gold_split",
    "scope",
    "min_units",
    "n_boot",
    "seed",
    "ci",
    "notes",
    "runs",
]
RUN_KEYS = [  # a scored run's entry, on the test split with a by column
    "run_id",
    "kind",
    "model",
    "prompt",
    "n_asked",
    "n_gold",
    "n_correct",
    "n_valid",
    "n_invalid",
    "n_missing",
    "n_uncertain",
    "coverage",
    "coverage_interval",
    "warnings",
    "per_class",
    "confusion",
    "accuracy",
    "macro_f1",
    "weighted_f1",
    "kappa",
    "frozen",
    "by",
    "metric_id",
]
SOURCE = ["press" if i % 2 else "blog" for i in range(N)]
SOURCE[3] = ""  # no metadata value: the (missing) group


@pytest.fixture
def docs(project, tmp_path: Path):
    import_docs(project, tmp_path, word_texts(KEYS), split=None, columns={"source": SOURCE})
    return project


def _set_split(project, split: str) -> None:
    with project.transaction() as s:
        for d in s.exec(select(Document)).all():
            d.split = split
            s.add(d)


def _import(project, tmp_path: Path, name: str, labels: list[str | None], kind: str = "human") -> None:
    rows = "".join(f"{k},{lab}\n" for k, lab in zip(KEYS, labels, strict=True) if lab is not None)
    import_codes(project, write(tmp_path / f"{name}.csv", "id,label\n" + rows), coder=name, kind=kind)


def _llm_run(project, split: str = "dev") -> int:
    """A scripted LLM run that answers MODEL: on the BOGUS documents a label outside the codebook, given
    again when re-asked, so the engine stores those answers invalid."""
    return copy_run(project, KEYS, MODEL, split=split, rule=stays_invalid())


@pytest.fixture
def setup(docs, tmp_path: Path):
    _set_split(docs, "dev")
    _import(docs, tmp_path, "critics", GOLD, kind="gold")
    return docs, _llm_run(docs)


def test_figures_equal_scikit_learn(setup) -> None:
    project, run_id = setup
    result = validate(project, "critics", split="dev", n_boot=200, seed=1)
    (r,) = result.runs
    assert r["run_id"] == run_id and r["n_gold"] == N
    y_true = GOLD
    y_pred = [INVALID if i in BOGUS else MODEL[i] for i in range(N)]
    # invalid answers are errors: accuracy over all 40 gold items
    expected_acc = sum(t == p for t, p in zip(y_true, y_pred, strict=True)) / N
    assert expected_acc == pytest.approx((N - 8) / N)
    assert r["accuracy"]["estimate"] == pytest.approx(expected_acc, abs=1e-6)
    assert r["accuracy"]["low"] < r["accuracy"]["estimate"] < r["accuracy"]["high"]
    labels = ["negative", "positive"]
    assert r["macro_f1"]["estimate"] == pytest.approx(
        f1_score(y_true, y_pred, labels=labels, average="macro"), abs=1e-6
    )
    assert r["weighted_f1"] == pytest.approx(
        f1_score(y_true, y_pred, labels=labels, average="weighted"), abs=1e-6
    )
    assert r["kappa"]["estimate"] == pytest.approx(cohen_kappa_score(y_true, y_pred), abs=1e-6)
    p, rec, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels)
    by_label = {c["label"]: c for c in r["per_class"]}
    assert [c["label"] for c in r["per_class"]] == labels  # gold never uses neutral: not a class
    for i, lab in enumerate(labels):
        assert by_label[lab]["precision"] == pytest.approx(p[i], abs=1e-6)
        assert by_label[lab]["recall"] == pytest.approx(rec[i], abs=1e-6)
        assert by_label[lab]["f1"] == pytest.approx(f[i], abs=1e-6)
        assert by_label[lab]["support"] == s[i]
    cm = r["confusion"]
    assert cm["columns"] == ["negative", "positive", "neutral", INVALID] and cm["rows"] == labels
    expected_cm = confusion_matrix(y_true, y_pred, labels=cm["columns"])[:2].tolist()
    assert cm["matrix"] == expected_cm and cm["matrix"][0][2] + cm["matrix"][1][2] == 1
    assert "never uses the uncertain label 'neutral'" in result.uncertain_note
    # same seed, same interval
    again = validate(project, "critics", split="dev", n_boot=200, seed=1).runs[0]
    assert again["kappa"] == r["kappa"]


def test_invalid_and_missing_answers_and_coverage(setup) -> None:
    project, run_id = setup
    r = validate(project, "critics", split="dev", n_boot=50).runs[0]
    assert r["n_invalid"] == len(BOGUS) and r["n_missing"] == 0 and r["n_uncertain"] == 1
    assert r["coverage"] == pytest.approx((N - 3) / N)
    # drop two answers: they are missing, and still errors
    with project.transaction() as s:
        doc_ids = [d.id for d in s.exec(select(Document).where(col(Document.doc_key).in_(["d00", "d01"])))]
        for a in s.exec(select(Annotation).where(col(Annotation.run_id) == run_id)).all():
            if a.document_id in doc_ids:
                s.delete(a)
    r2 = validate(project, "critics", split="dev", n_boot=50).runs[0]
    assert r2["n_missing"] == 2 and r2["n_invalid"] == 3 and r2["n_gold"] == N
    assert r2["coverage"] == pytest.approx((N - 5) / N)
    assert r2["accuracy"]["estimate"] == pytest.approx((N - 10) / N)


def test_small_class_warning(setup) -> None:
    project, _ = setup
    r = validate(project, "critics", split="dev", n_boot=20).runs[0]
    # 14 negative and 26 positive gold items: both under 30
    assert len(r["warnings"]) == 2 and "'negative' has 14 gold items" in r["warnings"][0]
    assert "'positive' has 26 gold items" in r["warnings"][1]


def test_by_metadata_column(setup) -> None:
    project, _ = setup
    r = validate(project, "critics", split="dev", by="source", n_boot=20).runs[0]
    groups = r["by"]["groups"]
    assert list(groups) == ["blog", "press", "(missing)"]
    assert groups["(missing)"]["n_gold"] == 1
    assert groups["blog"]["n_gold"] + groups["press"]["n_gold"] == N - 1
    press = [i for i in range(N) if SOURCE[i] == "press"]
    correct = sum(MODEL[i] == GOLD[i] for i in press)
    assert groups["press"]["accuracy"]["estimate"] == pytest.approx(correct / len(press), abs=1e-6)
    with pytest.raises(AnnotatorError, match=r"no such metadata column \(columns: source\)"):
        validate(project, "critics", split="dev", by="genre", n_boot=20)


def test_frozen_statement_on_test(docs, tmp_path: Path) -> None:
    _set_split(docs, "test")
    _import(docs, tmp_path, "critics", GOLD, kind="gold")
    freeze_prompt(docs, "sentiment/zero-shot.v1")
    run_id = _llm_run(docs, split="test")
    r = validate(docs, "critics", n_boot=20).runs[0]
    assert r["frozen"]["frozen_before_run"] is True
    assert "was frozen at" in r["frozen"]["line"] and "before the run started" in r["frozen"]["line"]
    assert r["frozen"]["frozen_at"] is not None and r["frozen"]["started_at"] is not None
    # move the freeze after the run's start: the statement says so
    with docs.transaction() as s:
        run = s.get(Run, run_id)
        prompt = s.get(PromptVersion, run.prompt_id)
        prompt.frozen_at = run.started_at + timedelta(hours=1)
        s.add(prompt)
    r = validate(docs, "critics", n_boot=20).runs[0]
    assert (
        r["frozen"]["frozen_before_run"] is False
        and "NOT frozen before the run started" in r["frozen"]["line"]
    )
    # not on dev
    assert "frozen" not in validate(docs, "critics", split="all", n_boot=20).runs[0]


def test_metrics_row_per_run(setup) -> None:
    project, run_id = setup
    result = validate(project, "critics", split="dev", by="source", n_boot=30, seed=4)
    with project.transaction() as s:
        rows = s.exec(select(Metric).where(col(Metric.kind) == "validation")).all()
    assert len(rows) == 1 and rows[0].run_id == run_id and rows[0].id == result.runs[0]["metric_id"]
    assert rows[0].params == {
        "gold": "critics",
        "split": "dev",
        "by": "source",
        "n_boot": 30,
        "seed": 4,
        "codebook": "sentiment",
        "ci": 0.95,
    }
    assert rows[0].result["run"]["kappa"] == result.runs[0]["kappa"]


def test_refusals(setup) -> None:
    project, run_id = setup
    with pytest.raises(AnnotatorError, match="no coder of that name"):
        validate(project, "nobody", split="dev")
    with pytest.raises(AnnotatorError, match="no codes of codebook 'sentiment' on split 'test'"):
        validate(project, "critics")
    with pytest.raises(AnnotatorError, match="999 \\(no such run\\)"):
        validate(project, "critics", split="dev", runs=[999])
    assert validate(project, "critics", split="dev", runs=[run_id], n_boot=5).runs[0]["run_id"] == run_id


def test_gold_build_majority(docs, tmp_path: Path) -> None:
    a = list(GOLD)
    b = list(GOLD)
    c: list[str | None] = list(GOLD)
    b[0] = "positive"  # d00: a negative, b positive, c negative -> negative (2 of 3)
    c[1] = "negative"  # d01: a positive, b positive, c negative -> positive
    c[2] = None  # d02: only a and b, who agree -> positive
    b[3] = "positive"  # d03: a, b disagree and c did not code it -> tie, left out
    c[3] = None
    only_a: list[str | None] = [None] * N
    _import(docs, tmp_path, "a", a)
    _import(docs, tmp_path, "b", [x if i != 4 else None for i, x in enumerate(b)])
    _import(docs, tmp_path, "c", [x if i != 4 else None for i, x in enumerate(c)])
    _import(docs, tmp_path, "z", [*only_a[:5], "positive", *only_a[6:]])
    out = build_gold(docs, "majority", ["a", "b", "c"])
    # d04 was coded by a only: too few
    assert out["n_ties"] == 1 and out["ties"] == ["d03"] and out["n_too_few"] == 1
    assert out["n_gold"] == N - 2
    with docs.transaction() as s:
        coder = s.exec(select(Coder).where(col(Coder.name) == "majority")).one()
        run = s.exec(select(Run).where(col(Run.coder_id) == coder.id)).one()
        assert coder.kind == "gold" and run.kind == "gold"
        codes = {
            d.doc_key: a_.label
            for a_, d in s.exec(
                select(Annotation, Document)
                .join(Document, col(Document.id) == col(Annotation.document_id))
                .where(col(Annotation.run_id) == run.id)
            ).all()
        }
    assert codes["d00"] == "negative" and codes["d01"] == "positive" and codes["d02"] == GOLD[2]
    assert "d03" not in codes and "d04" not in codes
    with pytest.raises(AnnotatorError, match="already exists"):
        build_gold(docs, "majority", ["a", "b"])
    with pytest.raises(AnnotatorError, match="already exists"):
        build_gold(docs, "a", ["b", "c"])
    with pytest.raises(AnnotatorError, match="not human coders: majority"):
        build_gold(docs, "g2", ["a", "majority"])


def test_cli_validate_json_tables_and_gold_build(setup, cli, tmp_path: Path) -> None:
    project, run_id = setup
    res = cli("validate", "--gold", "critics", "--split", "dev", "--json", "--bootstrap", "50", "--seed", "3")
    assert res.code == 0, res
    data = json.loads(res.out)
    assert data["seed"] == 3 and data["runs"][0]["run_id"] == run_id and data["runs"][0]["n_invalid"] == 3
    res = cli("validate", "--gold", "critics", "--split", "dev", "--by", "source", "--bootstrap", "50")
    assert res.code == 0, res
    assert "runs against gold" in res.out and "(invalid/missing)" in res.out and "by source" in res.out
    assert "warning: class 'negative' has 14 gold items" in res.out
    bad = cli("validate", "--gold", "critics", "--split", "dev", "--by", "genre")
    assert bad.code == 2 and bad.err.startswith("error: ") and len(bad.err.strip().splitlines()) == 1
    bad = cli("validate", "--gold", "critics", "--split", "dev", "--runs", "x")
    assert bad.code == 2 and "--runs" in bad.err
    _import(project, tmp_path, "alice", GOLD)
    _import(project, tmp_path, "bob", GOLD)
    res = cli("gold", "build", "humans", "--from", "alice,bob")
    assert res.code == 0, res
    assert f"{N} gold codes" in res.out and "0 ties" in res.out
    res = cli("validate", "--gold", "humans", "--split", "dev", "--json", "--bootstrap", "20")
    assert res.code == 0, res
    assert json.loads(res.out)["gold"] == "humans"
    bad = cli("gold", "build", "humans", "--from", "alice,bob")
    assert bad.code == 2 and "already exists" in bad.err


def test_runs_without_answers_on_the_split_are_left_out_with_a_note(project, tmp_path) -> None:
    """A dev run does not drag a test validation down with 100% 'missing': it is left out, and said so."""
    from annotator.data.example import import_example
    from annotator.data.splits import make_split

    import_example(project, n=60, seed=4, raters=2)
    make_split(project, 0.5, seed=1)
    with ScriptedServer() as server:
        dev = runner.label(
            project,
            RunRequest(
                prompt="sentiment/zero-shot.v1",
                model="openai-compatible/s",
                base_url=server.base_url,
                split="dev",
                sample=5,
            ),
        )
        freeze_prompt(project, "sentiment/zero-shot.v1")
        test = runner.label(
            project,
            RunRequest(
                prompt="sentiment/zero-shot.v1",
                model="openai-compatible/s",
                base_url=server.base_url,
                split="test",
                sample=5,
            ),
        )
    result = validate(project, gold="critics", split="test", n_boot=50)
    assert [r["run_id"] for r in result.runs] == [test.run_id]
    assert any(f"run:{dev.run_id}" in note for note in result.notes)


# -- the coverage rule: each run on the gold items it was asked (issue 10) ----------------------------------

BIG = 600
BIG_KEYS = [f"k{i:03d}" for i in range(BIG)]
BIG_GOLD = ["negative" if i % 3 == 0 else "positive" for i in range(BIG)]
BIG_WRONG = {i for i in range(BIG) if i % 5 == 0}  # the model is wrong on every fifth document
BIG_MODEL = [
    ("positive" if BIG_GOLD[i] == "negative" else "negative") if i in BIG_WRONG else BIG_GOLD[i]
    for i in range(BIG)
]


@pytest.fixture
def big(project, tmp_path: Path):
    """Gold on 600 test documents; no run yet."""
    sources = ["press" if i % 2 else "blog" for i in range(BIG)]
    import_docs(project, tmp_path, word_texts(BIG_KEYS), split="test", columns={"source": sources})
    gold = "".join(f"{k},{lab}\n" for k, lab in zip(BIG_KEYS, BIG_GOLD, strict=True))
    import_codes(project, write(tmp_path / "gold.csv", "id,label\n" + gold), coder="critics", kind="gold")
    freeze_prompt(project, "sentiment/zero-shot.v1")
    return project


def _sampled_run(project, n: int, labels: list[str] = BIG_MODEL, seed: int = 3, split: str = "test") -> int:
    """A real `--sample n` LLM run: its asked set is the n documents it drew."""
    return copy_run(project, BIG_KEYS, labels, split=split, sample=n, seed=seed)


def _asked_indices(project, run_id: int) -> list[int]:
    from annotator.store.asked import asked_sets

    with project.transaction() as s:
        ids = asked_sets(s, [run_id])[run_id]
        return sorted(int(d.doc_key[1:]) for d in s.exec(select(Document)).all() if d.id in ids)


def test_sampled_run_is_scored_on_the_30_it_was_asked(big) -> None:
    run_id = _sampled_run(big, 30)
    asked = _asked_indices(big, run_id)
    assert len(asked) == 30
    result = validate(big, "critics", split="test", n_boot=100, seed=1)
    (r,) = result.runs
    assert result.n_gold_split == BIG and result.scope == "asked"
    assert r["n_gold"] == 30 and r["n_missing"] == 0 and r["n_invalid"] == 0 and r["coverage"] == 1.0
    y_true = [BIG_GOLD[i] for i in asked]
    y_pred = [BIG_MODEL[i] for i in asked]
    correct = sum(t == p for t, p in zip(y_true, y_pred, strict=True))
    assert r["accuracy"]["estimate"] == pytest.approx(correct / 30, abs=1e-6) and correct / 30 > 0.5
    assert r["macro_f1"]["estimate"] == pytest.approx(
        f1_score(y_true, y_pred, labels=["negative", "positive"], average="macro"), abs=1e-6
    )
    # the 570 gold items the run was never asked appear nowhere
    cm = r["confusion"]
    assert sum(map(sum, cm["matrix"])) == 30
    assert all(row[cm["columns"].index(INVALID)] == 0 for row in cm["matrix"])
    assert sum(c["support"] for c in r["per_class"]) == 30
    # the old figure (every split gold item, never-asked ones as errors) would have been far lower
    assert r["accuracy"]["estimate"] > 10 * correct / BIG
    assert r["accuracy"]["method"] == "wilson" and r["coverage_interval"]["method"] == "wilson"
    assert not any("fewer than 30): its figures" in w and "only" in w for w in r["warnings"])


def test_interrupted_run_unanswered_asked_items_are_missing(big) -> None:
    from annotator.store.asked import store_asked

    run_id = _sampled_run(big, 40, seed=5)
    asked = _asked_indices(big, run_id)
    # the run was interrupted: five of its asked documents never got an answer, three answers are invalid
    with big.transaction() as s:
        by_index = {int(d.doc_key[1:]): d.id for d in s.exec(select(Document)).all()}
        dropped = {by_index[i] for i in asked[:5]}
        invalid = {by_index[i] for i in asked[5:8]}
        for a in s.exec(select(Annotation).where(col(Annotation.run_id) == run_id)).all():
            if a.document_id in dropped:
                s.delete(a)
            elif a.document_id in invalid:
                a.status, a.label = "invalid", None
                s.add(a)
        store_asked(s, run_id, [by_index[i] for i in asked])  # unchanged: the selection is kept
    r = validate(big, "critics", split="test", n_boot=50).runs[0]
    assert r["n_gold"] == 40 and r["n_missing"] == 5 and r["n_invalid"] == 3 and r["n_valid"] == 32
    assert r["coverage"] == pytest.approx(32 / 40)
    assert r["coverage_interval"]["estimate"] == pytest.approx(32 / 40)
    assert r["coverage_interval"]["low"] < 0.8 < r["coverage_interval"]["high"]
    correct = sum(BIG_MODEL[i] == BIG_GOLD[i] for i in asked[8:])
    assert r["accuracy"]["estimate"] == pytest.approx(correct / 40, abs=1e-6)  # unanswered = wrong
    cm = r["confusion"]
    assert sum(row[cm["columns"].index(INVALID)] for row in cm["matrix"]) == 8  # asked, unanswered only
    assert sum(map(sum, cm["matrix"])) == 40


def test_wilson_interval_for_20_of_20_and_small_n_warning(big, cli) -> None:
    run_id = _sampled_run(big, 20, labels=BIG_GOLD)  # a perfect run on 20 documents
    result = validate(big, "critics", split="test", n_boot=200, seed=2)
    r = result.runs[0]
    acc = r["accuracy"]
    assert acc["estimate"] == 1.0 and acc["high"] == 1.0 and acc["method"] == "wilson"
    assert 0.8 < acc["low"] < 0.85  # Wilson 95%: 0.839; the percentile bootstrap said [1, 1]
    assert r["coverage"] == 1.0 and r["coverage_interval"]["low"] == acc["low"]
    small = f"only 20 gold items were asked of run:{run_id} (fewer than 30): its figures are unstable"
    assert r["warnings"][0] == small and small in result.notes
    res = cli("validate", "--split", "test", "--bootstrap", "50")  # --gold defaults to the only gold coder
    assert res.code == 0, res
    out = " ".join(res.out.split())
    assert f"warning: {small}" in out and "Wilson" in out
    assert "1.000 [0.839, 1.000]" in out and "(20/20)" in out and "per class (n = 20)" in out
    assert "confusion (n = 20;" in out


def test_run_asked_none_of_the_gold_items(big, cli) -> None:
    dev_run = _sampled_run(big, 30)
    # move the run's documents out of the test split: it was asked none of the test gold items
    asked = set(_asked_indices(big, dev_run))
    with big.transaction() as s:
        for d in s.exec(select(Document)).all():
            if int(d.doc_key[1:]) in asked:
                d.split = "dev"
                s.add(d)
    test_run = _sampled_run(big, 30, seed=9)
    result = validate(big, split="test", n_boot=20)
    assert [r["run_id"] for r in result.runs] == [test_run]
    assert any(f"run:{dev_run}" in n and "asked none" in n for n in result.notes)
    # named: a clear line, not an all-wrong figure, and nothing stored for it
    named = validate(big, split="test", runs=[dev_run], n_boot=20)
    (entry,) = named.runs
    assert entry["asked_none"] is True and entry["n_gold"] == 0 and entry["metric_id"] is None
    assert (
        "accuracy" not in entry and "was asked none of the 570 gold items of the test split" in entry["line"]
    )
    with big.transaction() as s:
        assert not s.exec(select(Metric).where(col(Metric.run_id) == dev_run)).all()
    res = cli("validate", "--split", "test", "--runs", str(dev_run))
    assert res.code == 0, res
    assert "asked none of the 570 gold items" in " ".join(res.out.split()) and "0.000" not in res.out


def test_by_groups_follow_the_asked_set(big) -> None:
    run_id = _sampled_run(big, 30)
    asked = _asked_indices(big, run_id)
    r = validate(big, "critics", split="test", by="source", n_boot=20).runs[0]
    groups = r["by"]["groups"]
    press = [i for i in asked if i % 2]
    assert groups["press"]["n_gold"] == len(press) and groups["blog"]["n_gold"] == 30 - len(press)
    assert groups["press"]["accuracy"]["estimate"] == pytest.approx(
        sum(BIG_MODEL[i] == BIG_GOLD[i] for i in press) / len(press), abs=1e-6
    )
    assert groups["press"]["warnings"][0].startswith(
        f"only {len(press)} gold items were asked of run:{run_id}"
    )


def test_gold_defaults_to_the_only_gold_coder(setup, cli, tmp_path: Path) -> None:
    from annotator.services.validation import default_gold
    from tests.conftest import db_snapshot

    project, run_id = setup
    assert validate(project, split="dev", n_boot=5).gold == "critics"
    res = cli("validate", "--split", "dev", "--runs", str(run_id), "--bootstrap", "5", "--json")
    assert res.code == 0, res
    assert json.loads(res.out)["gold"] == "critics"
    # two gold coders: one line naming both, exit 2, nothing written
    _import(project, tmp_path, "panel", GOLD, kind="gold")
    before = db_snapshot(project)
    res = cli("validate", "--split", "dev")
    assert res.code == 2 and len(res.err.strip().splitlines()) == 1
    assert "2 gold coders (critics, panel): say which with --gold NAME" in res.err
    assert db_snapshot(project) == before
    with project.transaction() as s, pytest.raises(AnnotatorError, match=r"critics, panel"):
        default_gold(s)


def test_gold_default_without_any_gold_coder(docs, cli, tmp_path: Path) -> None:
    from tests.conftest import db_snapshot

    _set_split(docs, "dev")
    _import(docs, tmp_path, "alice", GOLD)
    _llm_run(docs)
    before = db_snapshot(docs)
    res = cli("validate", "--split", "dev")
    assert res.code == 2 and len(res.err.strip().splitlines()) == 1
    err = " ".join(res.err.split())
    assert "no gold coder in this project" in err and "annotator gold build NAME --from a,b" in err
    assert "human coders: alice" in err
    assert db_snapshot(docs) == before
    # a human coder named with --gold still works
    assert cli("validate", "--gold", "alice", "--split", "dev", "--bootstrap", "5").code == 0


# -- the typed result and the errors' two spellings -------------------------------------------------------


def test_validation_is_typed_its_json_is_what_the_cli_prints_and_rows_keep_their_shape(
    docs, tmp_path: Path, cli
) -> None:
    _set_split(docs, "test")
    _import(docs, tmp_path, "critics", GOLD, kind="gold")
    freeze_prompt(docs, "sentiment/zero-shot.v1")
    run_id = _llm_run(docs, split="test")
    result = validate(docs, "critics", by="source", n_boot=20, seed=2)
    assert isinstance(result, Validation)
    assert result.gold == "critics" and result.split == "test" and result.scope == "asked"
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.seed = 1  # type: ignore[misc]
    data = result.to_json()
    assert list(data) == VALIDATION_KEYS and list(data["runs"][0]) == RUN_KEYS
    assert json.loads(json.dumps(data)) == data  # JSON-ready as it is (no NaN, no datetimes)
    assert list(data["runs"][0]["frozen"]) == [
        "frozen_before_run",
        "prompt",
        "frozen_at",
        "started_at",
        "line",
    ]
    assert list(data["runs"][0]["by"]) == ["column", "groups", "not_asked"]
    res = cli("validate", "--gold", "critics", "--by", "source", "--bootstrap", "20", "--seed", "2", "--json")
    assert res.code == 0, res
    printed = json.loads(res.out)
    assert list(printed) == VALIDATION_KEYS
    metric_ids = [result.runs[0]["metric_id"], printed["runs"][0]["metric_id"]]
    for entry in (data["runs"][0], printed["runs"][0]):
        del entry["metric_id"]
    assert printed == data  # the same figures (same seed), one more metrics row
    # the stored row: the header, the run's entry without its metric id, the schema
    with docs.transaction() as s:
        rows = s.exec(select(Metric).where(col(Metric.kind) == "validation").order_by(col(Metric.id))).all()
    assert [r.id for r in rows] == metric_ids and all(r.run_id == run_id for r in rows)
    stored = rows[0].result
    assert list(stored) == [*VALIDATION_KEYS[:-1], "run", "schema"] and stored["schema"] == 1
    assert stored["run"] == data["runs"][0] and list(stored["run"]) == RUN_KEYS[:-1]
    assert {k: v for k, v in stored.items() if k not in ("run", "schema")} == {
        k: v for k, v in data.items() if k != "runs"
    }


def test_errors_name_the_parameter_a_caller_passed(setup, cli) -> None:
    project, _ = setup
    with pytest.raises(AnnotatorError) as raised:
        validate(project, "critics", split="dev", by="genre")
    assert str(raised.value).startswith("by='genre': no such metadata column") and "--" not in str(
        raised.value
    )
    with pytest.raises(AnnotatorError, match=r"^n_boot=0: use at least 1 replicate"):
        validate(project, "critics", split="dev", n_boot=0)
    bad = cli("validate", "--gold", "critics", "--split", "dev", "--by", "genre")
    assert bad.code == 2 and bad.err.startswith("error: --by genre: no such metadata column")
    bad = cli("validate", "--gold", "critics", "--split", "dev", "--bootstrap", "0")
    assert bad.code == 2 and bad.err.startswith("error: --bootstrap 0: use at least 1 replicate")
