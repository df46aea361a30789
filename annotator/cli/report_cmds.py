"""report."""

from __future__ import annotations

from pathlib import Path

import typer

from annotator.cli.common import console, get_project


def register(app: typer.Typer) -> None:
    app.command("report")(report)


def report(
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="File to write: report.html (one self-contained page) or report.md (Markdown). "
        "Default: report.html in the current folder.",
    ),
    fmt: str | None = typer.Option(
        None, "--format", help="html or md, when the file name does not end in .html or .md."
    ),
    force: bool = typer.Option(False, "--force", help="Replace the file if it exists."),
) -> None:
    """Write a methods appendix: data, splits, codebook and prompts in full, models, runs, reliability,
    validation, baselines, prompt freezing, cost and software versions, read from the stored results.

    An existing file is not replaced unless --force is given."""
    from annotator.report import build_report, default_out

    path = build_report(
        get_project(write=False), out if out is not None else default_out(fmt), fmt, overwrite=force
    )
    console.print(str(path), markup=False, highlight=False)
