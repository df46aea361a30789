"""agreement (and later validate)."""

from __future__ import annotations

import typer

from annotator.cli.common import console, get_project, print_json, table
from annotator.textfmt import interval, number


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
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Inter-coder reliability of humans and LLM runs, with bootstrap intervals and the yardstick."""
    from annotator.metrics.agreement import agreement as compute

    names = [c.strip() for c in coders.split(",") if c.strip()] if coders is not None else None
    pair = [c.strip() for c in compare.split(",") if c.strip()] if compare is not None else None
    result = compute(
        get_project(),
        split=split,
        coders=names,
        level=level,
        n_boot=bootstrap,
        seed=seed,
        uncertain_as_category=uncertain_as_category,
        codebook=codebook,
        compare=pair,
        invalid_as_category=invalid_as_category,
    )
    if as_json:
        print_json(result)
        return
    h = result["humans"]
    pct = f"{result['ci']:.0%}"
    console.print(
        f"agreement on {result['codebook']} ({result['split']} split, {result['n_units']} units, "
        f"{result['level']}; {result['uncertain_note']}; {result['n_boot']} bootstrap replicates, "
        f"seed {result['seed']}, {pct} intervals)"
    )
    rows = [
        ["Krippendorff's alpha", interval(h["alpha"])],
        ["mean pairwise Cohen's kappa", interval(h["mean_pairwise_kappa"])],
        ["percent agreement", number(h["percent_agreement"])],
        ["Fleiss' kappa", f"{number(h['fleiss_kappa'])} ({h['fleiss_n_units']} units coded by all)"],
        ["Gwet's AC1", number(h["gwet_ac1"])],
        ["coders", str(h["n_coders"])],
        ["units (pairable)", str(h["n_units"])],
    ]
    console.print(table(f"human-human ({', '.join(h['coders']) or 'none'})", ["statistic", "value"], rows))
    if h.get("reason"):
        console.print(f"human-human alpha is NaN: {h['reason']}")
    if result["runs"]:
        run_rows = [
            [
                r["coder"],
                r["model"] or r["kind"],
                r["n_codes"],
                r["n_invalid"],
                interval(r["alpha_with_humans"]),
                interval(r["kappa_vs_majority"]),
                r["kappa_vs_majority"]["n_units"],
                interval(r["mean_kappa_vs_humans"]),
            ]
            for r in result["runs"]
        ]
        console.print(
            table(
                "runs against the humans",
                [
                    "coder",
                    "model",
                    "codes",
                    "invalid",
                    "alpha with humans",
                    "kappa vs majority",
                    "n",
                    "mean kappa vs each human",
                ],
                run_rows,
            )
        )
        ties = result["runs"][0]["kappa_vs_majority"]["n_ties_left_out"]
        if ties:
            console.print(f"{ties} units with a tied human majority are left out of kappa vs majority")
    for st in result["stability"]:
        console.print(
            f"stability of run {st['run_id']} across {len(st['coders'])} repeats: alpha {interval(st['alpha'])}"
            + (f" ({st['alpha']['reason']})" if st["alpha"].get("reason") else "")
        )
    pw = result["pairwise"]
    if 2 <= len(pw["coders"]) <= 8:
        console.print(
            table(
                "pairwise Cohen's kappa (units coded by both)",
                ["coder", *pw["coders"]],
                [
                    [name, *(f"{number(k)} ({n})" for k, n in zip(ks, ns, strict=True))]
                    for name, ks, ns in zip(pw["coders"], pw["kappa"], pw["n_units"], strict=True)
                ],
            )
        )
    for r in result["runs"]:
        console.print(r["yardstick"]["line"])
    comparisons = result.get("comparisons", [])
    if comparisons:
        console.print(
            table(
                "runs compared: A minus B, mean kappa with each human (units both coded)",
                ["A", "B", "n", "A kappa", "B kappa", "A - B", "share <= 0"],
                [
                    [
                        c["a"],
                        c["b"],
                        c["n_units"],
                        interval(c["mean_kappa_a"]),
                        interval(c["mean_kappa_b"]),
                        interval(c["difference"]),
                        number(c["share_le_zero"]),
                    ]
                    for c in comparisons
                ],
            )
        )
        for c in comparisons:
            console.print(c["line"])
    for note in result["notes"][1:]:
        console.print(f"note: {note}")
    console.print(f"stored as metric {result['metric_id']}")
