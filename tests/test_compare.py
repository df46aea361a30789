"""`annotator compare` on real temp projects with scripted LLM runs: leaderboard, pairwise tests, prompts."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
from scipy.stats import binomtest
from sqlmodel import col, select

from annotator.data.corpus import get_or_create_coder, import_codes
from annotator.errors import AnnotatorError
from annotator.prompts import load_prompt, prompt_diff
from annotator.services.compare import (
    Comparison,
    PairTest,
    PromptComparison,
    RunEntry,
    compare,
    holm,
    mcnemar_exact,
)
from annotator.services.results import SCHEMAS
from annotator.services.validation import validate
from annotator.stats.reliability import krippendorff_alpha, paired_bootstrap_difference, to_matrix
from annotator.store.models import Annotation, CodebookVersion, Document, Metric, Run, RunDocument
from tests.conftest import copy_run, flip, import_docs, word_texts, write

N = 40
KEYS = [f"d{i:02d}" for i in range(N)]
GOLD = ["positive" if i % 3 else "negative" for i in range(N)]


ALICE = flip(GOLD, {1, 4})
BOB = flip(GOLD, {4, 7, 9})
# WORSE: wrong on six documents and "neutral" (always wrong against this gold) on one: 7 errors
WORSE = [x if i != 2 else "neutral" for i, x in enumerate(flip(GOLD, {5, 10, 20, 31, 33, 35}))]
CLOSE = flip(WORSE, {8})  # WORSE plus one more error: 8 errors


@pytest.fixture
def docs(project, tmp_path: Path):
    """Forty dev documents, each with a unique word (so a scripted model can copy any labels), and gold."""
    import_docs(project, tmp_path, word_texts(KEYS))
    _import(project, tmp_path, "critics", GOLD, kind="gold")
    return project


@pytest.fixture
def humans(docs, tmp_path: Path):
    _import(docs, tmp_path, "alice", ALICE)
    _import(docs, tmp_path, "bob", BOB)
    return docs


def _import(project, tmp_path: Path, name: str, labels: list[str], kind: str = "human") -> None:
    rows = "".join(f"{k},{lab}\n" for k, lab in zip(KEYS, labels, strict=True))
    import_codes(project, write(tmp_path / f"{name}.csv", "id,label\n" + rows), coder=name, kind=kind)


def _sampled_run(
    project, labels: list[str], tag: str, sample: int, seed: int = 0, prompt: str = "sentiment/zero-shot.v1"
) -> tuple[int, list[int]]:
    """A scripted LLM run asked a seeded sample of the dev split; its id and the document ids it was asked."""
    run_id = copy_run(project, KEYS, labels, prompt=prompt, tag=tag, sample=sample, seed=seed)
    with project.transaction() as s:
        asked = s.exec(select(RunDocument.document_id).where(col(RunDocument.run_id) == run_id)).all()
    assert len(asked) == sample
    return run_id, sorted(asked)


@pytest.fixture
def three(humans):
    """Runs that copy gold (perfect), make 7 errors (worse) and 8 errors (close: worse plus one)."""
    ids = {
        "close": copy_run(humans, KEYS, CLOSE, tag="close"),
        "perfect": copy_run(humans, KEYS, GOLD, tag="perfect"),
        "worse": copy_run(humans, KEYS, WORSE, tag="worse"),
    }
    return humans, ids


def _doc_ids(project, keys: list[str]) -> list[int]:
    with project.transaction() as s:
        return [d.id for d in s.exec(select(Document).where(col(Document.doc_key).in_(keys))).all()]


def _drop_answers(project, run_id: int, keys: list[str], asked: bool = False) -> None:
    """Delete the run's answers to these documents; ``asked``: also its asked rows (never asked them)."""
    ids = _doc_ids(project, keys)
    with project.transaction() as s:
        for a in s.exec(select(Annotation).where(col(Annotation.run_id) == run_id)).all():
            if a.document_id in ids:
                s.delete(a)
        if asked:
            for row in s.exec(select(RunDocument).where(col(RunDocument.run_id) == run_id)).all():
                if row.document_id in ids:
                    s.delete(row)


SETTING_KEYS = [
    "gold",
    "codebook",
    "codebook_versions",
    "split",
    "n_gold",
    "labels",
    "uncertain_label",
    "sort",
    "n_boot",
    "seed",
    "ci",
    "min_units",
]
# `compare --json` before the result was typed: the same keys, in the same order
COMPARE_KEYS = [
    *SETTING_KEYS,
    "mode",
    "humans",
    "runs",
    "best_run",
    "pairs",
    "comparisons",
    "warnings",
    "notes",
    "metric_id",
]
PROMPT_COMPARE_KEYS = [*SETTING_KEYS, "mode", "prompts", "warnings", "notes", "metric_id"]


def _difference(
    c: PairTest, key: Literal["accuracy_difference", "macro_f1_difference"] = "accuracy_difference"
) -> dict[str, Any]:
    """A tested pair's difference (A minus B) with its interval."""
    d = c[key]
    assert d is not None
    return d


def _ps(comparisons: list[PairTest], key: Literal["mcnemar_p", "p_holm"]) -> list[float]:
    """The tested pairs' p values."""
    return [p for c in comparisons if (p := c[key]) is not None]


def _stored(project, metric_id: int | None) -> Metric:
    with project.transaction() as s:
        row = s.get(Metric, metric_id)
        assert row is not None
        return row


# -- leaderboard ----------------------------------------------------------------------------------------------


def test_leaderboard_ranks_and_equals_validate(three) -> None:
    project, ids = three
    result = compare(project, split="dev", n_boot=300, seed=2)
    assert result.mode == "leaderboard" and result.gold == "critics" and result.n_gold == N
    assert all(r["n_items"] == N and r["n_missing"] == 0 and r["too_few"] is None for r in result.runs)
    ranked = [r["run_id"] for r in result.runs]
    assert ranked == [ids["perfect"], ids["worse"], ids["close"]] and result.best_run == ids["perfect"]
    assert [r["rank"] for r in result.runs] == [1, 2, 3]
    by_id = {r["run_id"]: r for r in result.runs}
    assert by_id[ids["perfect"]]["accuracy"]["estimate"] == 1.0
    assert by_id[ids["worse"]]["accuracy"]["estimate"] == pytest.approx(33 / N)
    assert by_id[ids["close"]]["accuracy"]["estimate"] == pytest.approx(32 / N)
    assert by_id[ids["worse"]]["n_uncertain"] == 1 and by_id[ids["worse"]]["coverage"] == 1.0
    # the figures are validate's, interval for interval, on the same items with the same seed
    reference = {r["run_id"]: r for r in validate(project, "critics", split="dev", n_boot=300, seed=2).runs}
    for run_id, entry in by_id.items():
        for key in ("accuracy", "macro_f1", "kappa", "weighted_f1", "per_class", "confusion"):
            assert entry[key] == reference[run_id][key], key
    # sorted by accuracy instead: the same order here, and the sort is recorded
    assert compare(project, split="dev", n_boot=50, sort="accuracy").sort == "accuracy"
    with project.transaction() as s:
        row = s.get(Metric, result.metric_id)
        assert row is not None and row.kind == "compare" and row.params["seed"] == 2
        assert row.result["best_run"] == ids["perfect"]


def test_mcnemar_exact_and_holm_by_hand(three) -> None:
    project, ids = three
    result = compare(project, split="dev", n_boot=500, seed=0)
    assert result.pairs == "all"  # three runs: every pair
    pairs = {(c["a"], c["b"]): c for c in result.comparisons}
    p, w, c = ids["perfect"], ids["worse"], ids["close"]
    assert set(pairs) == {(p, w), (p, c), (w, c)}  # A is always the higher-ranked run
    pw, pc, wc = pairs[(p, w)], pairs[(p, c)], pairs[(w, c)]
    assert (pw["a_only_correct"], pw["b_only_correct"]) == (7, 0)
    assert (pc["a_only_correct"], pc["b_only_correct"]) == (8, 0)
    assert (wc["a_only_correct"], wc["b_only_correct"]) == (1, 0)
    # exact two-sided p: 2 * P(X <= 0) for X ~ Binomial(n, 1/2)
    assert pw["mcnemar_p"] == pytest.approx(2 * 0.5**7)
    assert pc["mcnemar_p"] == pytest.approx(2 * 0.5**8)
    assert wc["mcnemar_p"] == 1.0
    assert mcnemar_exact(3, 9) == pytest.approx(binomtest(3, 12, 0.5).pvalue)
    assert mcnemar_exact(0, 0) == 1.0
    # Holm: sorted p times (3, 2, 1), made monotone
    assert pc["p_holm"] == pytest.approx(3 * 2 * 0.5**8)
    assert pw["p_holm"] == pytest.approx(max(3 * 2 * 0.5**8, 2 * 2 * 0.5**7))
    assert wc["p_holm"] == 1.0
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    # the perfect run beats the worse one: the accuracy difference's interval excludes zero
    assert _difference(pw)["estimate"] == pytest.approx(7 / N)
    assert _difference(pw)["low"] > 0 and pw["significant"] is True
    assert f"run:{p} is more accurate than run:{w}" in pw["line"]
    # one item apart: no clear difference
    assert wc["significant"] is False and _difference(wc)["low"] <= 0
    assert "no clear difference" in wc["line"]


def test_paired_bootstrap_equals_the_reliability_module(three) -> None:
    project, ids = three
    result = compare(project, split="dev", n_boot=400, seed=7)
    cmp = next(c for c in result.comparisons if (c["a"], c["b"]) == (ids["perfect"], ids["close"]))
    gold = np.array(GOLD)
    correct = np.vstack([gold == np.array(GOLD), gold == np.array(CLOSE)]).astype(float)  # docs in id order
    ref = paired_bootstrap_difference(correct, lambda m: m[0].mean(), lambda m: m[1].mean(), n=400, seed=7)
    d = _difference(cmp)
    assert d["estimate"] == pytest.approx(ref.difference, abs=1e-6)
    assert d["low"] == pytest.approx(ref.low, abs=1e-6) and d["high"] == pytest.approx(ref.high, abs=1e-6)
    assert _difference(cmp, "macro_f1_difference")["estimate"] > 0


def test_alpha_vs_majority_by_hand(three) -> None:
    """The run against the humans' majority label: ties and answers without a label left out (and counted),
    as `annotator agreement` does."""
    project, ids = three
    result = compare(project, split="dev", n_boot=200, seed=1)
    assert result.humans["coders"] == ["alice", "bob"]
    agreed = [i for i in range(N) if ALICE[i] == BOB[i]]  # two coders: a disagreement is a tie
    assert len(agreed) == 37 and 2 in agreed
    labelled = [i for i in agreed if WORSE[i] != "neutral"]
    records = [("majority", i, ALICE[i]) for i in labelled] + [("run", i, WORSE[i]) for i in labelled]
    matrix, *_ = to_matrix(records, categories=["negative", "positive"])
    worse = next(r for r in result.runs if r["run_id"] == ids["worse"])
    a = worse["alpha_vs_majority"]
    assert "alpha_with_humans" not in worse
    assert a["estimate"] == pytest.approx(krippendorff_alpha(matrix), abs=1e-6)
    assert (a["n_units"], a["n_ties_left_out"], a["n_no_label"]) == (36, 3, 1)
    assert a["low"] <= a["estimate"] <= a["high"] < 1 and a["reason"] is None
    # the humans among themselves, on the gold items (context, not a run's figure)
    humans = to_matrix(
        [(c, i, lab) for c, labels in (("alice", ALICE), ("bob", BOB)) for i, lab in enumerate(labels)],
        categories=["negative", "positive"],
    )[0]
    assert result.humans["alpha"]["estimate"] == pytest.approx(krippendorff_alpha(humans), abs=1e-6)
    assert not any("alpha vs the human majority is undefined" in n for n in result.notes)
    # below the minimum: no number, the reason says how many units
    few = compare(project, split="dev", n_boot=20, min_units=38)
    a = next(r for r in few.runs if r["run_id"] == ids["worse"])["alpha_vs_majority"]
    assert a["estimate"] is None and a["n_units"] == 36 and a["reason"].startswith("too few units (36")


def test_alpha_vs_majority_of_a_constant_run_is_near_zero(humans) -> None:
    """A run that always says "positive" beside humans who agree: the humans+run pooled alpha was high (the
    humans' agreement dominated it); against the majority it is at chance or below."""
    constant = copy_run(humans, KEYS, ["positive"] * N, tag="constant")
    copy_run(humans, KEYS, GOLD, tag="perfect")
    result = compare(humans, split="dev", n_boot=100)
    entry = next(r for r in result.runs if r["run_id"] == constant)
    a = entry["alpha_vs_majority"]
    assert a["estimate"] is not None and a["estimate"] <= 0.1 and a["n_units"] == 37
    perfect = next(r for r in result.runs if r["run_id"] != constant)["alpha_vs_majority"]
    assert perfect["estimate"] > 0.8


def test_without_humans_alpha_is_none_with_a_note(docs) -> None:
    copy_run(docs, KEYS, GOLD, tag="a")
    copy_run(docs, KEYS, WORSE, tag="b")
    result = compare(docs, split="dev", n_boot=50)
    assert all(r["alpha_vs_majority"]["estimate"] is None for r in result.runs)
    assert "no human coders" in result.runs[0]["alpha_vs_majority"]["reason"]
    assert any("alpha vs the human majority is undefined" in n for n in result.notes)


def test_cost_time_and_tokens_per_valid_label(three) -> None:
    project, ids = three
    with project.transaction() as s:
        run = s.get(Run, ids["worse"])
        assert run is not None
        run.cost_usd = 0.4
        run.finished_at = run.started_at + timedelta(seconds=20)
        tokens = run.tokens_in + run.tokens_out
        s.add(run)
    entry = next(r for r in compare(project, split="dev", n_boot=20).runs if r["run_id"] == ids["worse"])
    assert entry["n_valid_total"] == N and entry["cost_usd"] == pytest.approx(0.4)
    assert entry["cost_per_valid"] == pytest.approx(0.01)
    assert entry["seconds"] == pytest.approx(20) and entry["seconds_per_valid"] == pytest.approx(0.5)
    assert tokens > 0 and entry["tokens_per_valid"] == pytest.approx(tokens / N, abs=1e-6)


def test_each_run_is_scored_on_the_gold_items_it_was_asked(three) -> None:
    project, ids = three
    _drop_answers(project, ids["worse"], KEYS[30:], asked=True)  # worse was asked d00..d29 only
    result = compare(project, split="dev", n_boot=50)
    assert result.n_gold == N
    by_id = {r["run_id"]: r for r in result.runs}
    assert by_id[ids["worse"]]["n_items"] == 30 and by_id[ids["worse"]]["n_missing"] == 0
    assert by_id[ids["worse"]]["accuracy"]["estimate"] == pytest.approx(26 / 30)  # errors 2, 5, 10, 20
    assert by_id[ids["perfect"]]["n_items"] == N and by_id[ids["close"]]["n_items"] == N  # not cut to 30
    assert by_id[ids["close"]]["accuracy"]["estimate"] == pytest.approx(32 / N)
    pairs = {(c["a"], c["b"]): c for c in result.comparisons}
    assert pairs[(ids["perfect"], ids["close"])]["n_items"] == N
    pw = pairs[(ids["perfect"], ids["worse"])]
    assert pw["n_items"] == 30 and pw["tested"] and (pw["a_only_correct"], pw["b_only_correct"]) == (4, 0)
    assert "on the 30 gold items both were asked" in pw["line"]
    note = next(n for n in result.notes if "runs asked fewer than the 40 gold items" in n)
    assert f"run:{ids['worse']} on 30" in note and f"run:{ids['perfect']}" not in note


def test_asked_but_unanswered_counts_as_wrong(three) -> None:
    """An item the run was asked and never answered (an interrupted run) is an error, as in validate."""
    project, ids = three
    _drop_answers(project, ids["worse"], KEYS[30:])  # still asked d30..d39
    entry = next(r for r in compare(project, split="dev", n_boot=20).runs if r["run_id"] == ids["worse"])
    assert entry["n_items"] == N and entry["n_missing"] == 10 and entry["n_invalid"] == 0
    assert entry["accuracy"]["estimate"] == pytest.approx(26 / N)  # 7 of d30..d39 were right, now wrong
    assert entry["coverage"] == pytest.approx(30 / N)


def _figures(entry: RunEntry) -> dict:
    keys = ("n_items", "accuracy", "macro_f1", "weighted_f1", "kappa", "per_class", "confusion", "coverage")
    row: dict[str, Any] = dict(entry)
    return {k: row[k] for k in (*keys, "alpha_vs_majority")}


def test_a_sampled_run_changes_nothing_of_the_full_runs(three) -> None:
    """Issue 10: a 30-document run used to cut every run down to its 30 items (a weak baseline ranked first)."""
    project, ids = three
    before = compare(project, split="dev", n_boot=200, seed=4, pairs="all")
    small, small_docs = _sampled_run(project, GOLD, "small", sample=20, seed=3)
    after = compare(project, split="dev", n_boot=200, seed=4, pairs="all")
    full = [ids["perfect"], ids["worse"], ids["close"]]
    assert [r["run_id"] for r in before.runs] == full
    assert [r["run_id"] for r in after.runs] == [*full, small]  # too few items: ranked after the others
    old = {r["run_id"]: r for r in before.runs}
    new = {r["run_id"]: r for r in after.runs}
    for run_id in full:
        assert _figures(new[run_id]) == _figures(old[run_id]) and new[run_id]["rank"] == old[run_id]["rank"]
    row = new[small]
    assert row["n_items"] == 20 and row["accuracy"]["estimate"] == 1.0 and row["rank"] == 4
    assert row["too_few"] == "too few units (20; at least 30 needed)"
    assert row["alpha_vs_majority"]["estimate"] is None and row["alpha_vs_majority"]["n_units"] <= 20
    # pairs with the sampled run share 20 items: a note, no test, out of Holm's family
    untested = [c for c in after.comparisons if small in (c["a"], c["b"])]
    assert len(untested) == 3
    for c in untested:
        assert not c["tested"] and c["n_items"] == 20 and c["mcnemar_p"] is None and c["p_holm"] is None
        assert c["line"] == f"run:{c['a']} and run:{c['b']} share 20 gold items (fewer than 30): not tested"
    tested = {(c["a"], c["b"]): c for c in after.comparisons if c["tested"]}
    assert tested == {(c["a"], c["b"]): c for c in before.comparisons}  # Holm p values included
    # a larger sample: ranked by its own figures, tested against the others on the items both were asked
    big, big_docs = _sampled_run(project, flip(GOLD, {0, 1, 2, 3, 5}), "big", sample=35, seed=5)
    wrong = len({0, 1, 2, 3, 5} & {i for i, d in enumerate(_doc_ids(project, KEYS)) if d in big_docs})
    third = compare(project, split="dev", n_boot=200, seed=4, pairs="all")
    rows = {r["run_id"]: r for r in third.runs}
    for run_id in full:
        assert _figures(rows[run_id]) == _figures(old[run_id])
    assert rows[big]["n_items"] == 35 and rows[big]["too_few"] is None
    assert rows[big]["accuracy"]["estimate"] == pytest.approx((35 - wrong) / 35)
    pair = next(c for c in third.comparisons if {c["a"], c["b"]} == {big, ids["perfect"]})
    assert pair["tested"] and pair["n_items"] == 35 and pair["mcnemar_p"] is not None
    assert pair["a"] == ids["perfect"] and (pair["a_only_correct"], pair["b_only_correct"]) == (wrong, 0)
    # the pair of the two samples shares fewer than 30 items (at most 20)
    shared = len(set(small_docs) & set(big_docs))
    pair = next(c for c in third.comparisons if {c["a"], c["b"]} == {big, small})
    assert not pair["tested"] and pair["n_items"] == shared
    # Holm's family is the tested pairs: the full runs' three and the big run's three
    family = [c for c in third.comparisons if c["tested"]]
    assert len(family) == 6
    assert _ps(family, "p_holm") == pytest.approx(holm(_ps(family, "mcnemar_p")), abs=1e-6)
    # --min-units lowers the bar: the small run is tested against the full runs
    low = compare(project, split="dev", n_boot=50, pairs="all", min_units=10)
    assert all(
        c["tested"] for c in low.comparisons if small in (c["a"], c["b"]) and big not in (c["a"], c["b"])
    )


def test_a_single_run_is_allowed(three, cli) -> None:
    project, ids = three
    result = compare(project, split="dev", runs=[ids["worse"]], n_boot=50)
    assert [r["run_id"] for r in result.runs] == [ids["worse"]] and result.comparisons == []
    assert result.runs[0]["rank"] == 1 and result.best_run == ids["worse"]
    assert f"one run (run:{ids['worse']}): nothing to pair" in result.notes
    res = cli("compare", "--split", "dev", "--bootstrap", "20", "--runs", str(ids["worse"]))
    assert res.code == 0, res
    assert f"run:{ids['worse']}" in res.out and "nothing to pair" in res.out and "McNemar" not in res.out


def test_invalid_answers_count_as_errors_and_lower_coverage(three) -> None:
    project, ids = three
    doc = _doc_ids(project, ["d00"])[0]
    with project.transaction() as s:
        a = s.exec(
            select(Annotation).where(
                col(Annotation.run_id) == ids["perfect"], col(Annotation.document_id) == doc
            )
        ).one()
        a.status, a.label = "invalid", None
        s.add(a)
    entry = next(r for r in compare(project, split="dev", n_boot=20).runs if r["run_id"] == ids["perfect"])
    assert entry["n_items"] == N and entry["n_invalid"] == 1
    assert entry["accuracy"]["estimate"] == pytest.approx(39 / N) and entry["coverage"] == pytest.approx(
        39 / N
    )


def test_baseline_runs_take_part(three) -> None:
    """A baseline is a run of kind baseline without a prompt: it is ranked like any run."""
    project, _ = three
    doc_ids = dict(zip(KEYS, _doc_ids(project, KEYS), strict=True))  # keys and ids share the order
    with project.transaction() as s:
        coder = get_or_create_coder(s, "tfidf-lr", "baseline")
        book = s.exec(select(CodebookVersion).where(col(CodebookVersion.name) == "sentiment")).one()
        run = Run(coder_id=coder.id, kind="baseline", codebook_id=book.id, model="tfidf+lr", split="dev")
        run.status, run.finished_at = "done", run.started_at + timedelta(seconds=4)
        s.add(run)
        s.flush()
        for i, key in enumerate(KEYS):
            s.add(Annotation(run_id=run.id, document_id=doc_ids[key], label=flip(GOLD, {0, 1, 2})[i]))
        base_id = run.id
    result = compare(project, split="dev", n_boot=50)
    assert result.pairs == "all" and len(result.comparisons) == 6  # four runs: every pair
    entry = next(r for r in result.runs if r["run_id"] == base_id)
    assert entry["kind"] == "baseline" and entry["prompt"] is None and entry["coder"] == "tfidf-lr"
    assert entry["accuracy"]["estimate"] == pytest.approx(37 / N) and entry["rank"] == 2
    assert entry["cost_per_valid"] == 0 and entry["seconds_per_valid"] == pytest.approx(0.1)


def test_pairs_default_to_each_against_the_best_with_many_runs(three) -> None:
    project, ids = three
    copy_run(project, KEYS, flip(GOLD, {0}), tag="one-off")
    copy_run(project, KEYS, flip(GOLD, {0, 1, 2, 3}), tag="four-off")
    result = compare(project, split="dev", n_boot=50)
    assert result.pairs == "best" and len(result.comparisons) == 4
    assert all(c["a"] == ids["perfect"] for c in result.comparisons)
    every = compare(project, split="dev", n_boot=50, pairs="all")
    assert len(every.comparisons) == 10
    ps = _ps(every.comparisons, "mcnemar_p")
    assert _ps(every.comparisons, "p_holm") == pytest.approx(holm(ps), abs=1e-6)
    assert all(h >= p for h, p in zip(_ps(every.comparisons, "p_holm"), ps, strict=True))


# -- prompt versions ----------------------------------------------------------------------------------------


def test_prompt_versions_side_by_side_with_their_diff(humans) -> None:
    v1 = copy_run(humans, KEYS, WORSE, tag="v1", prompt="sentiment/zero-shot.v1")
    v2 = copy_run(humans, KEYS, GOLD, tag="v2", prompt="sentiment/zero-shot.v2")
    v2b = copy_run(humans, KEYS, CLOSE, tag="v2-again", prompt="sentiment/zero-shot.v2")
    few = copy_run(
        humans, KEYS, GOLD, tag="few", prompt="sentiment/few-shot.v1"
    )  # one version only: not shown
    result = compare(humans, prompts=True, n_boot=50)
    assert result.mode == "prompts" and result.split == "dev"
    (group,) = result.prompts
    assert group["prompt"] == "sentiment/zero-shot" and result.n_gold == N
    assert all(r["n_items"] == N for v in group["versions"] for r in v["runs"])
    assert group["pairs"] == "all" and len(group["comparisons"]) == 3  # the prompt's three runs
    assert [v["version"] for v in group["versions"]] == [1, 2]
    assert [r["run_id"] for r in group["versions"][0]["runs"]] == [v1]
    assert [r["run_id"] for r in group["versions"][1]["runs"]] == [v2, v2b]  # best first
    ranks = {r["run_id"]: r["rank"] for v in group["versions"] for r in v["runs"]}
    assert ranks == {v2: 1, v1: 2, v2b: 3} and few not in ranks
    assert group["versions"][1]["runs"][0]["accuracy"]["estimate"] == 1.0
    (diff,) = group["diffs"]
    files = humans.prompts_dir
    expected = prompt_diff(
        load_prompt(files, "sentiment/zero-shot.v1"), load_prompt(files, "sentiment/zero-shot.v2")
    )
    assert diff["from"] == "sentiment/zero-shot.v1" and diff["to"] == "sentiment/zero-shot.v2"
    assert diff["diff"] == expected and diff["diff"].startswith("--- sentiment/zero-shot.v1")
    assert group["versions"][0]["sha256"] != group["versions"][1]["sha256"]
    assert _stored(humans, result.metric_id).kind == "compare_prompts"


def test_prompts_needs_two_versions_with_runs(humans) -> None:
    copy_run(humans, KEYS, GOLD, tag="a")
    copy_run(humans, KEYS, WORSE, tag="b", prompt="sentiment/few-shot.v1")
    with pytest.raises(AnnotatorError, match=r"no prompt of codebook 'sentiment' has two or more versions"):
        compare(humans, prompts=True)


# -- refusals -----------------------------------------------------------------------------------------------


def test_refusals_name_the_value_and_what_to_do(three, tmp_path: Path) -> None:
    project, ids = three
    p, w = ids["perfect"], ids["worse"]
    with pytest.raises(AnnotatorError, match=rf"runs=\[{p}, 999\]: 999 \(no such run\)"):
        compare(project, split="dev", runs=[p, 999])
    with project.transaction() as s:  # an LLM run of another codebook
        other = CodebookVersion(name="stance", version=1, sha256="0" * 64, body="")
        s.add(other)
        s.flush()
        coder = get_or_create_coder(s, "other-model", "llm")
        run = Run(coder_id=coder.id, kind="llm", codebook_id=other.id, split="dev")
        s.add(run)
        s.flush()
        other_run = run.id
    with pytest.raises(AnnotatorError, match=rf"{other_run} \(not an LLM or baseline run of 'sentiment'\)"):
        compare(project, split="dev", runs=[p, other_run])
    with pytest.raises(AnnotatorError, match="'nobody': no coder of that name"):
        compare(project, gold="nobody", split="dev")
    with pytest.raises(AnnotatorError, match="no codes of codebook 'sentiment' on split 'test'"):
        compare(project)  # the leaderboard's default split is test
    # no overlap: perfect was asked the first half only, worse the second half only: shown, not tested
    _drop_answers(project, p, KEYS[20:], asked=True)
    _drop_answers(project, w, KEYS[:20], asked=True)
    apart = compare(project, split="dev", runs=[p, w], n_boot=20)
    assert [r["n_items"] for r in apart.runs] == [20, 20]
    (c,) = apart.comparisons
    assert (
        not c["tested"]
        and c["n_items"] == 0
        and "share 0 gold items (fewer than 30): not tested" in c["line"]
    )
    for kwargs, message in (
        ({"sort": "kappa"}, "sort='kappa': use macro-f1 or accuracy"),
        ({"pairs": "some"}, "pairs='some': use auto, best or all"),
        ({"split": "train"}, "split='train': use dev, test or all"),
        ({"n_boot": 0}, "n_boot=0: use at least 1 replicate"),
        ({"min_units": 0}, "min_units=0: use 1 or more"),
    ):
        with pytest.raises(AnnotatorError, match=re.escape(message)):
            compare(project, **kwargs)


def test_gold_coder_defaults_and_refusals(docs, tmp_path: Path) -> None:
    only = copy_run(docs, KEYS, GOLD, tag="a")
    assert [r["run_id"] for r in compare(docs, split="dev", n_boot=20).runs] == [only]  # one run is fine
    copy_run(docs, KEYS, WORSE, tag="b")
    assert compare(docs, split="dev", n_boot=20).gold == "critics"  # the only gold coder
    _import(docs, tmp_path, "majority", GOLD, kind="gold")
    with pytest.raises(
        AnnotatorError, match=r"2 gold coders \(critics, majority\): say which with gold='NAME'"
    ):
        compare(docs, split="dev")
    assert compare(docs, gold="majority", split="dev", n_boot=20).gold == "majority"


def test_no_gold_coder(project, tmp_path: Path) -> None:
    with pytest.raises(AnnotatorError, match="no gold coder in this project: import one"):
        compare(project, split="dev")


def test_runs_without_answers_on_the_split(three) -> None:
    project, ids = three
    _drop_answers(project, ids["close"], KEYS, asked=True)  # close was never asked these documents
    result = compare(project, split="dev", n_boot=20)
    assert [r["run_id"] for r in result.runs] == [ids["perfect"], ids["worse"]]
    assert any(
        f"left out, asked none of the dev split's 40 gold items: run:{ids['close']}" in n
        for n in result.notes
    )
    with pytest.raises(
        AnnotatorError,
        match=rf"runs=\[{ids['perfect']}, {ids['close']}\]: run:{ids['close']} was asked none of the 40 gold items",
    ):
        compare(project, split="dev", runs=[ids["perfect"], ids["close"]])
    # asked but no answer at all (e.g. every request failed): scored, every item wrong
    _drop_answers(project, ids["worse"], KEYS)
    entry = next(r for r in compare(project, split="dev", n_boot=20).runs if r["run_id"] == ids["worse"])
    assert entry["n_items"] == N and entry["n_missing"] == N and entry["accuracy"]["estimate"] == 0.0


# -- the typed result ---------------------------------------------------------------------------------------


def test_the_result_is_typed_and_its_json_is_printed_and_stored(three, cli) -> None:
    project, _ = three
    result = compare(project, split="dev", n_boot=50, seed=3)
    assert isinstance(result, Comparison) and result.paired
    data = result.to_json()
    assert list(data) == COMPARE_KEYS
    assert json.loads(json.dumps(data)) == data  # JSON-ready as it is
    row = _stored(project, result.metric_id)
    assert row.kind == "compare"  # stored: the same keys in the same order, the schema instead of the id
    assert list(row.result) == [*COMPARE_KEYS[:-1], "schema"] and row.result["schema"] == SCHEMAS["compare"]
    assert {k: v for k, v in row.result.items() if k != "schema"} == {
        k: v for k, v in data.items() if k != "metric_id"
    }
    res = cli("compare", "--split", "dev", "--bootstrap", "50", "--seed", "3", "--json")
    assert res.code == 0, res
    printed = json.loads(res.out)
    assert list(printed) == COMPARE_KEYS and printed["metric_id"] == (result.metric_id or 0) + 1
    assert {k: v for k, v in printed.items() if k != "metric_id"} == {
        k: v for k, v in data.items() if k != "metric_id"
    }


def test_the_prompts_result_is_typed(humans) -> None:
    copy_run(humans, KEYS, WORSE, tag="v1", prompt="sentiment/zero-shot.v1")
    copy_run(humans, KEYS, GOLD, tag="v2", prompt="sentiment/zero-shot.v2")
    result = compare(humans, prompts=True, n_boot=20)
    assert isinstance(result, PromptComparison) and result.paired
    data = result.to_json()
    assert list(data) == PROMPT_COMPARE_KEYS and json.loads(json.dumps(data)) == data
    assert list(data["prompts"][0]["diffs"][0]) == ["from", "to", "diff"]
    row = _stored(humans, result.metric_id)
    assert row.kind == "compare_prompts" and list(row.result) == [*PROMPT_COMPARE_KEYS[:-1], "schema"]


def test_refusals_name_python_arguments_and_cli_flags(three, cli, tmp_path: Path) -> None:
    """The service names its own parameters (``n_boot=0``); the CLI the flags the user typed."""
    project, ids = three
    with pytest.raises(AnnotatorError) as caught:
        compare(project, split="dev", n_boot=0)
    assert str(caught.value).startswith("n_boot=0: use at least 1 replicate") and "--" not in str(
        caught.value
    )
    res = cli("compare", "--split", "dev", "--bootstrap", "0")
    assert res.code == 2 and res.err.startswith("error: --bootstrap 0: use at least 1 replicate"), res
    for flags, python, printed in (
        (("--sort", "kappa"), "sort='kappa'", "--sort kappa: use macro-f1 or accuracy"),
        (("--pairs", "some"), "pairs='some'", "--pairs some: use auto, best or all"),
        (("--min-units", "0"), "min_units=0", "--min-units 0: use 1 or more"),
    ):
        res = cli("compare", "--split", "dev", *flags)
        assert res.code == 2 and f"error: {printed}" in res.err and python not in res.err, res
    res = cli("compare", "--split", "train")
    assert res.code == 2 and "error: --split train: use dev, test or all" in res.err, res
    _drop_answers(project, ids["close"], KEYS, asked=True)
    named = f"{ids['perfect']},{ids['close']}"
    with pytest.raises(AnnotatorError) as caught:
        compare(project, split="dev", runs=[ids["perfect"], ids["close"]])
    assert f"runs=[{ids['perfect']}, {ids['close']}]: run:{ids['close']} was asked none" in str(caught.value)
    assert "split='test' or split='all'" in str(caught.value)
    res = cli("compare", "--split", "dev", "--runs", named)
    assert res.code == 2 and f"error: --runs {named}: run:{ids['close']} was asked none" in res.err, res
    assert "choose the split they labeled: --split test or --split all" in res.err
    target = tmp_path / "missing" / "x.csv"
    res = cli("compare", "--split", "dev", "--bootstrap", "20", "--csv", str(target))
    assert res.code == 2 and f"error: --csv {target}: cannot write" in res.err and "or --csv - for" in res.err


# -- the command line ---------------------------------------------------------------------------------------


def test_cli_tables_json_and_csv(three, cli, tmp_path: Path) -> None:
    _, ids = three
    res = cli("compare", "--split", "dev", "--bootstrap", "200")
    assert res.code == 0, res
    assert (
        "leaderboard (40 gold items" in res.out
        and "McNemar p" in res.out
        and "humans (alice, bob)" in res.out
    )
    assert f"run:{ids['perfect']} is more accurate than run:{ids['worse']}" in res.out
    pair_rows = [line for line in res.out.splitlines() if line.lstrip().startswith(f"run:{ids['perfect']}")]
    assert any(" * " in line for line in pair_rows)  # the significant difference is marked
    assert "stored as metric" in res.out
    res = cli(
        "compare",
        "--split",
        "dev",
        "--bootstrap",
        "50",
        "--seed",
        "3",
        "--json",
        "--runs",
        f"{ids['worse']},run:{ids['close']}",
    )
    assert res.code == 0, res
    data = json.loads(res.out)
    assert data["seed"] == 3 and [r["run_id"] for r in data["runs"]] == [ids["worse"], ids["close"]]
    assert len(data["comparisons"]) == 1
    res = cli("compare", "--split", "dev", "--bootstrap", "50", "--csv", "-")
    assert res.code == 0, res
    rows = list(csv.DictReader(io.StringIO(res.out)))
    assert [int(r["run_id"]) for r in rows] == [ids["perfect"], ids["worse"], ids["close"]]
    assert float(rows[1]["accuracy"]) == pytest.approx(33 / N) and rows[0]["rank"] == "1"
    target = tmp_path / "board.csv"
    res = cli("compare", "--split", "dev", "--bootstrap", "50", "--csv", str(target), "--sort", "accuracy")
    assert res.code == 0, res
    assert f"wrote {target}" in res.out and len(target.read_text().splitlines()) == 4


def test_cli_prompts(humans, cli) -> None:
    copy_run(humans, KEYS, WORSE, tag="v1", prompt="sentiment/zero-shot.v1")
    copy_run(humans, KEYS, GOLD, tag="v2", prompt="sentiment/zero-shot.v2")
    res = cli("compare", "--prompts", "--bootstrap", "50")
    assert res.code == 0, res
    assert "sentiment/zero-shot: versions (40 gold items" in res.out
    assert "diff sentiment/zero-shot.v1 -> sentiment/zero-shot.v2:" in res.out
    assert "--- sentiment/zero-shot.v1" in res.out and "+++ sentiment/zero-shot.v2" in res.out
    res = cli("compare", "--prompts", "--bootstrap", "20", "--csv", "-")
    rows = list(csv.DictReader(io.StringIO(res.out)))
    assert res.code == 0 and {r["prompt_group"] for r in rows} == {"sentiment/zero-shot"} and len(rows) == 2


def test_cli_errors_are_one_line_exit_2(three, cli, tmp_path: Path) -> None:
    _, ids = three
    for args, needle in (
        (("--runs", f"{ids['perfect']},999"), "999 (no such run)"),
        (("--runs", "x"), "--runs: 'x' is not a run id"),
        (("--json", "--csv", "-"), "--json and --csv -"),
        (("--gold", "nobody"), "no coder of that name"),
        (("--csv", str(tmp_path / "missing" / "dir" / "x.csv")), "cannot write"),
    ):
        res = cli("compare", "--split", "dev", "--bootstrap", "20", *args)
        assert res.code == 2, (args, res)
        assert res.err.startswith("error: ") and needle in res.err and len(res.err.strip().splitlines()) == 1
