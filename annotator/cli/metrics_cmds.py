"""agreement (and later validate)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from annotator.cli.common import console, get_project, print_json, table
from annotator.stats import MIN_UNITS
from annotator.textfmt import interval, number

if TYPE_CHECKING:
    from annotator.services.agreement import Agreement
    from annotator.stats.agreement import Comparison, Humans, Pairwise, RunEntry, Stability


def figure(e: dict[str, Any] | None) -> str:
    """A figure with its n: "0.812 [0.770, 0.851] (n=120)", or "too few units (12)" instead of a number."""
    if not e:
        return "NaN"
    n = e.get("n_units")
    if e.get("estimate") is None:
        reason = e.get("reason") or ""
        if reason.startswith("too few units"):
            return f"too few units ({n})"
        return "NaN" if n is None else f"NaN (n={n})"
    return interval(e) + ("" if n is None else f" (n={n})")


def register(app: typer.Typer) -> None:
    app.command("agreement")(agreement)


def agreement(
    split: str = typer.Option("dev", "--split", help="dev, test or all."),
    coders: str | None = typer.Option(
        None,
        "--coders",
        help="Comma-separated coders, e.g. alice,bob,run:7 (run:7#1 is repeat 1). Default: every human "
        "coder and every run; gold coders only when named.",
    ),
    level: str = typer.Option("nominal", "--level", help="nominal, ordinal, interval or ratio."),
    bootstrap: int = typer.Option(1000, "--bootstrap", help="Bootstrap replicates (units resampled)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
    uncertain_as_category: bool = typer.Option(
        False, "--uncertain-as-category", help="Count the uncertain label as a category (default: missing)."
    ),
    invalid_as_category: bool = typer.Option(
        False, "--invalid-as-category", help="Count invalid LLM answers as a category (default: missing)."
    ),
    codebook: str | None = typer.Option(None, "--codebook", help="Codebook NAME (default: the only one)."),
    compare: str | None = typer.Option(
        None,
        "--compare",
        help="Two runs or repeats as A,B (names as in --coders, e.g. run:7,run:8): compare only that pair "
        "(default: every pair of runs and repeats).",
    ),
    min_units: int = typer.Option(
        MIN_UNITS,
        "--min-units",
        help="Minimum overlap: a figure on fewer units is shown as 'too few units (n)' instead of a number.",
    ),
    margin: float = typer.Option(
        0.05,
        "--margin",
        help="Non-inferiority margin of the yardstick: how far (in kappa) a run may fall short of the "
        "humans and still be 'at the human level'.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Inter-coder reliability of humans and LLM runs, with bootstrap intervals and the yardstick."""
    from annotator.services.agreement import agreement as compute

    names = [c.strip() for c in coders.split(",") if c.strip()] if coders is not None else None
    pair = [c.strip() for c in compare.split(",") if c.strip()] if compare is not None else None
    result = compute(
        get_project(write=False),
        split=split,
        coders=names,
        level=level,
        n_boot=bootstrap,
        seed=seed,
        uncertain_as_category=uncertain_as_category,
        codebook=codebook,
        compare=pair,
        invalid_as_category=invalid_as_category,
        min_units=min_units,
        margin=margin,
    )
    if as_json:
        print_json(result.to_json())
        return
    _print_agreement(result)


def _print_agreement(result: Agreement) -> None:
    """The agreement result as tables and lines, in the order a reader needs them."""
    pct = f"{result.ci:.0%}"
    console.print(
        f"agreement on {result.codebook} ({result.split} split, {result.n_units} units, "
        f"{result.level}; {result.uncertain_note}; {result.n_boot} bootstrap replicates, "
        f"seed {result.seed}, {pct} intervals)"
    )
    _print_humans(result.humans, result.min_units)
    if result.runs:
        _print_runs(result.runs)
    _print_stability(result.stability)
    _print_pairwise(result.pairwise)
    if result.runs:
        console.print(result.yardstick_rule)
    for r in result.runs:
        console.print(r["yardstick"]["line"])
    _print_comparisons(result.comparisons)
    if result.values:
        shown = ", ".join(f"{k} = {number(v, 6).rstrip('0').rstrip('.')}" for k, v in result.values.items())
        console.print(f"label values used ({result.level}): {shown}")
    for note in result.notes[1:]:
        console.print(f"note: {note}")
    if result.metric_id is not None:  # None on a read-only database (the note after the command says so)
        console.print(f"stored as metric {result.metric_id}")


def _print_humans(h: Humans, min_units: int) -> None:
    """Human-human reliability: a table of statistics, or why there is none."""
    if h["n_coders"] < 2:
        console.print(f"human-human: {h['reason']}")
        return
    n_h = h["n_units"]
    rows = [
        ["Krippendorff's alpha", figure(h["alpha"])],
        [
            "mean pairwise Cohen's kappa",
            f"{figure(h['mean_pairwise_kappa'])}, {_pairs(h['mean_pairwise_kappa'])}",
        ],
        ["percent agreement", _point(h["percent_agreement"], n_h, min_units)],
        [
            "Fleiss' kappa",
            f"{_point(h['fleiss_kappa'], h['fleiss_n_units'], min_units)}, units coded by all",
        ],
        ["Gwet's AC1", _point(h["gwet_ac1"], n_h, min_units)],
        ["coders", str(h["n_coders"])],
        ["units (pairable)", str(n_h)],
    ]
    console.print(table(f"human-human ({', '.join(h['coders'])})", ["statistic", "value"], rows))
    if h["alpha"]["estimate"] is None and h.get("reason"):
        console.print(f"human-human alpha: {h['reason']}")


def _print_runs(runs: list[RunEntry]) -> None:
    """Each run against the humans: a table, the tied units left out, and each run's pooled alpha."""
    run_rows = [
        [
            r["coder"],
            r["model"] or r["kind"],
            f"{r['n_asked']}/{r['n_codes']}/{r['n_invalid']}",
            figure(r["alpha_vs_majority"]),
            figure(r["kappa_vs_majority"]),
            f"{figure(r['mean_alpha_vs_humans'])}, {_pairs(r['mean_alpha_vs_humans'])}",
            f"{figure(r['mean_kappa_vs_humans'])}, {_pairs(r['mean_kappa_vs_humans'])}",
        ]
        for r in runs
    ]
    console.print(
        table(
            "runs against the humans, on the units each run coded",
            [
                "coder",
                "model",
                "asked/codes/invalid",
                "alpha vs majority",
                "kappa vs majority",
                "mean alpha vs each human",
                "mean kappa vs each human",
            ],
            run_rows,
        )
    )
    ties = max(r["kappa_vs_majority"].get("n_ties_left_out", 0) for r in runs)
    if ties:
        console.print(
            f"up to {ties} units with a tied human majority are left out of the figures vs majority"
        )
    for r in runs:
        p = r["pooled_alpha"]
        if p["humans_only"]["estimate"] is None and p["with_run"]["estimate"] is None:
            continue
        console.print(
            f"{r['coder']}: {p['label']}: {figure(p['with_run'])}; humans only on the same units: "
            f"{figure(p['humans_only'])}; difference {figure(p['difference'])}"
        )


def _print_stability(stability: list[Stability]) -> None:
    """Each repeated run's alpha across its repeats."""
    for st in stability:
        console.print(
            f"stability of run {st['run_id']} across {len(st['coders'])} repeats: alpha {figure(st['alpha'])}"
            + (f" ({st['alpha']['reason']})" if figure(st["alpha"]).startswith("NaN") else "")
        )


def _print_pairwise(pw: Pairwise) -> None:
    """The pairwise kappa table, when it has 2 to 8 coders."""
    if not 2 <= len(pw["coders"]) <= 8:
        return
    console.print(
        table(
            "pairwise Cohen's kappa (units coded by both)",
            ["coder", *pw["coders"]],
            [
                [
                    name,
                    *(
                        f"{number(k)} ({n})" if k is not None or n == 0 else f"too few ({n})"
                        for k, n in zip(ks, ns, strict=True)
                    ),
                ]
                for name, ks, ns in zip(pw["coders"], pw["kappa"], pw["n_units"], strict=True)
            ],
        )
    )


def _print_comparisons(comparisons: list[Comparison]) -> None:
    """The --compare pairs of runs: a table, then each pair's verdict."""
    if not comparisons:
        return
    console.print(
        table(
            "runs compared: A minus B, mean kappa with each human (units both coded)",
            ["A", "B", "n", "A kappa", "B kappa", "A - B", "share <= 0"],
            [
                [
                    c["a"],
                    c["b"],
                    c["n_units"],
                    figure(c["mean_kappa_a"]),
                    figure(c["mean_kappa_b"]),
                    figure(c["difference"]),
                    number(c["share_le_zero"]),
                ]
                for c in comparisons
            ],
        )
    )
    for c in comparisons:
        console.print(c["line"])


def _pairs(e: dict[str, Any]) -> str:
    left = e.get("n_pairs_left_out") or 0
    return f"{e.get('n_pairs', 0)} pairs" + (f" ({left} left out)" if left else "")


def _point(x: float | None, n: int, minimum: int) -> str:
    if x is None and n < minimum:
        return f"too few units ({n})"
    return f"{number(x)} (n={n})"
