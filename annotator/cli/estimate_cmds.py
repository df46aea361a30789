"""estimate (three-way shares, groups, regressions, --across-runs) and plan-gold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from annotator.cli.common import console, get_project, print_json, run_ids, table
from annotator.textfmt import number

GOLD = typer.Option(None, "--gold", help="The gold coder (default: the project's only one).")
SPLIT = typer.Option("all", "--split", help="dev, test or all: the run's documents of that split.")


def register(app: typer.Typer) -> None:
    app.command("estimate")(estimate)
    app.command("plan-gold")(plan_gold)


def _ci(e: dict[str, Any] | None) -> str:
    if not e or e.get("estimate") is None:
        return "n/a"
    return f"{number(e['estimate'])} [{number(e['lower'])}, {number(e['upper'])}]"


def _label_rows(labels: list[Any]) -> list[list[Any]]:
    rows = []
    for e in labels:
        gold_n = e.gold_only["n_gold"] if e.gold_only else None
        rows.append(
            [
                e.label,
                _ci(e.gold_only),
                gold_n,
                _ci(e.llm_only) + " (not corrected)",
                e.llm_only["n_unlabeled"],
                _ci(e.llm_bias),
                _ci(e.ppi),
                number(e.census) if e.census is not None else e.error or "",
            ]
        )
    return rows


COLUMNS = [
    "label",
    "gold only",
    "n gold",
    "LLM only",
    "n docs",
    "LLM bias (on gold)",
    "prediction-powered",
    "",
]


def estimate(
    run: int | None = typer.Option(None, "--run", help="The LLM or baseline run whose labels are used."),
    gold: str | None = GOLD,
    split: str = SPLIT,
    by: str | None = typer.Option(None, "--by", help="A metadata column: each group, and their differences."),
    label: str | None = typer.Option(None, "--label", help="Only these labels (comma list)."),
    regress: str | None = typer.Option(
        None, "--regress", help="A regression with PPI intervals, e.g. 'label=positive ~ year + party'."
    ),
    linear: bool = typer.Option(False, "--linear", help="--regress: a linear model (default logistic)."),
    gold_sample: int | None = typer.Option(
        None, "--gold-sample", help="Draw a random sample of N gold items (seeded) and use only those."
    ),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of --gold-sample."),
    strata: str | None = typer.Option(
        None, "--strata", help="A metadata column: the gold sample is stratified by it (design weights)."
    ),
    assume_random: bool = typer.Option(
        False, "--assume-random", help="Say that the gold documents were drawn at random (see --help)."
    ),
    across_runs: bool = typer.Option(
        False, "--across-runs", help="The estimate under every run of the codebook (or --runs), side by side."
    ),
    runs: str | None = typer.Option(None, "--runs", help="--across-runs: these runs, e.g. 3,5,9."),
    alpha: float = typer.Option(0.05, "--alpha", help="1 - the intervals' level (0.05: 95%)."),
    out: Path | None = typer.Option(None, "--out", help="Also write the estimates to a .csv or .json file."),
    force: bool = typer.Option(False, "--force", help="--out: replace the file if it exists."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The share of each label in a run's documents three ways, with 95% intervals and their n: gold only; the
    LLM's labels alone (not bias-corrected); and prediction-powered (PPI++), the LLM's labels on every document
    corrected with the gold items. PPI needs the gold items to be a random sample of the run's documents: the
    design assumed is printed, and an unknown one is refused (--gold-sample draws one; --assume-random says
    the gold documents were drawn at random)."""
    from annotator.services import estimate as service

    project = get_project()
    if out is not None:
        service.check_out(out, force)  # before anything is computed or stored
    labels = [x.strip() for x in label.split(",")] if label else None
    design = {"gold_sample": gold_sample, "seed": seed, "strata": strata, "assume_random": assume_random}
    settings = {"run": run, "runs": runs, "gold": gold, "split": split, "by": by, "labels": labels, "alpha": alpha,
                "regress": regress, "linear": linear, **design}  # fmt: skip
    if across_runs:
        from annotator.services.estimate_runs import across_runs as across

        result: Any = across(
            project, run_ids(runs), labels[0] if labels else None, gold, split, by, alpha, **design
        )
        _write(out, result.to_json(), _across_rows(result), force)
        service.record(project, "estimate_runs", result.to_json(), None, split, settings)
        print_json(result.to_json()) if as_json else _show_across(result)
        return
    if run is None:
        from annotator.errors import InputError

        raise InputError("say which run with --run N (`annotator runs` lists them), or --across-runs")
    result = service.estimate(
        project,
        run,
        gold,
        split,
        by,
        labels,
        alpha,
        gold_sample,
        seed,
        strata,
        assume_random,
        regress,
        linear,
    )
    _write(out, result.to_json(), _flat_rows(result), force)
    service.record(project, "estimate", result.to_json(), run, split, settings)
    print_json(result.to_json()) if as_json else _show(result)


def _flat_rows(result: Any) -> list[dict[str, Any]]:
    rows = []
    for group, labels in [("", result.labels), *[(g.group, g.labels) for g in result.groups]]:
        for e in labels:
            for method in ("gold_only", "llm_only", "llm_bias", "ppi"):
                fig = getattr(e, method)
                if fig:
                    rows.append({"run": result.run_id, "group": group, "label": e.label, "method": method,
                                 **{k: fig[k] for k in ("estimate", "lower", "upper", "se", "n_gold", "n_unlabeled")},
                                 "design": result.design})  # fmt: skip
    return rows


def _across_rows(result: Any) -> list[dict[str, Any]]:
    return [
        {"run": f.run_id, "model": f.model, "prompt": f.prompt, "label": result.label,
         **{f"share_{k}": (f.share or {}).get(k) for k in ("estimate", "lower", "upper")},
         **{f"difference_{k}": (f.difference or {}).get(k) for k in ("estimate", "lower", "upper")},
         "skipped": f.skipped}
        for f in result.runs
    ]  # fmt: skip


def _write(out: Path | None, data: dict[str, Any], rows: list[dict[str, Any]], force: bool) -> None:
    from annotator.services.estimate import write_estimates

    if out is not None:
        write_estimates(out, data, rows, force)
        console.print(f"wrote {out}")


def _show(result: Any) -> None:
    level = round(100 * (1 - result.alpha))
    console.print(
        f"run {result.run_id} ({result.model}, {result.prompt}) on the "
        + ("documents it was asked" if result.split == "all" else f"{result.split} documents it was asked")
        + ": "
        f"{result.n_documents} documents, {result.n_gold} gold items ({result.gold}); {level}% intervals",
        markup=False,
    )
    console.print(f"design: {result.design_statement}", markup=False)
    columns = [*COLUMNS[:-1], "every gold code" if any(e.census is not None for e in result.labels) else ""]
    console.print(table("share of each label", columns, _label_rows(result.labels)))
    for g in result.groups:
        console.print(table(f"{result.by} = {g.group} ({g.n_documents} documents, {g.n_gold} gold)", columns,
                            _label_rows(g.labels)))  # fmt: skip
    if result.differences:
        rows = [[d["label"], f"{d['groups'][0]} - {d['groups'][1]}", _ci(d["gold_only"]), _ci(d["llm_only"]),
                 _ci(d["ppi"])] for d in result.differences]  # fmt: skip
        console.print(
            table("differences between groups", ["label", "groups", "gold only", "LLM only", "PPI"], rows)
        )
    if result.regression:
        r = result.regression
        rows = [[p["term"], _ci(p), _ci(g)] for p, g in zip(r["ppi"], r["gold_only"], strict=True)]
        title = (
            f"{r['model']} regression of {r['outcome']!r} ({r['n_documents']} documents, {r['n_gold']} gold)"
        )
        console.print(table(title, ["term", "PPI", "gold only"], rows))
    console.print(
        "LLM only is the run's labels as they are: its interval ignores the LLM's errors (see its bias on the gold "
        "items); the prediction-powered estimate corrects them and covers the true share at the nominal rate when "
        "the design holds.",
        markup=False,
    )
    for note in result.notes:
        console.print(f"note: {note}", markup=False)


def _show_across(result: Any) -> None:
    rows = [
        [f.run_id, f.model or "", f.prompt or "", f.n_documents, f.n_gold, _ci(f.share),
         _ci(f.difference) if result.groups else "", f.skipped or ""]
        for f in result.runs
    ]  # fmt: skip
    diff = f"{result.groups[0]} - {result.groups[1]}" if result.groups else ""
    console.print(table(f"share of {result.label!r}, prediction-powered, per run",
                        ["run", "model", "prompt", "docs", "gold", "share", diff, "skipped"], rows))  # fmt: skip
    console.print(f"verdict: {result.verdict}", markup=False)


def plan_gold(
    run: int = typer.Option(..., "--run", help="The run whose gold items are the pilot."),
    target_width: float = typer.Option(0.05, "--target-width", help="The interval's total width on a share."),
    gold: str | None = GOLD,
    split: str = SPLIT,
    alpha_width: float | None = typer.Option(
        None,
        "--alpha-width",
        help="Also: units to double-code for a Krippendorff's alpha interval this wide.",
    ),
    coders: str | None = typer.Option(None, "--coders", help="--alpha-width: the human coders of the pilot."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """How many documents humans must code: the gold items for a prediction-powered interval of the target
    width on each label's share (beside gold only), planned from the gold items the run was asked; with
    --alpha-width, the units to double-code for an alpha interval of that width."""
    from annotator.services.plan_gold import plan_gold as service

    names = [c.strip() for c in coders.split(",")] if coders else None
    result = service(
        get_project(write=False), run, target_width, gold, split, alpha_width=alpha_width, coders=names
    )
    if as_json:
        print_json(result.to_json())
        return
    rows = [
        [r["label"], r.get("n_gold", ""), r.get("n_gold_only", ""), number(r.get("pilot_share")), r.get("error", "")]
        for r in result.labels
    ]  # fmt: skip
    console.print(table(f"gold items for a {result.target_width:g}-wide 95% interval on each share",
                        ["label", "with PPI", "gold only", "pilot share", ""], rows))  # fmt: skip
    beyond = [r["label"] for r in result.labels if r.get("n_gold", 0) > result.n_documents]
    if beyond:
        console.print(
            f"note: for {', '.join(beyond)} that is more than the run's {result.n_documents} documents: this width "
            "cannot be reached on them (ask for a wider interval, or label more documents)",
            markup=False,
        )
    assumed = next((r["assumptions"] for r in result.labels if "assumptions" in r), "")
    console.print(
        f"pilot: {result.pilot_n} gold items of {result.gold} among run {result.run_id}'s {result.n_documents} "
        f"documents. Assumed: {assumed}",
        markup=False,
    )
    if result.alpha_plan:
        a = result.alpha_plan
        console.print(
            f"alpha: {a['units']} units coded by each of {', '.join(a['coders'])} for a {a['target_width']:g}-wide "
            f"interval (simulated width {a['simulated_width']:.3f}; pilot: {a['pilot_units']} units, alpha "
            f"{a['pilot_alpha']:.3f}). Assumed: {a['assumptions']}",
            markup=False,
        )
