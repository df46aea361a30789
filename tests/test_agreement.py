"""`annotator agreement` on real temp projects: example crowd, imported coders, and a scripted LLM run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from sqlmodel import col, select

from annotator.corpus import import_codes, import_documents
from annotator.errors import AnnotatorError
from annotator.example import import_example
from annotator.llm import runner
from annotator.llm.spec import RunRequest
from annotator.metrics.agreement import agreement, load_codes
from annotator.metrics.reliability import cohen_kappa, krippendorff_alpha
from annotator.store.models import Document, Metric
from tests.conftest import label_by_word, scripted_run, write
from tests.scripted_server import ScriptedServer

KEYS = [f"d{i:02d}" for i in range(20)]
# alice and bob agree on most documents; carol is noisier; neutral is the codebook's uncertain label
ALICE = ["positive" if i % 3 else "negative" for i in range(20)]
BOB = [
    a if i not in (4, 11) else ("negative" if a == "positive" else "positive") for i, a in enumerate(ALICE)
]
CAROL = [a if i % 5 else "neutral" for i, a in enumerate(ALICE)]


def _import_coder(project, tmp_path: Path, name: str, labels: list[str | None], kind: str = "human") -> None:
    rows = "".join(f"{k},{lab}\n" for k, lab in zip(KEYS, labels, strict=True) if lab is not None)
    import_codes(project, write(tmp_path / f"{name}.csv", "id,label\n" + rows), coder=name, kind=kind)


@pytest.fixture
def docs(project, tmp_path: Path) -> dict[str, str]:
    """Twenty documents in dev, each with a unique word (so a scripted model can copy a coder)."""
    texts = {k: f"word{k} sentence about a film" for k in KEYS}
    rows = "".join(f'{k},"{t}"\n' for k, t in texts.items())
    import_documents(project, write(tmp_path / "docs.csv", "id,text\n" + rows))
    with project.transaction() as s:
        for d in s.exec(select(Document)).all():
            d.split = "dev"
            s.add(d)
    return texts


@pytest.fixture
def coded(project, docs, tmp_path: Path):
    _import_coder(project, tmp_path, "alice", ALICE)
    _import_coder(project, tmp_path, "bob", BOB)
    _import_coder(project, tmp_path, "carol", CAROL)
    return project


def _copy_of(labels: list[str]):
    return label_by_word({f"word{k}": lab for k, lab in zip(KEYS, labels, strict=True)})


def _llm_run(project, labels: list[str], repeats: int = 1, tag: str | None = None) -> int:
    """A scripted LLM run whose answers copy ``labels``; a ``tag`` makes an otherwise identical run separate."""
    outcome = scripted_run(project, _copy_of(labels), repeats=repeats, tag=tag)
    assert outcome.status == "done"
    return outcome.run_id


def test_example_crowd_alpha_is_finite_and_sensible(project) -> None:
    import_example(project, n=120, raters=5)
    result = agreement(project, split="all", n_boot=200, seed=1)
    h = result["humans"]
    assert h["coders"] == [f"crowd-{k}" for k in range(1, 6)]  # gold coder 'critics' not unless named
    a = h["alpha"]
    assert a["estimate"] is not None and 0.2 < a["estimate"] < 0.95
    assert a["low"] <= a["estimate"] <= a["high"] and a["high"] - a["low"] < 0.4
    assert h["n_units"] > 50 and 0 < h["percent_agreement"] < 1
    assert h["fleiss_kappa"] is not None and h["gwet_ac1"] is not None
    # same seed, same interval; the neutral ratings are missing by default
    again = agreement(project, split="all", n_boot=200, seed=1)
    assert again["humans"]["alpha"] == a
    assert (
        result["uncertain"] == "missing"
        and "uncertain ('neutral') treated as missing" in result["uncertain_note"]
    )


def test_llm_run_against_humans_and_majority(coded) -> None:
    run_id = _llm_run(coded, ALICE)
    result = agreement(coded, n_boot=300, seed=0)
    assert [r["coder"] for r in result["runs"]] == [f"run:{run_id}"]
    run = result["runs"][0]
    assert run["model"] == "openai-compatible/scripted" and run["n_codes"] == 20
    # a run that copies alice exactly: kappa 1 with alice, below 1 with bob
    assert run["kappa_by_human"]["alice"]["kappa"] == pytest.approx(1.0)
    assert run["kappa_by_human"]["bob"]["kappa"] < 0.9
    # the human majority (alice, bob, carol) equals alice on every untied unit
    km = run["kappa_vs_majority"]
    assert km["estimate"] == pytest.approx(1.0) and km["n_units"] + km["n_ties_left_out"] == 20
    assert km["n_ties_left_out"] == 0
    assert run["alpha_with_humans"]["estimate"] > result["humans"]["alpha"]["estimate"]
    # the yardstick line names the rule's verdict and both intervals
    line = run["yardstick"]["line"]
    assert line.startswith(f"run:{run_id} vs humans: kappa ") and "vs human-human" in line
    assert run["yardstick"]["verdict"] in {"reaches", "above"}
    # the point estimates agree with the tested reliability functions
    m = _matrix(coded)
    i, j = m.names.index("alice"), m.names.index("bob")
    assert run["kappa_by_human"]["bob"]["kappa"] == pytest.approx(
        cohen_kappa(m.codes[j], m.codes[-1]), abs=1e-6
    )
    assert result["humans"]["alpha"]["estimate"] == pytest.approx(
        krippendorff_alpha(m.codes[[i, j, m.names.index("carol")]]), abs=1e-6
    )


def _matrix(project, **kw):
    with project.transaction() as s:
        return load_codes(s, "sentiment", "dev", **kw)


def test_batched_kappa_replicates_match_scikit_learn(coded) -> None:
    from annotator.metrics.agreement import _Stats

    m = _matrix(coded)
    stats = _Stats(m, "nominal", n_boot=5, seed=3)
    _, reps, _ = stats.kappa(m.codes[0], m.codes[1])
    idx = np.random.default_rng(3).integers(0, m.codes.shape[1], size=(5, m.codes.shape[1]))
    expected = [cohen_kappa(m.codes[0][row], m.codes[1][row], n_categories=len(m.categories)) for row in idx]
    np.testing.assert_allclose(reps, expected, atol=1e-9)


def test_a_far_worse_run_is_below_the_human_level(coded) -> None:
    flipped = ["negative" if (i % 2) else "positive" for i in range(20)]
    run_id = _llm_run(coded, flipped)
    run = agreement(coded, n_boot=300)["runs"][0]
    assert run["coder"] == f"run:{run_id}" and run["yardstick"]["verdict"] == "below"
    assert "below the human level" in run["yardstick"]["line"]
    assert run["difference_vs_human_level"]["high"] < 0


def test_repeats_are_coders_and_stability_is_reported(coded) -> None:
    run_id = _llm_run(coded, ALICE, repeats=2)
    result = agreement(coded, n_boot=100)
    assert [r["coder"] for r in result["runs"]] == [f"run:{run_id}", f"run:{run_id}#1"]
    (st,) = result["stability"]
    assert st["run_id"] == run_id and st["coders"] == [f"run:{run_id}", f"run:{run_id}#1"]
    assert st["alpha"]["estimate"] == pytest.approx(1.0)  # the scripted model answers the same each time


def test_uncertain_handling_changes_n(coded) -> None:
    missing = agreement(coded, coders=["alice", "carol"], n_boot=50)
    category = agreement(coded, coders=["alice", "carol"], n_boot=50, uncertain_as_category=True)
    # carol's 4 neutral codes: missing by default (16 pairable units), a category with the flag (20)
    assert missing["humans"]["n_units"] == 16 and category["humans"]["n_units"] == 20
    assert missing["humans"]["alpha"]["estimate"] == pytest.approx(1.0)
    assert category["humans"]["alpha"]["estimate"] < 1.0
    assert (
        category["uncertain"] == "category"
        and "('neutral') treated as category" in category["uncertain_note"]
    )
    assert "neutral" in category["categories"] and "neutral" not in missing["categories"]


def test_edge_cases_report_reasons(project, docs, tmp_path: Path) -> None:
    # one coder
    _import_coder(project, tmp_path, "alice", ALICE)
    one = agreement(project, n_boot=20)
    assert one["humans"]["alpha"]["estimate"] is None and "one coder" in one["humans"]["reason"]
    # no unit coded by two coders
    half = [lab if i >= 10 else None for i, lab in enumerate(ALICE)]
    _import_coder(project, tmp_path, "erin", half)
    first = [lab if i < 10 else None for i, lab in enumerate(ALICE)]
    _import_coder(project, tmp_path, "frank", first)
    none_paired = agreement(project, coders=["erin", "frank"], n_boot=20)
    assert none_paired["humans"]["alpha"]["estimate"] is None
    assert "no unit was coded by two" in none_paired["humans"]["reason"]
    assert none_paired["humans"]["mean_pairwise_kappa"]["estimate"] is None
    # every label identical
    _import_coder(project, tmp_path, "gus", ["positive"] * 20)
    _import_coder(project, tmp_path, "hal", ["positive"] * 20)
    same = agreement(project, coders=["gus", "hal"], n_boot=20)
    assert same["humans"]["alpha"]["estimate"] is None and "no variation" in same["humans"]["reason"]
    assert same["humans"]["percent_agreement"] == 1.0


def test_no_human_coders_and_unknown_names(coded) -> None:
    run_id = _llm_run(coded, ALICE)
    only_run = agreement(coded, coders=[f"run:{run_id}"], n_boot=20)
    assert "no human coders" in only_run["humans"]["reason"]
    run = only_run["runs"][0]
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
    assert "critics" not in [c["name"] for c in default["coders"]]
    named = agreement(project, split="all", coders=["critics", "crowd-1"], n_boot=20)
    assert named["humans"]["coders"] == ["critics", "crowd-1"]
    assert named["humans"]["alpha"]["estimate"] is not None


def test_result_lands_in_metrics_table(coded) -> None:
    result = agreement(coded, n_boot=50, seed=7, level="ordinal")
    with coded.transaction() as s:
        rows = s.exec(select(Metric).where(col(Metric.kind) == "agreement")).all()
    assert len(rows) == 1 and rows[0].id == result["metric_id"] and rows[0].split == "dev"
    assert rows[0].params["seed"] == 7 and rows[0].params["n_boot"] == 50
    assert rows[0].params["level"] == "ordinal" and rows[0].params["uncertain"] == "missing"
    stored = rows[0].result
    assert stored["humans"]["alpha"] == result["humans"]["alpha"] and stored["kappa_weights"] == "linear"


def test_cli_json_and_tables(coded, cli) -> None:
    run_id = _llm_run(coded, ALICE)
    res = cli("agreement", "--json", "--bootstrap", "100", "--seed", "2")
    assert res.code == 0, res
    data = json.loads(res.out)
    assert data["seed"] == 2 and data["runs"][0]["coder"] == f"run:{run_id}"
    assert not any(isinstance(v, float) and math.isnan(v) for v in data["humans"].values())
    res = cli("agreement", "--bootstrap", "100", "--coders", f"alice,bob,run:{run_id}")
    assert res.code == 0, res
    assert "human-human" in res.out and f"run:{run_id} vs humans: kappa" in res.out
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
    good = _llm_run(coded, ALICE)
    bad = _llm_run(coded, RANDOM, tag="random")
    result = agreement(coded, n_boot=500, seed=0)
    (cmp,) = result["comparisons"]
    assert (cmp["a"], cmp["b"]) == (f"run:{good}", f"run:{bad}") and cmp["n_units"] == 20
    by_run = {r["coder"]: r["mean_kappa_vs_humans"]["estimate"] for r in result["runs"]}
    d = cmp["difference"]
    # every run coded every unit, so the difference is that of the runs' own mean kappas
    assert d["estimate"] == pytest.approx(by_run[f"run:{good}"] - by_run[f"run:{bad}"], abs=1e-5)
    assert d["estimate"] > 0 and d["low"] > 0 and d["low"] <= d["estimate"] <= d["high"]
    assert cmp["share_le_zero"] is not None and cmp["share_le_zero"] < 0.025
    assert cmp["verdict"] == f"run:{good} agrees more with the humans than run:{bad}"
    # the other way round (--compare B,A): less
    rev = agreement(coded, n_boot=500, seed=0, compare=[f"run:{bad}", f"run:{good}"])["comparisons"]
    assert len(rev) == 1 and rev[0]["difference"]["estimate"] == pytest.approx(-d["estimate"])
    assert rev[0]["verdict"] == f"run:{bad} agrees less with the humans than run:{good}"
    assert rev[0]["share_le_zero"] > 0.975


def test_a_run_compared_with_its_copy_shows_no_difference(coded) -> None:
    first = _llm_run(coded, ALICE)
    copy = _llm_run(coded, ALICE, tag="copy")
    assert copy != first
    (cmp,) = agreement(coded, n_boot=200)["comparisons"]
    assert cmp["difference"] == {"estimate": 0.0, "low": 0.0, "high": 0.0}
    assert cmp["share_le_zero"] == 1.0
    assert cmp["verdict"].startswith("no clear difference")


def test_comparisons_need_two_runs_and_include_repeats(coded) -> None:
    assert agreement(coded, n_boot=20)["comparisons"] == []
    run_id = _llm_run(coded, ALICE, repeats=2)
    (cmp,) = agreement(coded, n_boot=50)["comparisons"]
    assert (cmp["a"], cmp["b"]) == (f"run:{run_id}", f"run:{run_id}#1")
    assert cmp["verdict"].startswith("no clear difference")


def test_cli_compare_prints_table_and_refuses_unknown_names(coded, cli) -> None:
    good = _llm_run(coded, ALICE)
    bad = _llm_run(coded, RANDOM, tag="random")
    third = _llm_run(coded, BOB, tag="bob")
    res = cli("agreement", "--json", "--bootstrap", "200")
    assert res.code == 0, res
    assert len(json.loads(res.out)["comparisons"]) == 3  # every pair of the three runs
    res = cli("agreement", "--bootstrap", "200", "--compare", f"run:{good},run:{bad}")
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
    from annotator.corpus import import_documents as _docs
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
    default = agreement(project, split="dev", n_boot=20)
    as_category = agreement(project, split="dev", n_boot=20, invalid_as_category=True)
    assert default["invalid"] == "missing" and as_category["invalid"] == "category"
    assert "invalid answers treated as missing" in default["uncertain_note"]
    assert "(invalid)" in as_category["categories"] and "(invalid)" not in default["categories"]
    first = next(r for r in default["runs"] if r["coder"] == run)
    second = next(r for r in as_category["runs"] if r["coder"] == run)
    assert first["kappa_vs_majority"]["estimate"] == 1.0  # the invalid answer is left out
    assert second["kappa_vs_majority"]["estimate"] < 1.0  # now it disagrees with the humans
    with pytest.raises(AnnotatorError, match="--invalid-as-category needs --level nominal"):
        agreement(project, split="dev", n_boot=20, invalid_as_category=True, level="ordinal")
