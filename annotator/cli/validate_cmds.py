"""validate and gold build."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from annotator.cli.common import console, get_project, print_json, run_ids, table
from annotator.textfmt import interval, number

if TYPE_CHECKING:
    from annotator.services.validation_result import Figures, Interval, RunEntry, Validation

gold_app = typer.Typer(help="Gold coders built from human coders.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
    app.add_typer(gold_app, name="gold")


def _coverage(fig: Figures | RunEntry) -> str:
    """Coverage with its counts: "0.967 (29/30)"."""
    if fig.get("coverage") is None:
        return "NaN"
    return f"{number(fig['coverage'])} ({fig['n_valid']}/{fig['n_gold']})"


def _interval(e: Interval | None) -> str:
    return interval(e)


def _headline_rows(label: str, fig: Figures | RunEntry) -> list[Any]:
    return [
        label,
        fig["n_gold"],
        _interval(fig.get("accuracy")),
        _interval(fig.get("macro_f1")),
        number(fig.get("weighted_f1")),
        _interval(fig.get("kappa")),
        _coverage(fig),
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
    gold: str | None = typer.Option(
        None,
        "--gold",
        help="The gold coder (imported with `import codes --gold` or built; default: the project's only gold coder).",
    ),
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
    """Accuracy, F1, kappa and the confusion matrix of each run against a gold coder, with intervals.

    Each run is scored on the gold items it was asked (its selected documents), with that n."""
    from annotator.services.validation import validate as compute

    result = compute(
        get_project(write=False),
        gold=gold,
        split=split,
        runs=run_ids(runs),
        by=by,
        n_boot=bootstrap,
        seed=seed,
        codebook=codebook,
    )
    if as_json:
        print_json(result.to_json())
        return
    _render(result)


def _render(result: Validation) -> None:
    """The result as tables: the runs' headline figures, then each run's; warnings, notes, metric ids."""
    console.print(
        f"validation against {result.gold} on {result.codebook} ({result.split} split, "
        f"{result.n_gold_split} gold items, each run scored on those it was asked; {result.n_boot} bootstrap "
        f"replicates, seed {result.seed}, {result.ci:.0%} intervals)"
    )
    scored = [r for r in result.runs if not r.get("asked_none")]
    if scored:
        console.print(
            table(
                "runs against gold (n: the gold items each run was asked)",
                HEAD,
                [_headline_rows(f"run:{r['run_id']} {r['model'] or r['kind']}", r) for r in scored],
            )
        )
    for r in result.runs:
        if r.get("asked_none"):
            console.print(r["line"], markup=False)
    for r in scored:
        _run_tables(r)
    for w in _warnings(scored):
        console.print(f"warning: {w}", markup=False)
    for note in result.notes:
        if not any(note in r.get("warnings", []) for r in scored):  # already printed as a warning
            console.print(f"note: {note}", markup=False)
    ids = ", ".join(str(r["metric_id"]) for r in scored if r.get("metric_id") is not None)
    if ids:
        console.print(f"stored as metric {ids}")
    elif not scored:
        console.print("nothing stored: no run was asked any of these gold items")


def _run_tables(r: RunEntry) -> None:
    """A scored run's per-class table, confusion matrix, groups and freeze statement."""
    n = r["n_gold"]
    console.print(
        table(
            f"run:{r['run_id']} per class (n = {n})",
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
                f"run:{r['run_id']} confusion (n = {n}; rows: gold, columns: run)",
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
        if r["by"].get("not_asked"):
            console.print(
                f"run:{r['run_id']} was asked no gold item of {r['by']['column']} = "
                + ", ".join(r["by"]["not_asked"]),
                markup=False,
            )
    if "frozen" in r:
        console.print(r["frozen"]["line"], markup=False)


def _warnings(runs: list[RunEntry]) -> list[str]:
    """Each distinct warning once; one that holds for some runs only names them."""
    seen: dict[str, list[int]] = {}
    for r in runs:
        for w in r.get("warnings", []):
            seen.setdefault(w, []).append(r["run_id"])
    return [
        w if len(ids) == len(runs) or f"run:{ids[0]}" in w else f"{w} (run {', '.join(map(str, ids))})"
        for w, ids in seen.items()
    ]


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
    from annotator.services.corpus import build_gold

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
