"""quickstart: the whole pipeline on the bundled data, offline."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer

from annotator.cli.common import console, table
from annotator.textfmt import interval


def register(app: typer.Typer, run_cli: Callable[[list[str]], int]) -> None:
    """``run_cli`` runs one annotator command in-process (the CLI's main). It is handed in, as the command's
    context object, rather than imported: the CLI package imports this module, so importing it back here
    would be an import cycle."""
    app.command("quickstart", context_settings={"obj": run_cli})(quickstart)


def quickstart(
    ctx: typer.Context,
    folder: Path = typer.Argument(
        Path("quickstart-project"), help="Folder for the demo project (must not exist)."
    ),
    n: int = typer.Option(600, "--n", help="Sentences to import from the bundled Rotten Tomatoes data."),
    sample: int = typer.Option(40, "--sample", help="Dev sentences each prompt version labels."),
    force: bool = typer.Option(False, "--force", help="Replace a folder an earlier quickstart made."),
) -> None:
    """Run the whole pipeline on the bundled data with the offline model: import, split, two prompt versions
    on dev, agreement, freeze the better one, run it on test, baselines, validate, compare, export, report.

    Every step prints the command it runs, so you can repeat any of them on your own project.
    """
    from annotator.services.quickstart import latest_leaderboard, run_quickstart

    def say(text: str) -> None:
        console.print(text, markup=False)

    result = run_quickstart(folder, n, sample, force, cli=ctx.obj, say=say)
    board = latest_leaderboard(result.folder)
    rows = [
        [
            i + 1,
            f"run:{r['run_id']}",
            r.get("model") or "",
            r.get("prompt") or "",
            interval(r.get("accuracy"), missing="n/a"),
            interval(r.get("macro_f1"), missing="n/a"),
        ]
        for i, r in enumerate(board["runs"])
    ]
    console.print("\nleaderboard on the held-out test split (critics' labels as gold)", markup=False)
    console.print(table(None, ["rank", "run", "model", "prompt", "accuracy", "macro F1"], rows))
    console.print(f"\nfrozen prompt: {result.frozen}; its test run: run {result.llm_test_run}", markup=False)
    console.print(f"labels exported: {result.export}", markup=False)
    console.print(f"methods report: {result.report.resolve()}", markup=False)
    console.print(f"next: cd {result.folder} && annotator status", markup=False)
