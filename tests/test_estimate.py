"""`annotator estimate` and `annotator plan-gold`: bias-corrected shares from a run's labels and a gold sample,
through the CLI, on a real project with a scripted LLM run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from annotator.data.codes import import_codes
from tests.conftest import copy_run, flip, import_docs, write

N = 200


def _truth(i: int) -> str:
    return "negative" if i % 10 < 3 else "positive"  # 30% negative


def _party(i: int) -> str:
    return "A" if i % 2 == 0 else "B"


@pytest.fixture
def corpus(project, tmp_path):
    """200 documents (party A and B, 30% negative), critics' gold codes on every one, and an LLM run that
    calls 15% of the positive ones negative (a biased LLM: it overstates the negative share)."""
    keys = [f"k{i:03d}" for i in range(N)]
    texts = {k: f"word{k} sentence about a film" for k in keys}
    import_docs(project, tmp_path, texts, split="dev", columns={"party": [_party(i) for i in range(N)]})
    gold = [_truth(i) for i in range(N)]
    rows = "".join(f"{k},{g}\n" for k, g in zip(keys, gold, strict=True))
    import_codes(project, write(tmp_path / "critics.csv", "id,label\n" + rows), coder="critics", kind="gold")
    rng = np.random.default_rng(3)
    wrong = {i for i in range(N) if gold[i] == "positive" and rng.random() < 0.15}
    run = copy_run(project, keys, flip(gold, wrong), split="dev")
    return {"run": run, "keys": keys, "gold": gold, "truth": gold.count("negative") / N}


def _estimate(cli, *args: str) -> dict:
    result = cli("estimate", *args, "--json")
    assert result.code == 0, result
    return json.loads(result.out)


def _label(result: dict, label: str) -> dict:
    return next(e for e in result["labels"] if e["label"] == label)


def test_three_ways_with_a_gold_sample_drawn_by_annotator(cli, corpus) -> None:
    out = _estimate(
        cli, "--run", str(corpus["run"]), "--gold", "critics", "--gold-sample", "60", "--seed", "1"
    )
    assert out["design"] == "sample" and out["n_gold"] == 60 and out["n_documents"] == N
    assert "simple random sample of 60 gold items drawn by annotator (seed 1)" in out["design_statement"]
    neg = _label(out, "negative")
    assert neg["census"] == pytest.approx(corpus["truth"])  # every gold code: the truth to compare with
    assert neg["gold_only"]["n_gold"] == 60 and neg["llm_only"]["n_unlabeled"] == N
    assert neg["llm_only"]["corrected"] is False
    assert neg["llm_only"]["estimate"] > corpus["truth"] + 0.05  # the LLM's bias shows
    assert neg["llm_bias"]["estimate"] > 0
    ppi = neg["ppi"]
    assert ppi["lower"] <= corpus["truth"] <= ppi["upper"]
    assert ppi["upper"] - ppi["lower"] < neg["gold_only"]["upper"] - neg["gold_only"]["lower"]
    text = cli("estimate", "--run", str(corpus["run"]), "--gold-sample", "60", "--seed", "1")
    assert text.code == 0 and "prediction-powered" in text.out and "(not corrected)" in text.out
    assert "every gold code" in text.out and "design: a simple random sample" in text.out


def test_the_design_is_refused_when_unknown_and_stated_when_assumed(cli, corpus, project, tmp_path) -> None:
    # a second gold coder with codes on 50 hand-picked documents
    rows = "".join(f"{k},{g}\n" for k, g in list(zip(corpus["keys"], corpus["gold"], strict=True))[:50])
    import_codes(project, write(tmp_path / "picked.csv", "id,label\n" + rows), coder="picked", kind="gold")
    refused = cli("estimate", "--run", str(corpus["run"]), "--gold", "picked")
    assert refused.code == 2
    assert "coded 50 of the 200 documents" in refused.err and "--assume-random" in refused.err
    assert "picked.csv" in refused.err
    drawn = cli("estimate", "--run", str(corpus["run"]), "--gold", "picked", "--gold-sample", "20")
    assert drawn.code == 2 and "not of the 200" in drawn.err
    out = _estimate(cli, "--run", str(corpus["run"]), "--gold", "picked", "--assume-random")
    assert out["design"] == "assumed random" and out["n_gold"] == 50
    census = _estimate(cli, "--run", str(corpus["run"]), "--gold", "critics")
    assert census["design"] == "census"
    assert _label(census, "negative")["gold_only"]["estimate"] == pytest.approx(corpus["truth"])


def test_groups_their_differences_and_a_regression(cli, corpus) -> None:
    args = ["--run", str(corpus["run"]), "--gold-sample", "80", "--seed", "2"]
    out = _estimate(cli, *args, "--by", "party", "--label", "negative")
    assert [g["group"] for g in out["groups"]] == ["A", "B"]
    assert sum(g["n_documents"] for g in out["groups"]) == N
    assert sum(g["n_gold"] for g in out["groups"]) == 80
    (diff,) = out["differences"]
    assert diff["groups"] == ["A", "B"] and diff["ppi"]["method"].startswith("difference of")
    # party A (even documents) is 40% negative, B 20%: the true difference is 0.2
    assert 0 < diff["ppi"]["lower"] <= 0.2 <= diff["ppi"]["upper"]
    reg = _estimate(cli, *args, "--regress", "label=negative ~ party")
    terms = [t["term"] for t in reg["regression"]["ppi"]]
    assert terms == [
        "intercept",
        "party=B",
    ]  # A and B tie (100 each): the reference is A, for gold and corpus
    # B is 20% negative, A 40%: the log-odds differ by logit(0.2) - logit(0.4) = -0.98
    assert reg["regression"]["ppi"][1]["estimate"] < 0 and reg["regression"]["gold_only"][1]["estimate"] < 0
    stratified = _estimate(cli, *args, "--strata", "party")
    assert stratified["design"] == "stratified sample" and "N_h / n_h" in stratified["design_statement"]


def test_across_runs_gives_a_verdict(cli, corpus, project) -> None:
    gold = corpus["gold"]
    second = copy_run(project, corpus["keys"], gold, split="dev", tag="perfect")
    out = _estimate(cli, "--across-runs", "--label", "negative", "--gold-sample", "60", "--seed", "1")
    assert [r["run_id"] for r in out["runs"]] == [corpus["run"], second]
    assert out["verdict"].startswith("the share of 'negative' lies between")
    text = cli("estimate", "--across-runs", "--runs", f"{corpus['run']},{second}", "--by", "party",
               "--label", "negative", "--gold-sample", "60")  # fmt: skip
    assert text.code == 0, text
    assert "verdict: the finding" in text.out


def test_plan_gold_and_the_files_it_writes(cli, corpus, tmp_path) -> None:
    result = cli("plan-gold", "--run", str(corpus["run"]), "--target-width", "0.1", "--json")
    assert result.code == 0, result
    plan = json.loads(result.out)
    neg = next(r for r in plan["labels"] if r["label"] == "negative")
    assert 0 < neg["n_gold"] <= neg["n_gold_only"]
    assert neg["n_gold_only"] == pytest.approx(4 * 1.96**2 * 0.3 * 0.7 / 0.1**2, rel=0.02)
    out_csv, out_json = tmp_path / "est.csv", tmp_path / "est.json"
    assert (
        cli("estimate", "--run", str(corpus["run"]), "--gold-sample", "60", "--out", str(out_csv)).code == 0
    )
    header = out_csv.read_text().splitlines()[0]
    assert header.startswith("run,group,label,method,estimate,lower,upper")
    assert (
        cli("estimate", "--run", str(corpus["run"]), "--gold-sample", "60", "--out", str(out_json)).code == 0
    )
    assert json.loads(out_json.read_text())["design"] == "sample"
    again = cli("estimate", "--run", str(corpus["run"]), "--gold-sample", "60", "--out", str(out_json))
    assert again.code == 2 and "exists" in again.err and "--force" in again.err
    forced = (
        "estimate",
        "--run",
        str(corpus["run"]),
        "--gold-sample",
        "60",
        "--out",
        str(out_json),
        "--force",
    )
    assert cli(*forced).code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--run", "99"], "no such run"),
        (["--run", "RUN", "--label", "ecstatic"], "not a label of codebook"),
        (["--run", "RUN", "--by", "nosuch"], "no document of the run has a 'nosuch' value"),
        (["--run", "RUN", "--gold-sample", "60", "--strata", "nosuch"], "have no 'nosuch'"),
        (["--run", "RUN", "--gold-sample", "1000"], "use 2 to 200"),
        (["--run", "RUN", "--regress", "negative"], "write LABEL ~ COLUMN"),
        (["--run", "RUN", "--out", "x.txt"], "write a .csv or a .json file"),
        ([], "say which run with --run N"),
    ],
)
def test_bad_inputs_say_what_to_do(cli, corpus, args, message) -> None:
    result = cli("estimate", *[str(corpus["run"]) if a == "RUN" else a for a in args])
    assert result.code == 2, result
    assert message in result.err


def test_a_share_interval_stays_within_0_and_1() -> None:
    from annotator.services.estimate import _share

    near_one = _share({"estimate": 0.972, "lower": 0.933, "upper": 1.010, "se": 0.02})
    assert near_one["upper"] == 1.0 and near_one["clipped"] and near_one["estimate"] == 0.972
    inside = _share({"estimate": 0.5, "lower": 0.4, "upper": 0.6, "se": 0.05})
    assert (inside["lower"], inside["upper"], inside["clipped"]) == (0.4, 0.6, False)


def test_a_stratum_without_gold_items_is_refused(cli, corpus, project, tmp_path) -> None:
    pairs = list(zip(corpus["keys"], corpus["gold"], strict=True))[::2][:40]  # party A only (even documents)
    rows = "".join(f"{k},{g}\n" for k, g in pairs)
    import_codes(project, write(tmp_path / "only_a.csv", "id,label\n" + rows), coder="only_a", kind="gold")
    args = (
        "estimate",
        "--run",
        str(corpus["run"]),
        "--gold",
        "only_a",
        "--assume-random",
        "--strata",
        "party",
    )
    result = cli(*args)
    assert result.code == 2 and "no gold item in 1 of its groups ('B', 100 documents)" in result.err
