"""The methods report's "Estimates" section: what `annotator estimate` stored (three-way shares, groups and
their differences, a regression, notes, the design assumed) and the latest `--across-runs` check, in HTML and
Markdown, with the caveat on LLM-only intervals; and, with nothing stored, how to make an estimate.

The project is test_estimate's corpus (200 documents, gold codes on every one, a biased scripted LLM run),
with a hostile value in the grouping column: markup and a table pipe that must come out escaped.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlmodel import col, select

from annotator.data.codes import import_codes
from annotator.project import Project
from annotator.report import build_report, report_text
from annotator.report.gather import MAX_ESTIMATES, gather
from annotator.report.render import render
from annotator.services.results import stamped
from annotator.store.models import Metric
from annotator.store.retire import archive_run
from tests.conftest import copy_run, flip, import_docs, write
from tests.test_report import BROWSER_FLAGS, _chromium, _text, md_unescape

N = 200
HOSTILE = "<script>document.title='PWNED'</script>|B"
HOSTILE_HTML = "&lt;script&gt;document.title=&#39;PWNED&#39;&lt;/script&gt;|B"
HOSTILE_MD = "&lt;script&gt;document.title='PWNED'&lt;/script&gt;\\|B"
CAVEAT = (
    "LLM-only intervals ignore the LLM's errors and do not cover the true share at their nominal rate; "
    "prediction-powered intervals do when the gold items are a random sample of the documents (the design "
    "stated above)."
)


def _truth(i: int) -> str:
    return "negative" if i % 10 < 3 else "positive"  # 30% negative: 40% of the even documents, 20% of the odd


@pytest.fixture
def corpus(project: Project, tmp_path: Path) -> dict[str, Any]:
    """test_estimate's corpus: 200 documents, critics' gold codes on every one, an LLM run that calls 15% of the
    positive ones negative; the party of the odd documents is markup with a pipe in it."""
    keys = [f"k{i:03d}" for i in range(N)]
    texts = {k: f"word{k} sentence about a film" for k in keys}
    party = ["A" if i % 2 == 0 else HOSTILE for i in range(N)]
    import_docs(project, tmp_path, texts, split="dev", columns={"party": party})
    gold = [_truth(i) for i in range(N)]
    rows = "".join(f"{k},{g}\n" for k, g in zip(keys, gold, strict=True))
    import_codes(project, write(tmp_path / "critics.csv", "id,label\n" + rows), coder="critics", kind="gold")
    rng = np.random.default_rng(3)
    wrong = {i for i in range(N) if gold[i] == "positive" and rng.random() < 0.15}
    run = copy_run(project, keys, flip(gold, wrong), split="dev")
    return {"run": run, "keys": keys, "gold": gold}


def _estimate(cli, *args: str) -> dict[str, Any]:
    result = cli("estimate", *args, "--json")
    assert result.code == 0, result
    return json.loads(result.out)


def _ci(e: dict[str, Any]) -> str:
    """An estimate as the report writes it: three decimals, the interval in brackets."""
    return f"{e['estimate']:.3f} [{e['lower']:.3f}, {e['upper']:.3f}]"


def _html_section(html: str) -> str:
    match = re.search(r'<section id="estimates">.*?</section>', html, flags=re.S)
    assert match, "no Estimates section"
    return match.group(0)


def _md_section(md: str) -> str:
    match = re.search(r"(?ms)^## \d+\. Estimates\n.*?(?=^## )", md)
    assert match, "no Estimates section"
    return match.group(0)


def _label(result: dict[str, Any], label: str) -> dict[str, Any]:
    return next(e for e in result["labels"] if e["label"] == label)


def _reports(project: Project) -> tuple[str, str]:
    data = gather(project)
    render(data, "html", strict=True)  # every name the templates use exists
    render(data, "md", strict=True)
    return report_text(project, "html"), report_text(project, "md")


def _stored(cli, corpus: dict[str, Any], project: Project) -> dict[str, Any]:
    """An estimate by party with a regression, and the check across two runs."""
    run = str(corpus["run"])
    est = _estimate(cli, "--run", run, "--gold", "critics", "--gold-sample", "60", "--seed", "1",
                    "--by", "party", "--regress", "label=negative ~ party")  # fmt: skip
    second = copy_run(project, corpus["keys"], corpus["gold"], split="dev", tag="perfect")
    across = _estimate(cli, "--across-runs", "--by", "party", "--label", "negative", "--gold-sample", "60")
    return {"estimate": est, "across": across, "second": second}


def test_the_report_shows_each_stored_estimate(cli, corpus: dict[str, Any], project: Project) -> None:
    stored = _stored(cli, corpus, project)
    est, across = stored["estimate"], stored["across"]
    html, md = _reports(project)
    section = _html_section(html)
    text = _text(section)
    assert "11. Estimates" in text and "12. Prompt freezing and the test split" in _text(html)
    assert html.index('id="comparison"') < html.index('id="estimates"') < html.index('id="freezing"')
    # the sentence: run, model, prompt, split, n of documents and of gold items, the design assumed
    assert (
        f"Run {corpus['run']} (openai-compatible/scripted, prompt sentiment/zero-shot.v1, codebook sentiment) on "
        "the documents it was asked in every split: 200 documents, 60 gold items of critics; 95% intervals."
    ) in text
    assert f"Design assumed (sample): {est['design_statement']}." in text
    assert "simple random sample of 60 gold items drawn by annotator (seed 1)" in text
    # the per-label table: each method with its interval and n, the LLM only marked, the census share
    neg = _label(est, "negative")
    assert (
        "LLM only (not bias-corrected)" in text and "LLM bias on gold" in text and "every gold code" in text
    )
    row = (
        f"negative {_ci(neg['gold_only'])} 60 {_ci(neg['llm_only'])} 200 {_ci(neg['llm_bias'])} "
        f"{_ci(neg['ppi'])} 0.300"
    )
    assert row in text, row
    # the groups, their differences, the regression
    group_b = next(g for g in est["groups"] if g["group"] == HOSTILE)
    assert f"party = {HOSTILE}: {group_b['n_documents']} documents, {group_b['n_gold']} gold items" in text
    assert _ci(_label(group_b, "negative")["ppi"]) in text
    diff = next(d for d in est["differences"] if d["label"] == "negative")
    assert (
        f"negative {HOSTILE} − A {_ci(diff['gold_only'])} {_ci(diff['llm_only'])} {_ci(diff['ppi'])}" in text
    )
    reg = est["regression"]
    assert "Logistic regression of negative (label=negative ~ party): 200 documents, 60 gold items" in text
    assert reg["ppi"][1]["term"].startswith("party=")
    assert f"{reg['ppi'][1]['term']} {_ci(reg['ppi'][1])} {_ci(reg['gold_only'][1])}" in text
    # the caveat and where to check it
    assert CAVEAT in text and "python -m benchmarks bench_coverage" in text
    # across runs: each run's share and difference, the spread, the verdict
    first = across["runs"][0]
    assert "Across runs: the share of negative, by party" in text
    assert f"{_ci(first['share'])} {_ci(first['difference'])}" in text
    assert f"difference {HOSTILE} − A" in text
    low, high = across["spread"]
    assert f"Spread of the estimates across runs: {low:.3f} to {high:.3f}." in text
    assert f"Verdict: {across['verdict']}." in text and "the finding (" in across["verdict"]
    # the markup in the group's name is text, never a tag
    assert "<script" not in section.lower() and HOSTILE_HTML in section

    md_part = _md_section(md)
    plain = md_unescape(md_part).replace("&lt;", "<").replace("&gt;", ">")
    assert md_part.startswith("## 11. Estimates") and "[Estimates](#11-estimates)" in md
    assert (
        est["design_statement"] in plain
        and CAVEAT in plain
        and "`python -m benchmarks bench_coverage`" in md_part
    )
    assert f"| negative | {_ci(neg['gold_only'])} | 60 | {_ci(neg['llm_only'])} | 200 |" in md_part
    assert f"| {_ci(neg['ppi'])} | 0.300 |" in md_part and "LLM only (not bias-corrected)" in md_part
    assert f"**Verdict:** {across['verdict']}." in plain
    assert f"{low:.3f} to {high:.3f}" in md_part
    assert "<script" not in md_part and HOSTILE_MD in md_part
    for block in re.findall(r"(?m)((?:^\|.*\|\n)+)", md_part):  # the pipe in the group did not add a cell
        rows = block.strip("\n").split("\n")
        assert len({len(re.findall(r"(?<!\\)\|", r)) for r in rows}) == 1, rows


def test_no_estimate_says_how_to_make_one(project: Project) -> None:
    html, md = _reports(project)
    text = _text(_html_section(html))
    assert "Not computed: run annotator estimate --run N --gold G" in text
    assert "annotator estimate --across-runs" in text
    assert "`annotator estimate --run N --gold G`" in _md_section(md)
    assert CAVEAT not in text


def test_the_latest_of_each_estimate_the_most_recent_first(
    cli, corpus: dict[str, Any], project: Project
) -> None:
    run = str(corpus["run"])
    for _ in range(2):  # the same estimate twice: the latest is shown, the earlier counted
        _estimate(cli, "--run", run, "--gold-sample", "60", "--seed", "1")
    with project.transaction() as s:
        base = s.exec(select(Metric).where(col(Metric.kind) == "estimate")).first()
        assert base is not None
        result = dict(base.result)
        for i in range(MAX_ESTIMATES):  # as many other groupings: the oldest falls out
            s.add(Metric(kind="estimate", run_id=corpus["run"], split="all", params={},
                         result=result | {"by": f"col{i}", "groups": [], "differences": []}))  # fmt: skip
        s.add(
            Metric(
                kind="estimate", run_id=corpus["run"], split="all", params={}, result=result | {"schema": 99}
            )
        )
        s.add(
            Metric(
                kind="estimate", run_id=corpus["run"], split="dev", params={}, result=stamped("estimate", {})
            )
        )
    data = gather(project)["estimates"]
    shown = data["shown"]
    assert len(shown) == MAX_ESTIMATES and data["not_shown"] == 2 and data["across"] is None
    assert [e["result"].get("by") for e in shown] == [None, "col4", "col3", "col2", "col1"]
    assert shown[0]["result"] == {"schema": 1} and [e["earlier"] for e in shown] == [0] * MAX_ESTIMATES
    assert [e["metric_id"] for e in shown] == sorted((e["metric_id"] for e in shown), reverse=True)
    html = report_text(project, "html")  # the partial row renders (n/a), the foreign one is listed, not shown
    assert "n/a" in _text(_html_section(html)) and "result schema 99" in _text(html)
    assert "2 older estimate(s) of other runs, splits or groupings not shown." in _text(_html_section(html))
    assert "older estimate(s)" in report_text(project, "md")
    # an estimate of an archived run is left out with the run
    archive_run(project, corpus["run"])
    assert gather(project)["estimates"] == {"shown": [], "not_shown": 0, "across": None}


def test_the_same_estimate_again_counts_as_earlier(cli, corpus: dict[str, Any], project: Project) -> None:
    run = str(corpus["run"])
    for seed in ("1", "2"):
        _estimate(cli, "--run", run, "--gold-sample", "60", "--seed", seed)
    (only,) = gather(project)["estimates"]["shown"]
    assert only["earlier"] == 1 and "(seed 2)" in only["result"]["design_statement"]
    text = _text(_html_section(report_text(project, "html")))
    assert "1 earlier estimate(s) of this run, split and grouping not shown" in text
    assert "Across runs: not computed" in text


@pytest.mark.slow
def test_chromium_renders_the_section(cli, corpus: dict[str, Any], project: Project, tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        if os.environ.get("ANNOTATOR_SKIP_BROWSER") == "1":
            pytest.skip("ANNOTATOR_SKIP_BROWSER=1 and no chromium")
        pytest.fail("chromium is not installed: install it or set ANNOTATOR_SKIP_BROWSER=1 to skip this test")
    _stored(cli, corpus, project)
    url = build_report(project, tmp_path / "report.html").as_uri()
    common = [
        browser,
        *BROWSER_FLAGS,
        f"--user-data-dir={tmp_path / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
    ]
    run = subprocess.run(
        [*common, "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    dom = run.stdout
    assert "11. Estimates" in dom and "not bias-corrected" in dom and "Verdict:" in dom
    assert "PWNED</title>" not in dom  # the planted script did not run
    logs = [line for line in run.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not logs, logs
