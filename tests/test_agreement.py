"""`annotator agreement` on real temp projects: example crowd, imported coders, and a scripted LLM run."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pytest
from sqlmodel import col, select

from annotator.data.corpus import import_codes, import_documents
from annotator.data.example import import_example
from annotator.errors import AnnotatorError
from annotator.llm.spec import RunRequest
from annotator.services import run as runner
from annotator.services.agreement import Agreement, agreement, load_codes
from annotator.services.results import SCHEMAS
from annotator.stats.agreement import (
    VERDICTS,
    CoderEntry,
    Comparison,
    Humans,
    Pairwise,
    RunEntry,
    Stability,
    Verdict,
    Yardstick,
)
from annotator.stats.reliability import cohen_kappa, krippendorff_alpha
from annotator.store.models import Document, Metric
from tests.conftest import copy_run, import_docs, scripted_run, word_texts, write
from tests.scripted_server import ScriptedServer

pytestmark = pytest.mark.both_databases

KEYS = [f"d{i:02d}" for i in range(20)]
# alice and bob agree on most documents; carol is noisier; neutral is the codebook's uncertain label
ALICE = ["positive" if i % 3 else "negative" for i in range(20)]
BOB = [
    a if i not in (4, 11) else ("negative" if a == "positive" else "positive") for i, a in enumerate(ALICE)
]
CAROL = [a if i % 5 else "neutral" for i, a in enumerate(ALICE)]


def _import_coder(
    project, tmp_path: Path, name: str, labels: Sequence[str | None], kind: str = "human"
) -> None:
    rows = "".join(f"{k},{lab}\n" for k, lab in zip(KEYS, labels, strict=True) if lab is not None)
    import_codes(project, write(tmp_path / f"{name}.csv", "id,label\n" + rows), coder=name, kind=kind)


@pytest.fixture
def docs(project, tmp_path: Path) -> dict[str, str]:
    """Twenty documents in dev, each with a unique word (so a scripted model can copy a coder)."""
    return import_docs(project, tmp_path, word_texts(KEYS))


@pytest.fixture
def coded(project, docs, tmp_path: Path):
    _import_coder(project, tmp_path, "alice", ALICE)
    _import_coder(project, tmp_path, "bob", BOB)
    _import_coder(project, tmp_path, "carol", CAROL)
    return project


def test_example_crowd_alpha_is_finite_and_sensible(project) -> None:
    import_example(project, n=120, raters=5)
    result = agreement(project, split="all", n_boot=200, seed=1)
    h = result.humans
    assert h["coders"] == [f"crowd-{k}" for k in range(1, 6)]  # gold coder 'critics' not unless named
    a = h["alpha"]
    assert a["estimate"] is not None and 0.2 < a["estimate"] < 0.95
    assert a["low"] <= a["estimate"] <= a["high"] and a["high"] - a["low"] < 0.4
    assert h["n_units"] > 50 and 0 < (h["percent_agreement"] or 0) < 1
    assert h["fleiss_kappa"] is not None and h["gwet_ac1"] is not None
    # same seed, same interval; the neutral ratings are missing by default
    again = agreement(project, split="all", n_boot=200, seed=1)
    assert again.humans["alpha"] == a
    assert (
        result.uncertain == "missing" and "uncertain ('neutral') treated as missing" in result.uncertain_note
    )


def test_llm_run_against_humans_and_majority(coded) -> None:
    run_id = copy_run(coded, KEYS, ALICE)
    result = agreement(coded, n_boot=300, seed=0, min_units=5)
    assert [r["coder"] for r in result.runs] == [f"run:{run_id}"]
    run = result.runs[0]
    assert run["model"] == "openai-compatible/scripted" and run["n_codes"] == 20 and run["n_asked"] == 20
    # a run that copies alice exactly: kappa 1 with alice, below 1 with bob
    assert run["by_human"]["alice"]["kappa"] == pytest.approx(1.0)
    assert run["by_human"]["alice"]["alpha"] == pytest.approx(1.0)
    assert (run["by_human"]["bob"]["kappa"] or 1) < 0.9 and run["by_human"]["bob"]["n_units"] == 20
    # the human majority (alice, bob, carol) equals alice on every untied unit
    km = run["kappa_vs_majority"]
    assert km["estimate"] == pytest.approx(1.0) and km["n_units"] + km["n_ties_left_out"] == 20
    assert km["n_ties_left_out"] == 0
    assert run["alpha_vs_majority"]["estimate"] == pytest.approx(1.0)
    assert run["alpha_vs_majority"]["n_units"] == 20 and run["alpha_vs_majority"]["pairable_values"] == 40
    pooled = run["pooled_alpha"]
    assert pooled["label"] == "reliability of the humans with the run added"
    assert pooled["with_run"]["estimate"] > pooled["humans_only"]["estimate"]
    assert pooled["difference"]["estimate"] == pytest.approx(
        pooled["with_run"]["estimate"] - pooled["humans_only"]["estimate"], abs=1e-5
    )
    # the yardstick line names the verdict, both figures and the difference
    line = run["yardstick"]["line"]
    assert line.startswith(f"run:{run_id} vs humans on the 20 units it coded: ") and "vs human-human" in line
    assert run["yardstick"]["verdict"] == "at the human level"
    assert result.yardstick_rule.startswith("yardstick: ") and result.margin == 0.05
    # the point estimates agree with the tested reliability functions
    m = _matrix(coded)
    i, j = m.names.index("alice"), m.names.index("bob")
    assert run["by_human"]["bob"]["kappa"] == pytest.approx(cohen_kappa(m.codes[j], m.codes[-1]), abs=1e-6)
    assert result.humans["alpha"]["estimate"] == pytest.approx(
        krippendorff_alpha(m.codes[[i, j, m.names.index("carol")]]), abs=1e-6
    )


def _matrix(project, **kw):
    with project.transaction() as s:
        return load_codes(s, "sentiment", "dev", **kw)


def test_batched_kappa_replicates_match_scikit_learn(coded) -> None:
    from annotator.services.agreement import _Stats

    m = _matrix(coded)
    stats = _Stats(m.codes, len(m.categories), "nominal", m.values, n_boot=5, seed=3, min_units=1)
    _, reps, _ = stats.kappa(m.codes[0], m.codes[1])
    idx = np.random.default_rng(3).integers(0, m.codes.shape[1], size=(5, m.codes.shape[1]))
    expected = [cohen_kappa(m.codes[0][row], m.codes[1][row], n_categories=len(m.categories)) for row in idx]
    np.testing.assert_allclose(reps, expected, atol=1e-9)


def test_a_far_worse_run_is_below_the_human_level(coded) -> None:
    flipped = ["negative" if (i % 2) else "positive" for i in range(20)]
    run_id = copy_run(coded, KEYS, flipped)
    run = agreement(coded, n_boot=300, min_units=5).runs[0]
    assert run["coder"] == f"run:{run_id}" and run["yardstick"]["verdict"] == "below the human level"
    assert "below the human level" in run["yardstick"]["line"]
    assert run["yardstick"]["difference"]["high"] < -0.05


def test_repeats_are_coders_and_stability_is_reported(coded) -> None:
    run_id = copy_run(coded, KEYS, ALICE, repeats=2)
    result = agreement(coded, n_boot=100, min_units=5)
    assert [r["coder"] for r in result.runs] == [f"run:{run_id}", f"run:{run_id}#1"]
    (st,) = result.stability
    assert st["run_id"] == run_id and st["coders"] == [f"run:{run_id}", f"run:{run_id}#1"]
    assert st["alpha"]["estimate"] == pytest.approx(1.0)  # the scripted model answers the same each time


def test_uncertain_handling_changes_n(coded) -> None:
    missing = agreement(coded, coders=["alice", "carol"], n_boot=50, min_units=5)
    category = agreement(coded, coders=["alice", "carol"], n_boot=50, uncertain_as_category=True, min_units=5)
    # carol's 4 neutral codes: missing by default (16 pairable units), a category with the flag (20)
    assert missing.humans["n_units"] == 16 and category.humans["n_units"] == 20
    assert missing.humans["alpha"]["estimate"] == pytest.approx(1.0)
    assert category.humans["alpha"]["estimate"] < 1.0
    assert category.uncertain == "category" and "('neutral') treated as category" in category.uncertain_note
    assert "neutral" in category.categories and "neutral" not in missing.categories


def test_edge_cases_report_reasons(project, docs, tmp_path: Path) -> None:
    # one coder
    _import_coder(project, tmp_path, "alice", ALICE)
    one = agreement(project, n_boot=20)
    assert one.humans["alpha"]["estimate"] is None and "only one reference coder" in str(one.humans["reason"])
    # no unit coded by two coders
    half = [lab if i >= 10 else None for i, lab in enumerate(ALICE)]
    _import_coder(project, tmp_path, "erin", half)
    first = [lab if i < 10 else None for i, lab in enumerate(ALICE)]
    _import_coder(project, tmp_path, "frank", first)
    none_paired = agreement(project, coders=["erin", "frank"], n_boot=20)
    assert none_paired.humans["alpha"]["estimate"] is None
    assert "no unit was coded by two" in str(none_paired.humans["reason"])
    assert none_paired.humans["mean_pairwise_kappa"]["estimate"] is None
    # every label identical
    _import_coder(project, tmp_path, "gus", ["positive"] * 20)
    _import_coder(project, tmp_path, "hal", ["positive"] * 20)
    same = agreement(project, coders=["gus", "hal"], n_boot=20, min_units=5)
    assert same.humans["alpha"]["estimate"] is None and "no variation" in str(same.humans["reason"])
    assert same.humans["percent_agreement"] == 1.0


def test_no_human_coders_and_unknown_names(coded) -> None:
    run_id = copy_run(coded, KEYS, ALICE)
    only_run = agreement(coded, coders=[f"run:{run_id}"], n_boot=20)
    assert "no human coders" in str(only_run.humans["reason"])
    run = only_run.runs[0]
    assert (
        run["kappa_vs_majority"]["estimate"] is None
        and "no human coders" in run["kappa_vs_majority"]["reason"]
    )
    assert run["yardstick"]["verdict"] == "undetermined" and "no human coders" in run["yardstick"]["line"]
    with pytest.raises(AnnotatorError, match="from: zed"):
        agreement(coded, coders=["alice", "zed"])
    with pytest.raises(AnnotatorError, match="assign splits first"):
        agreement(coded, split="test")


def test_gold_only_when_named(project) -> None:
    import_example(project, n=60, raters=3)
    default = agreement(project, split="all", n_boot=20)
    assert "critics" not in [c["name"] for c in default.coders]
    named = agreement(project, split="all", coders=["critics", "crowd-1"], n_boot=20)
    assert named.humans["coders"] == ["critics", "crowd-1"]
    assert named.humans["alpha"]["estimate"] is not None


def test_result_lands_in_metrics_table(coded) -> None:
    result = agreement(coded, n_boot=50, seed=7, min_units=10, margin=0.1)
    with coded.transaction() as s:
        rows = s.exec(select(Metric).where(col(Metric.kind) == "agreement")).all()
    assert len(rows) == 1 and rows[0].id == result.metric_id and rows[0].split == "dev"
    assert rows[0].params["seed"] == 7 and rows[0].params["n_boot"] == 50
    assert rows[0].params["level"] == "nominal" and rows[0].params["uncertain"] == "missing"
    assert rows[0].params["min_units"] == 10 and rows[0].params["margin"] == 0.1
    stored = rows[0].result
    assert stored["humans"]["alpha"] == result.humans["alpha"] and stored["kappa_weights"] is None
    assert stored["min_units"] == 10 and stored["margin"] == 0.1 and "-0.1" in stored["yardstick_rule"]


AGREEMENT_KEYS = [  # `agreement --json` before the result was typed: the same keys, in the same order
    "codebook",
    "codebook_versions",
    "split",
    "level",
    "values",
    "values_given",
    "kappa_weights",
    "categories",
    "uncertain",
    "invalid",
    "uncertain_label",
    "uncertain_note",
    "n_boot",
    "seed",
    "ci",
    "min_units",
    "margin",
    "n_units",
    "coders",
    "unused_gold",
    "humans",
    "runs",
    "stability",
    "comparisons",
    "pairwise",
    "yardstick_rule",
    "notes",
    "metric_id",
]


def test_agreement_is_typed_and_its_json_is_what_is_stored_and_printed(coded, cli) -> None:
    good = copy_run(coded, KEYS, ALICE, repeats=2)
    copy_run(coded, KEYS, RANDOM, tag="random")
    result = agreement(coded, n_boot=50, min_units=5)
    assert isinstance(result, Agreement) and dataclasses.is_dataclass(result)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.seed = 1  # type: ignore[misc]
    data = result.to_json()
    assert list(data) == AGREEMENT_KEYS
    assert json.loads(json.dumps(data)) == data  # JSON-ready as it is: no tuples, NaN or numpy numbers
    # each record has its TypedDict's keys, in their order
    assert [list(c) for c in result.coders] == [list(CoderEntry.__annotations__)] * len(result.coders)
    assert list(result.humans) == list(Humans.__annotations__)
    assert {tuple(r) for r in result.runs} == {tuple(RunEntry.__annotations__)}
    assert {tuple(r["yardstick"]) for r in result.runs} == {tuple(Yardstick.__annotations__)}
    assert {r["yardstick"]["verdict"] for r in result.runs} <= set(VERDICTS) == set(get_args(Verdict))
    assert [list(st) for st in result.stability] == [list(Stability.__annotations__)]
    assert result.stability[0]["run_id"] == good
    assert {tuple(c) for c in result.comparisons} == {tuple(Comparison.__annotations__)}
    assert list(result.pairwise) == list(Pairwise.__annotations__)
    # the stored row is the result less metric_id, with its schema
    with coded.transaction() as s:
        row = s.get(Metric, result.metric_id)
        assert row is not None
        stored = row.result
    assert stored == {k: v for k, v in data.items() if k != "metric_id"} | {"schema": SCHEMAS["agreement"]}
    assert list(stored) == [*AGREEMENT_KEYS[:-1], "schema"]
    printed = json.loads(cli("agreement", "--json", "--bootstrap", "50", "--min-units", "5").out)
    assert list(printed) == AGREEMENT_KEYS and printed["metric_id"] == result.metric_id + 1
    assert printed | {"metric_id": result.metric_id} == data


def test_errors_name_the_parameter_as_each_caller_spelled_it(coded, cli) -> None:
    """The service names its own parameters (``level='fuzzy'``); the CLI prints the flag the user typed."""
    good = copy_run(coded, KEYS, ALICE)
    cases: list[tuple[dict[str, Any], str, list[str], str]] = [
        ({"level": "fuzzy"}, "level='fuzzy': use one of", ["--level", "fuzzy"], "--level fuzzy: use one of"),
        (
            {"min_units": 0},
            "min_units=0: use 1 or more",
            ["--min-units", "0"],
            "--min-units 0: use 1 or more",
        ),
        ({"margin": 1.5}, "margin=1.5: use a kappa", ["--margin", "1.5"], "--margin 1.5: use a kappa"),
        (
            {"level": "ordinal"},
            "use level='nominal', or make the codebook kind: ordinal",
            ["--level", "ordinal"],
            "use --level nominal, or make the codebook kind: ordinal",
        ),
        (
            {"compare": [f"run:{good}", "run:999"]},
            f"compare=['run:{good}', 'run:999']: unknown coder run:999",
            ["--compare", f"run:{good},run:999"],
            f"--compare run:{good},run:999: unknown coder run:999",
        ),
        (
            {"compare": [f"run:{good}"]},
            f"compare=['run:{good}']: name two different coders",
            ["--compare", f"run:{good}"],
            f"--compare run:{good}: name two different coders",
        ),
    ]
    for kwargs, python, argv, flag in cases:
        with pytest.raises(AnnotatorError) as raised:
            agreement(coded, n_boot=20, **kwargs)
        assert python in str(raised.value) and "--" not in str(raised.value), kwargs
        bad = cli("agreement", "--bootstrap", "20", *argv)
        assert bad.code == 2 and flag in bad.err and python.split("=")[0] + "=" not in bad.err, bad


def test_cli_json_and_tables(coded, cli) -> None:
    run_id = copy_run(coded, KEYS, ALICE)
    res = cli("agreement", "--json", "--bootstrap", "100", "--seed", "2")
    assert res.code == 0, res
    data = json.loads(res.out)
    assert data["seed"] == 2 and data["runs"][0]["coder"] == f"run:{run_id}"
    assert not any(isinstance(v, float) and math.isnan(v) for v in data["humans"].values())
    res = cli("agreement", "--bootstrap", "100", "--coders", f"alice,bob,run:{run_id}")
    assert res.code == 0, res
    assert "human-human" in res.out and f"run:{run_id} vs humans" in res.out
    assert "too few units (20)" in res.out and "yardstick: " in res.out  # 20 units < the default 30
    res = cli("agreement", "--bootstrap", "100", "--min-units", "10", "--margin", "0.1")
    assert res.code == 0, res
    assert "too few units" not in res.out and "(n=20)" in res.out and "-0.1" in res.out
    assert "uncertain ('neutral') treated as missing" in res.out
    bad = cli("agreement", "--coders", "nobody")
    assert bad.code == 2 and bad.err.startswith("error: ") and len(bad.err.strip().splitlines()) == 1
    bad = cli("agreement", "--level", "fuzzy")
    assert bad.code == 2 and "--level" in bad.err
    bad = cli("agreement", "--level", "ordinal", "--uncertain-as-category")
    assert bad.code == 2 and "nominal" in bad.err


# -- comparisons of runs with one another (paired bootstrap on the shared draws) ----------------------------

RANDOM = [str(x) for x in np.random.default_rng(5).choice(["positive", "negative"], size=20)]


def test_a_copy_of_a_human_agrees_more_than_a_random_run(coded) -> None:
    good = copy_run(coded, KEYS, ALICE)
    bad = copy_run(coded, KEYS, RANDOM, tag="random")
    result = agreement(coded, n_boot=500, seed=0, min_units=5)
    (cmp,) = result.comparisons
    assert (cmp["a"], cmp["b"]) == (f"run:{good}", f"run:{bad}") and cmp["n_units"] == 20
    by_run = {r["coder"]: r["mean_kappa_vs_humans"]["estimate"] for r in result.runs}
    d = cmp["difference"]
    # every run coded every unit, so the difference is that of the runs' own mean kappas
    assert d["estimate"] == pytest.approx(by_run[f"run:{good}"] - by_run[f"run:{bad}"], abs=1e-5)
    assert d["estimate"] > 0 and d["low"] > 0 and d["low"] <= d["estimate"] <= d["high"]
    assert cmp["share_le_zero"] is not None and cmp["share_le_zero"] < 0.025
    assert cmp["verdict"] == f"run:{good} agrees more with the humans than run:{bad}"
    # the other way round (--compare B,A): less
    rev = agreement(coded, n_boot=500, seed=0, compare=[f"run:{bad}", f"run:{good}"], min_units=5).comparisons
    assert len(rev) == 1 and rev[0]["difference"]["estimate"] == pytest.approx(-d["estimate"])
    assert rev[0]["verdict"] == f"run:{bad} agrees less with the humans than run:{good}"
    assert (rev[0]["share_le_zero"] or 0) > 0.975


def test_a_run_compared_with_its_copy_shows_no_difference(coded) -> None:
    first = copy_run(coded, KEYS, ALICE)
    copy = copy_run(coded, KEYS, ALICE, tag="copy")
    assert copy != first
    (cmp,) = agreement(coded, n_boot=200, min_units=5).comparisons
    d = cmp["difference"]
    assert (d["estimate"], d["low"], d["high"], d["n_units"]) == (0.0, 0.0, 0.0, 20)
    assert cmp["share_le_zero"] == 1.0
    assert cmp["verdict"].startswith("no clear difference")


def test_comparisons_need_two_runs_and_include_repeats(coded) -> None:
    assert agreement(coded, n_boot=20).comparisons == []
    run_id = copy_run(coded, KEYS, ALICE, repeats=2)
    (cmp,) = agreement(coded, n_boot=50, min_units=5).comparisons
    assert (cmp["a"], cmp["b"]) == (f"run:{run_id}", f"run:{run_id}#1")
    assert cmp["verdict"].startswith("no clear difference")


def test_cli_compare_prints_table_and_refuses_unknown_names(coded, cli) -> None:
    good = copy_run(coded, KEYS, ALICE)
    bad = copy_run(coded, KEYS, RANDOM, tag="random")
    third = copy_run(coded, KEYS, BOB, tag="bob")
    res = cli("agreement", "--json", "--bootstrap", "200")
    assert res.code == 0, res
    assert len(json.loads(res.out)["comparisons"]) == 3  # every pair of the three runs
    res = cli("agreement", "--bootstrap", "200", "--min-units", "5", "--compare", f"run:{good},run:{bad}")
    assert res.code == 0, res
    assert "runs compared" in res.out
    assert f"run:{good} agrees more with the humans than run:{bad}" in res.out
    data = json.loads(
        cli("agreement", "--json", "--bootstrap", "200", "--compare", f"run:{good},run:{bad}").out
    )
    assert [(c["a"], c["b"]) for c in data["comparisons"]] == [(f"run:{good}", f"run:{bad}")]
    bad_res = cli("agreement", "--compare", f"run:{good},run:999")
    assert bad_res.code == 2 and bad_res.err.startswith("error: ")
    assert len(bad_res.err.strip().splitlines()) == 1
    assert "run:999" in bad_res.err and f"run:{good}, run:{bad}, run:{third}" in bad_res.err
    one = cli("agreement", "--compare", f"run:{good}")
    assert one.code == 2 and "two different coders" in one.err
    with pytest.raises(AnnotatorError, match="available coders"):
        agreement(coded, compare=["alice", f"run:{good}"])


def test_invalid_answers_are_missing_by_default_or_a_category_when_asked(project, tmp_path) -> None:
    """An LLM's invalid answers: missing unless --invalid-as-category makes them one more category."""
    from annotator.data.corpus import import_documents as _docs
    from tests.scripted_server import Label

    _docs(
        project,
        write(tmp_path / "inv.csv", "id,text\n" + "".join(f"i{i},item {i} text\n" for i in range(12))),
    )
    with project.transaction() as s:
        for d in s.exec(select(Document)).all():
            d.split = "dev"
            s.add(d)
    import_codes(
        project,
        write(
            tmp_path / "h.csv",
            "id,coder,label\n"
            + "".join(
                f"i{i},{c},{'positive' if i % 2 else 'negative'}\n" for i in range(12) for c in ("ann", "ben")
            ),
        ),
        coder_column="coder",
    )
    with ScriptedServer(label_for=lambda t: "positive" if int(t.split()[1]) % 2 else "negative") as server:
        server.script([Label("ecstatic")] * 2, text_contains="item 3 ")
        server.script([Label("ecstatic")] * 2, text_contains="Input should be")
        out = runner.label(
            project,
            RunRequest(
                prompt="sentiment/zero-shot.v1",
                model="openai-compatible/s",
                base_url=server.base_url,
                split="dev",
                reasks=1,
            ),
        )
    run = f"run:{out.run_id}"
    default = agreement(project, split="dev", n_boot=20, min_units=5)
    as_category = agreement(project, split="dev", n_boot=20, invalid_as_category=True, min_units=5)
    assert default.invalid == "missing" and as_category.invalid == "category"
    assert "invalid answers treated as missing" in default.uncertain_note
    assert "(invalid)" in as_category.categories and "(invalid)" not in default.categories
    first = next(r for r in default.runs if r["coder"] == run)
    second = next(r for r in as_category.runs if r["coder"] == run)
    assert first["kappa_vs_majority"]["estimate"] == 1.0  # the invalid answer is left out
    assert second["kappa_vs_majority"]["estimate"] < 1.0  # now it disagrees with the humans
    assert first["n_invalid"] == 1 and first["n_asked"] == 12 and first["kappa_vs_majority"]["n_units"] == 11
    assert any("invalid answers are left out" in n for n in default.notes)


# -- the coverage rule: a run is measured against the humans on the units it coded -----------------------------


def _corpus(project, tmp_path: Path, n: int, dev: set[int] | None = None) -> None:
    """``n`` documents 'item i text' (i = 0..n-1); those in ``dev`` (default: all) on the dev split, the rest
    on test, so that a run on the dev split is asked exactly those."""
    rows = "".join(f"t{i},item {i} text\n" for i in range(n))
    import_documents(project, write(tmp_path / "docs.csv", "id,text\n" + rows))
    with project.transaction() as s:
        for d in s.exec(select(Document)).all():
            d.split = "dev" if dev is None or int(d.doc_key[1:]) in dev else "test"
            s.add(d)


def _humans(project, tmp_path: Path, coders: dict[str, dict[int, str]], kind: str = "human") -> None:
    rows = "".join(f"t{i},{name},{lab}\n" for name, codes in coders.items() for i, lab in codes.items())
    path = write(tmp_path / f"codes-{'-'.join(coders)}.csv", "id,coder,label\n" + rows)
    if kind == "human":
        import_codes(project, path, coder_column="coder")
    else:
        for name in coders:  # one coder per call, so the kind applies
            import_codes(project, _one(tmp_path, name, coders[name]), coder=name, kind=kind)


def _one(tmp_path: Path, name: str, codes: dict[int, str]) -> Path:
    return write(
        tmp_path / f"{name}.csv", "id,label\n" + "".join(f"t{i},{lab}\n" for i, lab in codes.items())
    )


def _by_item(labels: dict[int, str] | list[str]):
    """A scripted model's answers: the label listed for 'item i'."""
    table = dict(enumerate(labels)) if isinstance(labels, list) else labels
    return lambda text: table[int(text.split("item ")[1].split()[0])]


def _truthful(n: int, n_coders: int, n_errors: int, worse: set[int] | None = None) -> list[list[str]]:
    """Codes of ``n_coders`` equally good coders: truth alternates, and each coder flips its own disjoint
    ``n_errors`` units (so every pair disagrees on the same number of units); the last coder also flips
    ``worse``."""
    truth = ["positive" if i % 2 else "negative" for i in range(n)]
    flip = {"positive": "negative", "negative": "positive"}
    out = []
    for c in range(n_coders):
        wrong = {c + n_coders * j for j in range(n_errors)} | (worse or set() if c == n_coders - 1 else set())
        out.append([flip[t] if i in wrong else t for i, t in enumerate(truth)])
    return out


def test_degenerate_runs_do_not_agree_beside_15_agreeing_humans(project) -> None:
    """Issue 10: a one-label run and a chance-level run got pooled alpha ~0.84 beside 15 crowd coders."""
    import hashlib

    import_example(project, n=120, raters=15)
    one = scripted_run(project, lambda t: "positive", split="all").run_id
    coin = scripted_run(
        project,
        lambda t: "positive" if hashlib.sha256(t.encode()).digest()[0] % 2 else "negative",
        split="all",
        tag="coin",
    ).run_id
    result = agreement(project, split="all", n_boot=200, seed=0)
    assert result.humans["alpha"]["estimate"] > 0.7  # the crowd agrees with itself
    for run_id in (one, coin):
        (run,) = [r for r in result.runs if r["run_id"] == run_id]
        assert run["n_asked"] == run["n_units"] == 120
        assert run["alpha_vs_majority"]["estimate"] <= 0.1
        assert run["kappa_vs_majority"]["estimate"] <= 0.1
        assert run["mean_alpha_vs_humans"]["estimate"] <= 0.1
        assert run["mean_kappa_vs_humans"]["estimate"] <= 0.1
        assert run["mean_alpha_vs_humans"]["n_pairs"] == 15
        # the pooled figure still looks good, so it is shown only under its own name, beside the humans
        pooled = run["pooled_alpha"]
        assert pooled["with_run"]["estimate"] > 0.6
        assert pooled["difference"]["estimate"] < 0 and pooled["humans_only"]["n_units"] == 120
        assert run["yardstick"]["verdict"] == "below the human level"
        for old in ("alpha_with_humans", "difference_vs_human_level", "human_mean_pairwise_kappa"):
            assert old not in run


def test_n_follows_the_asked_sets_and_small_overlaps_are_too_few(project, tmp_path: Path, cli) -> None:
    """Two humans on 200 documents with 40 in common; a run asked 30 of those (the dev split)."""
    truth = ["positive" if i % 3 else "negative" for i in range(200)]
    ann = {i: truth[i] for i in range(120)}
    # ben disagrees with ann on 5 of the run's units, so the human majority ties there
    flip = {"positive": "negative", "negative": "positive"}
    ben = {i: flip[truth[i]] if i in {81, 84, 87, 90, 93} else truth[i] for i in range(80, 200)}
    _corpus(project, tmp_path, 200, dev=set(range(80, 110)))
    _humans(project, tmp_path, {"ann": ann, "ben": ben})
    run_id = scripted_run(project, _by_item(truth)).run_id
    result = agreement(project, split="all", n_boot=200)
    h = result.humans
    assert h["n_units"] == 40 and h["alpha"]["n_units"] == 40 and h["alpha"]["estimate"] is not None
    assert h["mean_pairwise_kappa"]["n_units"] == 40
    (run,) = result.runs
    assert run["run_id"] == run_id and run["n_asked"] == 30 and run["n_units"] == 30 and run["n_codes"] == 30
    # ties: 5 of the run's 30 units have no majority, leaving 25 < 30
    km, am = run["kappa_vs_majority"], run["alpha_vs_majority"]
    assert km["n_ties_left_out"] == 5 and km["n_units"] == 25 and am["n_units"] == 25
    for fig in (km, am):
        assert fig["estimate"] is None and fig["reason"].startswith("too few units (25")
    # each human coded all 30 of the run's units, whatever else they coded
    assert {name: d["n_units"] for name, d in run["by_human"].items()} == {"ann": 30, "ben": 30}
    mk = run["mean_kappa_vs_humans"]
    assert mk["n_units"] == 30 and mk["n_pairs"] == 2 and mk["estimate"] is not None
    assert (
        run["pooled_alpha"]["with_run"]["n_units"] == 30
        and run["pooled_alpha"]["humans_only"]["n_units"] == 30
    )
    assert run["yardstick"]["n_units"] == 30 and run["yardstick"]["human_kappa"]["n_units"] == 30
    assert result.pairwise["n_units"][0][1] == 40
    # with 31 the run's pairs are too few as well
    strict = agreement(project, split="all", n_boot=50, min_units=31).runs[0]
    assert strict["mean_kappa_vs_humans"]["estimate"] is None
    assert strict["mean_kappa_vs_humans"]["reason"].startswith("too few units (30")
    assert (
        strict["yardstick"]["verdict"] == "inconclusive"
        and "inconclusive (30 units)" in strict["yardstick"]["line"]
    )
    res = cli("agreement", "--split", "all", "--bootstrap", "100")
    assert res.code == 0, res
    assert "too few units (25)" in res.out and "(n=30)" in res.out and "(n=40)" in res.out


def test_yardstick_is_inconclusive_on_15_units(project, tmp_path: Path) -> None:
    """A run right 60% of the time beside humans right 90%: 15 units cannot tell (it used to 'reach' them)."""
    truth = ["positive" if i % 2 else "negative" for i in range(15)]
    flip = {"positive": "negative", "negative": "positive"}
    humans = {
        name: {i: flip[t] if i in {k, k + 5} else t for i, t in enumerate(truth)}
        for k, name in enumerate(["ann", "ben", "cat"])
    }
    _corpus(project, tmp_path, 15)
    _humans(project, tmp_path, humans)
    scripted_run(project, _by_item([flip[t] if i % 5 in (0, 1) else t for i, t in enumerate(truth)]))
    (run,) = agreement(project, n_boot=200).runs
    y = run["yardstick"]
    assert y["verdict"] == "inconclusive" and y["n_units"] == 15
    assert "inconclusive (15 units)" in y["line"] and "too few units" in y["line"]
    assert run["mean_kappa_vs_humans"]["estimate"] is None


def test_yardstick_below_for_a_clearly_worse_coder_at_200(project, tmp_path: Path) -> None:
    *humans, run = _truthful(200, 4, 5, worse={i for i in range(200) if i % 10 in (3, 6, 9)})
    _corpus(project, tmp_path, 200)
    _humans(project, tmp_path, {f"h{k}": dict(enumerate(c)) for k, c in enumerate(humans)})
    scripted_run(project, _by_item(run))
    result = agreement(project, n_boot=500)
    (entry,) = result.runs
    y = entry["yardstick"]
    assert y["verdict"] == "below the human level" and y["n_units"] == 200
    assert y["difference"]["high"] < -0.05 and y["margin"] == 0.05
    assert y["line"].startswith(
        f"{entry['coder']} vs humans on the 200 units it coded: below the human level"
    )


def test_yardstick_at_the_human_level_for_an_equally_good_coder(project, tmp_path: Path, cli) -> None:
    """Four coders, each wrong on its own 10 of 400 units: every pair disagrees on 20, so the run is exactly
    as good as the humans and the paired interval is narrow enough to say so."""
    *humans, run = _truthful(400, 4, 10)
    _corpus(project, tmp_path, 400)
    _humans(project, tmp_path, {f"h{k}": dict(enumerate(c)) for k, c in enumerate(humans)})
    scripted_run(project, _by_item(run))
    (entry,) = agreement(project, n_boot=500).runs
    y = entry["yardstick"]
    assert y["verdict"] == "at the human level"
    assert y["difference"]["estimate"] == pytest.approx(0.0, abs=1e-9) and y["difference"]["low"] > -0.05
    assert y["run_kappa"]["estimate"] == pytest.approx(y["human_kappa"]["estimate"])
    # a stricter margin makes the same data inconclusive, never 'below'
    strict = agreement(project, n_boot=500, margin=0.01).runs[0]["yardstick"]
    assert strict["verdict"] == "inconclusive" and "inconclusive (400 units)" in strict["line"]
    res = cli("agreement", "--bootstrap", "200")
    assert res.code == 0, res
    assert "yardstick: on the units the run coded" in res.out and "at the human level" in res.out


def test_two_units_of_perfect_agreement_flag_the_interval(project, tmp_path: Path, cli) -> None:
    _corpus(project, tmp_path, 2)
    _humans(project, tmp_path, {"ann": {0: "negative", 1: "positive"}, "ben": {0: "negative", 1: "positive"}})
    alpha = agreement(project, n_boot=400, min_units=1).humans["alpha"]
    assert alpha["estimate"] == 1.0 and alpha["n_units"] == 2
    assert alpha["unreliable"] is True and 0.3 < alpha["undefined_share"] < 0.7
    res = cli("agreement", "--min-units", "1", "--bootstrap", "400")
    assert res.code == 0, res
    assert "interval unreliable" in res.out
    default = agreement(project, n_boot=50).humans["alpha"]  # the default minimum: no number at all
    assert default["estimate"] is None and default["reason"].startswith("too few units (2")


def test_only_a_gold_coder_is_named_not_printed_as_nan(project, tmp_path: Path, cli) -> None:
    _corpus(project, tmp_path, 40)
    truth = ["positive" if i % 2 else "negative" for i in range(40)]
    _humans(project, tmp_path, {"critics": dict(enumerate(truth))}, kind="gold")
    run_id = scripted_run(project, _by_item(truth)).run_id
    result = agreement(project, n_boot=50)
    reason = str(result.humans["reason"])
    assert "no human coder here besides the gold coder critics" in reason and "--coders critics" in reason
    assert result.runs[0]["yardstick"]["verdict"] == "undetermined"
    res = cli("agreement", "--bootstrap", "50")
    assert res.code == 0, res
    assert "gold coder critics" in res.out and "Krippendorff" not in res.out
    named = agreement(project, n_boot=50, coders=["critics", f"run:{run_id}"])
    assert "only one reference coder (critics, gold)" in str(named.humans["reason"])
    (run,) = named.runs
    assert run["kappa_vs_majority"]["estimate"] == 1.0 and run["kappa_vs_majority"]["n_units"] == 40


# -- levels of measurement need the codebook to carry them ------------------------------------------------------

K2011 = [  # Krippendorff (2011), section C: 4 observers x 12 units, values 1..5, '' = missing
    "1 2 3 3 2 1 4 1 2 . . .",
    "1 2 3 3 2 2 4 1 2 5 . 3",
    ". 3 3 3 2 3 4 2 2 5 1 .",
    "1 2 3 3 2 4 4 1 2 5 1 .",
]


def _scale_codebook(project, name: str, with_values: bool, kind: str = "ordinal") -> None:
    labels = "".join(
        f'  - name: "{v}"\n    definition: point {v} of the scale.\n'
        + (f"    value: {v}\n" if with_values else "")
        for v in range(1, 6)
    )
    text = f"name: {name}\nversion: 1\ndescription: a five-point scale.\nkind: {kind}\nlabels:\n{labels}"
    write(project.root / "codebooks" / f"{name}.yaml", text)


def _k2011(project, tmp_path: Path, book: str) -> None:
    for c, line in enumerate(K2011):
        codes = {i: v for i, v in enumerate(line.split()) if v != "."}
        path = write(
            tmp_path / f"{book}-{c}.csv", "id,label\n" + "".join(f"t{i},{v}\n" for i, v in codes.items())
        )
        import_codes(project, path, coder=f"obs{c}", codebook=book)


def test_ratio_alpha_uses_label_values_and_is_refused_without_them(project, tmp_path: Path, cli) -> None:
    _corpus(project, tmp_path, 12)
    _scale_codebook(project, "scale", with_values=True)
    _k2011(project, tmp_path, "scale")
    expected = {"nominal": 0.743, "ordinal": 0.815, "interval": 0.849, "ratio": 0.797}
    for level, alpha in expected.items():
        result = agreement(project, codebook="scale", level=level, n_boot=20, min_units=1)
        assert round(result.humans["alpha"]["estimate"], 3) == alpha, level
    assert result.values == {str(v): float(v) for v in range(1, 6)} and result.values_given is True
    # the same codes under a codebook without values: ratio is refused, in one line
    _scale_codebook(project, "positions", with_values=False)
    _k2011(project, tmp_path, "positions")
    with pytest.raises(AnnotatorError, match="needs a numeric `value:` on every label") as refused:
        agreement(project, codebook="positions", level="ratio", n_boot=20, min_units=1)
    assert str(refused.value).startswith("level='ratio' needs") and "or use level='ordinal'" in str(
        refused.value
    )
    bad = cli("agreement", "--codebook", "positions", "--level", "ratio")
    assert bad.code == 2 and bad.err.startswith("error: ") and len(bad.err.strip().splitlines()) == 1
    assert "value:" in bad.err and "positions" in bad.err
    assert bad.err.startswith("error: --level ratio needs") and "or use --level ordinal" in bad.err
    # an ordered level cannot count invalid answers as a category
    with pytest.raises(AnnotatorError, match=r"invalid_as_category=True needs level='nominal'"):
        agreement(project, codebook="scale", level="ordinal", invalid_as_category=True, n_boot=20)
    bad = cli("agreement", "--codebook", "scale", "--level", "ordinal", "--invalid-as-category")
    assert bad.code == 2 and "error: --invalid-as-category needs --level nominal: invalid answers" in bad.err
    ordinal = agreement(project, codebook="positions", level="ordinal", n_boot=20, min_units=1)
    assert round(ordinal.humans["alpha"]["estimate"], 3) == 0.815  # order alone: positions suffice
    assert ordinal.values == {str(v): float(v - 1) for v in range(1, 6)}


def test_ordered_levels_are_refused_on_a_nominal_codebook(coded, cli) -> None:
    for level in ("ordinal", "interval", "ratio"):
        with pytest.raises(AnnotatorError, match="kind: nominal"):
            agreement(coded, level=level, n_boot=20)
    bad = cli("agreement", "--level", "interval")
    assert bad.code == 2 and "kind: nominal" in bad.err and len(bad.err.strip().splitlines()) == 1


def test_shipped_ordinal_example_documents_values(project, tmp_path: Path) -> None:
    import shutil

    from annotator.codebook import load_codebook
    from annotator.resources import example_codebooks_dir

    src = example_codebooks_dir() / "ordinal-example.yaml"
    book = load_codebook(src)
    assert book.kind == "ordinal" and all(label.value is not None for label in book.labels)
    assert "value:" in src.read_text(encoding="utf-8") and "--level ratio" in src.read_text(encoding="utf-8")
    shutil.copyfile(src, project.root / "codebooks" / "ordinal-example.yaml")
    _corpus(project, tmp_path, 40)
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 5, 40)
    names = [label.name for label in book.labels]
    for c in range(2):
        noisy = np.clip(truth + (rng.random(40) < 0.2) * rng.choice([-1, 1], 40), 0, 4)
        path = write(
            tmp_path / f"o{c}.csv", "id,label\n" + "".join(f"t{i},{names[v]}\n" for i, v in enumerate(noisy))
        )
        import_codes(project, path, coder=f"o{c}", codebook="ordinal-example")
    result = agreement(project, codebook="ordinal-example", level="ratio", n_boot=50)
    assert result.values == {"0": 0.0, "1": 1.0, "2": 2.0, "3": 3.0, "4+": 4.0}
    assert result.humans["alpha"]["estimate"] > 0.5 and result.kappa_weights == "quadratic"
