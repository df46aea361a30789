"""compare: a leaderboard of runs against gold, pairwise tests, and prompt versions side by side."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from annotator.cli.common import console, get_project, print_json, run_ids, table
from annotator.errors import InputError
from annotator.textfmt import interval, number

if TYPE_CHECKING:
    from annotator.services.compare import Comparison, Humans, PairTest, PromptComparison, RunEntry


def register(app: typer.Typer) -> None:
    app.command("compare")(compare)


def _money(x: float | None) -> str:
    return "" if x is None else f"${x:.6f}".rstrip("0").rstrip(".") if x else "$0"


HEAD = [
    "rank",
    "run",
    "model",
    "prompt",
    "n",
    "accuracy",
    "macro F1",
    "alpha vs majority",
    "alpha n",
    "coverage",
]
COST_HEAD = [
    "run",
    "valid labels",
    "cost",
    "$ / valid",
    "seconds",
    "s / valid",
    "tokens in",
    "tokens out",
    "tokens / valid",
]


def _alpha_cell(a: dict[str, Any]) -> str:
    if a.get("estimate") is not None:
        return interval(a)
    reason = a.get("reason") or ""
    return "too few" if reason.startswith("too few") else "n/a"


def _row(r: RunEntry) -> list[Any]:
    prompt = r["prompt"].split("/", 1)[-1] if r["prompt"] else ""
    alpha = r["alpha_vs_majority"]
    return [
        r["rank"],
        f"run:{r['run_id']}",
        r["model"] or r["kind"],
        prompt,
        f"{r['n_items']} (too few)" if r["too_few"] else r["n_items"],
        interval(r["accuracy"]),
        interval(r["macro_f1"]),
        _alpha_cell(alpha),
        alpha.get("n_units", ""),
        number(r["coverage"]),
    ]


def _cost_row(r: RunEntry) -> list[Any]:
    return [
        f"run:{r['run_id']}",
        r["n_valid_total"],
        _money(r["cost_usd"]),
        _money(r["cost_per_valid"]),
        number(r["seconds"], 1) if r["seconds"] is not None else "",
        number(r["seconds_per_valid"], 3) if r["seconds_per_valid"] is not None else "",
        r["tokens_in"],
        r["tokens_out"],
        number(r["tokens_per_valid"], 0) if r["tokens_per_valid"] is not None else "",
    ]


def _humans_line(h: Humans) -> str | None:
    if not h["coders"]:
        return None  # said once, in the notes
    a = h["alpha"]
    if a.get("estimate") is None:
        return f"humans ({', '.join(h['coders'])}): alpha undefined: {a.get('reason')}"
    return f"humans ({', '.join(h['coders'])}) among themselves on the gold items: alpha {interval(a)}"


def _print_humans(h: Humans) -> None:
    line = _humans_line(h)
    if line is not None:
        console.print(line, markup=False)


def compare(
    gold: str | None = typer.Option(
        None, "--gold", help="The gold coder to score against (default: the only gold coder)."
    ),
    split: str | None = typer.Option(
        None, "--split", help="dev, test or all (default: test; dev with --prompts)."
    ),
    runs: str | None = typer.Option(
        None,
        "--runs",
        help="Comma-separated run ids, e.g. 3,4,5 (default: every run with answers on the split).",
    ),
    codebook: str | None = typer.Option(
        None, "--codebook", help="Codebook NAME (default: the gold coder's)."
    ),
    sort: str = typer.Option("macro-f1", "--sort", help="Rank by macro-f1 or accuracy."),
    pairs: str = typer.Option(
        "auto",
        "--pairs",
        help="Which runs to test against each other: all pairs, best (each run against the best), or auto "
        "(all pairs up to four runs, else best).",
    ),
    prompts: bool = typer.Option(
        False, "--prompts", help="Each prompt's versions side by side, with the diff of their templates."
    ),
    min_units: int = typer.Option(
        30,
        "--min-units",
        help="Fewest shared gold items to test a pair of runs (and to show alpha, and rank a run normally).",
    ),
    bootstrap: int = typer.Option(1000, "--bootstrap", help="Bootstrap replicates (documents resampled)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    csv_path: str | None = typer.Option(
        None,
        "--csv",
        help="Also write the leaderboard as CSV to this file (- prints it instead of the tables).",
    ),
) -> None:
    """Rank runs (prompt versions, models, baselines) against gold, and test whether their differences are real.

    Each run is scored on the gold items it was asked (n per run; a sampled run on its sample): accuracy and
    macro F1 against the gold coder, alpha against the human majority label (all with intervals), coverage,
    and cost, time and tokens per valid label (whole run). Then pairs of runs, on the gold items both were
    asked: McNemar's exact test and a paired bootstrap of the accuracy difference; * marks a difference whose
    interval excludes zero. One run is allowed: its row, and nothing to pair.
    """
    from annotator.services.compare import PromptComparison, write_csv
    from annotator.services.compare import compare as compute

    if as_json and csv_path == "-":
        raise InputError("--json and --csv - both print to the screen: give --csv a file name, or drop one")
    result = compute(
        get_project(write=False),
        gold=gold,
        split=split,
        runs=run_ids(runs),
        codebook=codebook,
        n_boot=bootstrap,
        seed=seed,
        sort=sort,
        pairs=pairs,
        prompts=prompts,
        min_units=min_units,
    )
    if csv_path is not None:
        write_csv(result, csv_path)
        if csv_path == "-":
            return
    if as_json:
        print_json(result.to_json())
        return
    console.print(
        f"compared against {result.gold} on {result.codebook} ({result.split} split, "
        f"{result.n_gold} gold items; {result.n_boot} bootstrap replicates, seed {result.seed}, "
        f"{result.ci:.0%} intervals; ranked by {result.sort.replace('_', '-')})"
    )
    if isinstance(result, PromptComparison):
        _render_prompts(result)
    else:
        _render_leaderboard(result)
    for w in result.warnings:
        console.print(f"warning: {w}")
    for note in result.notes:
        console.print(f"note: {note}", markup=False)
    if csv_path is not None:
        console.print(f"wrote {csv_path}", markup=False)
    if result.metric_id is not None:
        console.print(f"stored as metric {result.metric_id}")


def _render_pairs(comparisons: list[PairTest], mode: str) -> None:
    from annotator.services.compare import fmt_p

    if not comparisons:
        return
    rows = []
    for c in comparisons:
        if not c["tested"]:
            rows.append(
                [f"run:{c['a']}", f"run:{c['b']}", c["n_items"], "", "", "not tested", "", "", "", ""]
            )
            continue
        rows.append(
            [
                f"run:{c['a']}",
                f"run:{c['b']}",
                c["n_items"],
                c["a_only_correct"],
                c["b_only_correct"],
                interval(c["accuracy_difference"]),
                "*" if c["significant"] else "",
                interval(c["macro_f1_difference"]),
                fmt_p(c["mcnemar_p"]),
                fmt_p(c["p_holm"]),
            ]
        )
    head = [
        "A",
        "B",
        "n",
        "A only right",
        "B only right",
        "accuracy A-B",
        "",
        "macro F1 A-B",
        "McNemar p",
        "Holm p",
    ]
    title = "every pair" if mode == "all" else "each run against the best"
    console.print(table(f"pairs ({title}; n: gold items both were asked)", head, rows))
    if any(c["tested"] for c in comparisons):
        console.print("* the paired bootstrap interval of the accuracy difference excludes zero")
    for c in comparisons:
        console.print(c["line"], markup=False)


def _render_leaderboard(result: Comparison) -> None:
    title = f"leaderboard ({result.n_gold} gold items; n: those each run was asked)"
    console.print(table(title, HEAD, [_row(r) for r in result.runs]))
    _print_humans(result.humans)
    console.print(table("cost, time and tokens (whole run)", COST_HEAD, [_cost_row(r) for r in result.runs]))
    _render_pairs(result.comparisons, result.pairs)


def _render_prompts(result: PromptComparison) -> None:
    for p in result.prompts:
        rows = [_row(r) for v in p["versions"] for r in v["runs"]]
        title = f"{p['prompt']}: versions ({result.n_gold} gold items; n: those each run was asked)"
        console.print(table(title, HEAD, rows))
        _print_humans(p["humans"])
        for v in p["versions"]:
            frozen = f"frozen {v['frozen_at']}" if v["frozen_at"] else "not frozen"
            console.print(f"{v['prompt']}: sha256 {v['sha256'][:12]}, {frozen}", markup=False)
        _render_pairs(p["comparisons"], p["pairs"])
        for d in p["diffs"]:
            console.print(f"diff {d['from']} -> {d['to']}:", markup=False)
            console.print(
                d["diff"].rstrip("\n") or "(the templates are identical)", markup=False, highlight=False
            )
