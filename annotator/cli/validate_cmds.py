"""validate and gold build."""

from __future__ import annotations

from typing import Any

import typer

from annotator.cli.common import console, get_project, print_json, run_ids, table
from annotator.textfmt import interval, number

gold_app = typer.Typer(help="Gold coders built from human coders.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
    app.add_typer(gold_app, name="gold")


def _headline_rows(label: str, fig: dict[str, Any]) -> list[Any]:
    return [
        label,
        fig["n_gold"],
        interval(fig.get("accuracy")),
        interval(fig.get("macro_f1")),
        number(fig.get("weighted_f1")),
        interval(fig.get("kappa")),
        number(fig.get("coverage")),
        fig["n_invalid"],
        fig["n_missing"],
        fig["n_uncertain"],
    ]


HEAD = [
    "run",
    "n",
    "accuracy",
    "macro F1",
    "weighted F1",
    "kappa",
    "coverage",
    "invalid",
    "missing",
    "uncertain",
]


def validate(
    gold: str = typer.Option(..., "--gold", help="The gold coder (imported with --kind gold or built)."),
    split: str = typer.Option("test", "--split", help="dev, test or all."),
    runs: str | None = typer.Option(None, "--runs", help="Comma-separated run ids (default: every run)."),
    by: str | None = typer.Option(None, "--by", help="A document metadata column: figures per value."),
    bootstrap: int = typer.Option(1000, "--bootstrap", help="Bootstrap replicates (documents resampled)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
    codebook: str | None = typer.Option(
        None, "--codebook", help="Codebook NAME (default: the gold coder's)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Accuracy, F1, kappa and the confusion matrix of each run against a gold coder, with intervals."""
    from annotator.metrics.validation import validate as compute

    result = compute(
        get_project(),
        gold=gold,
        split=split,
        runs=run_ids(runs),
        by=by,
        n_boot=bootstrap,
        seed=seed,
        codebook=codebook,
    )
    if as_json:
        print_json(result)
        return
    pct = f"{result['ci']:.0%}"
    console.print(
        f"validation against {result['gold']} on {result['codebook']} ({result['split']} split, "
        f"{result['n_gold']} gold items; {result['n_boot']} bootstrap replicates, seed {result['seed']}, "
        f"{pct} intervals)"
    )
    console.print(
        table(
            "runs against gold",
            HEAD,
            [_headline_rows(f"run:{r['run_id']} {r['model'] or r['kind']}", r) for r in result["runs"]],
        )
    )
    for r in result["runs"]:
        console.print(
            table(
                f"run:{r['run_id']} per class",
                ["label", "precision", "recall", "F1", "support"],
                [
                    [c["label"], number(c["precision"]), number(c["recall"]), number(c["f1"]), c["support"]]
                    for c in r.get("per_class", [])
                ],
            )
        )
        cm = r.get("confusion")
        if cm:
            console.print(
                table(
                    f"run:{r['run_id']} confusion (rows: gold, columns: run)",
                    ["gold \\ run", *cm["columns"]],
                    [[lab, *row] for lab, row in zip(cm["rows"], cm["matrix"], strict=True)],
                )
            )
        if "by" in r:
            console.print(
                table(
                    f"run:{r['run_id']} by {r['by']['column']}",
                    [r["by"]["column"], *HEAD[1:]],
                    [_headline_rows(g, fig) for g, fig in r["by"]["groups"].items()],
                )
            )
        if "frozen" in r:
            console.print(r["frozen"]["line"])
    first = result["runs"][0] if result["runs"] else {}
    for w in first.get("warnings", []):
        console.print(f"warning: {w}")
    for note in result["notes"]:
        console.print(f"note: {note}")
    ids = ", ".join(str(r["metric_id"]) for r in result["runs"])
    console.print(f"stored as metric {ids}")


@gold_app.command("build")
def build(
    name: str = typer.Argument(..., help="Name of the new gold coder."),
    from_coders: str = typer.Option(
        ..., "--from", help="Comma-separated human coders, e.g. alice,bob,carol."
    ),
    rule: str = typer.Option("majority", "--rule", help="majority (strict; ties left out)."),
    split: str | None = typer.Option(None, "--split", help="Only documents of this split (default: all)."),
    codebook: str | None = typer.Option(None, "--codebook", help="Codebook NAME (default: the coders')."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Build a gold coder from the strict majority label of human coders."""
    from annotator.metrics.gold import build_gold

    names = [c.strip() for c in from_coders.split(",") if c.strip()]
    result = build_gold(get_project(), name, names, rule=rule, split=split, codebook=codebook)
    if as_json:
        print_json(result)
        return
    console.print(
        f"gold coder {result['name']!r} ({result['rule']} of {', '.join(result['from'])}, {result['codebook']}): "
        f"{result['n_gold']} gold codes; left out: {result['n_ties']} ties, {result['n_no_majority']} without a "
        f"strict majority, {result['n_too_few']} coded by fewer than two (import run {result['run_id']})"
    )
    if result["ties"]:
        shown = ", ".join(result["ties"][:10]) + (" ..." if len(result["ties"]) > 10 else "")
        console.print(f"ties: {shown}")
