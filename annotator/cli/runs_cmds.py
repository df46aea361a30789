"""runs (list) | runs show | archive | restore | delete."""

from __future__ import annotations

import typer

from annotator.cli.common import console, get_project, print_json, table

runs_app = typer.Typer(help="LLM, baseline and import runs.", invoke_without_command=True)


def register(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="runs")


@runs_app.callback()
def runs(
    ctx: typer.Context,
    kind: str | None = typer.Option(None, "--kind", help="llm, human, gold or baseline."),
    show_all: bool = typer.Option(False, "--all", help="Archived runs too (marked as such)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List runs (LLM runs and baselines; --kind human for imports). A run whose process is gone (killed,
    crashed) shows as `stale (process gone)` with the answers it stored; `annotator run --resume N` continues
    it. A batch run whose batches are still at the provider shows as `waiting for batch` (`runs show N`: their
    state); `annotator run --resume N` collects them. Archived runs are left out unless --all."""
    if ctx.invoked_subcommand is not None:
        return
    from annotator.services.runs import list_runs

    rows = list_runs(get_project(write=False), kind, archived=show_all, imports=False)
    if as_json:
        print_json([r.to_json() for r in rows])
        return
    if not rows:
        console.print(
            "No runs yet: `annotator run --prompt CODEBOOK/NAME.vN --model local/smollm2 --sample 20`"
        )
        return
    console.print(
        table(
            None,
            [
                "id",
                "model",
                "prompt",
                "split",
                "status",
                "items",
                "ok",
                "invalid",
                "error",
                "cost",
                "started",
            ],
            [
                [
                    r.id,
                    r.model or r.coder,
                    r.prompt,
                    r.split,
                    _status_cell(r.status, r.archived),
                    r.items,
                    r.ok,
                    r.invalid,
                    r.error,
                    f"${r.cost_usd:.4f}",
                    r.started,
                ]
                for r in rows
            ],
        )
    )


def _status_cell(status: str, archived: str | None = None) -> str:
    shown = {"stale": "stale (process gone)", "batch": "waiting for batch"}.get(status, status)
    return f"{shown}, archived" if archived else shown


@runs_app.command("archive")
def runs_archive(run_id: int = typer.Argument(..., help="Run id (see `annotator runs`).")) -> None:
    """Hide a run from `annotator runs`, from the runs agreement, validate and compare take by default, and
    from the report; it stays in the database with every answer (provenance). `runs restore N` undoes it."""
    from annotator.services.runs import archive

    archive(get_project(), run_id)
    console.print(
        f"run {run_id} archived: hidden from listings, default comparisons and the report (`annotator runs "
        f"--all` still lists it; `annotator runs restore {run_id}` brings it back)"
    )


@runs_app.command("restore")
def runs_restore(
    run_id: int = typer.Argument(..., help="An archived run's id (`annotator runs --all`)."),
) -> None:
    """Bring an archived run back."""
    from annotator.services.runs import restore

    restore(get_project(), run_id)
    console.print(f"run {run_id} restored")


@runs_app.command("delete")
def runs_delete(
    run_id: int = typer.Argument(..., help="Run id (see `annotator runs`)."),
    yes: bool = typer.Option(False, "--yes", help="Delete without asking."),
) -> None:
    """Delete an LLM or baseline run and its answers, when no stored result (agreement, validate, compare)
    cites it; otherwise archive it. Asks first unless --yes."""
    import sys

    from annotator.errors import AnnotatorError
    from annotator.services.runs import delete, deletion_plan

    project = get_project()
    plan = deletion_plan(project, run_id)
    what = f"run {run_id} ({plan['kind']}, {plan['model']}) and its {plan['answers']} answers"
    if not yes:
        if not sys.stdin.isatty():
            raise AnnotatorError(f"deleting {what} cannot be undone: add --yes to confirm")
        if not typer.confirm(f"delete {what}? This cannot be undone", default=False):
            console.print("nothing deleted")
            raise typer.Exit(1)
    done = delete(project, run_id)
    console.print(f"deleted run {done.run_id} and its {done.answers} answers")


@runs_app.command("show")
def runs_show(
    run_id: int = typer.Argument(..., help="Run id (see `annotator runs`)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Everything about one run: model, parameters, versions, counts, labels, problems."""
    from annotator.services.runs import show_run

    info = show_run(get_project(write=False), run_id)
    if as_json:
        print_json(info.to_json())
        return
    frozen = f", frozen {info.prompt_frozen_at}" if info.prompt_frozen_at else ", not frozen"
    archived = f"  (archived {info.archived})" if info.archived else ""
    console.print(f"[bold]run {info.id}[/bold]  {info.kind}  {_status_cell(info.status)}{archived}")
    console.print(
        f"model {info.model or info.coder}; prompt {info.prompt}{frozen if info.prompt else ''}; "
        f"codebook {info.codebook}; split {info.split}",
        markup=False,
    )
    console.print(f"parameters {info.params}; sample {info.sample}", markup=False)
    console.print(
        f"items {info.items}: ok {info.ok}, invalid {info.invalid}, error {info.error}, "
        f"cached {info.cached}; tokens {info.tokens_in} in / {info.tokens_out} out; "
        f"cost ${info.cost_usd:.4f}; mean latency {_ms(info.mean_latency_ms)}",
        markup=False,
    )
    console.print(f"labels {info.labels}", markup=False)
    console.print(f"started {info.started}, finished {info.finished}; versions {info.versions}", markup=False)
    for problem in info.problems:
        console.print(f"  {problem['count']} x {problem['error']}", markup=False)
    if info.message:
        console.print(f"note: {info.message}", markup=False)


def _ms(value: float | None) -> str:
    return "n/a (no answer of its own was timed)" if value is None else f"{value} ms"
