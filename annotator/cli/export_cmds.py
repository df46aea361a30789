"""export."""

from __future__ import annotations

from pathlib import Path

import typer

from annotator.cli.common import console, get_project, print_json
from annotator.errors import InputError


def register(app: typer.Typer) -> None:
    app.command("export")(export)


def _run_id(text: str) -> int:
    value = text.strip().removeprefix("run:")
    if not value.isdigit():
        raise InputError(f"{text!r} is not a run id; give the number `annotator runs` shows, e.g. 7")
    return int(value)


def _repeat(text: str) -> int | None:
    value = text.strip().lower()
    if value == "all":
        return None
    if not value.isdigit():
        raise InputError(f"--repeat {text!r}: give a repeat number (0 is the first answer) or all")
    return int(value)


def export(
    run: str = typer.Argument(
        ..., metavar="RUN_ID", help="The run to export (its id, as `annotator runs` lists them)."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="The file to write, e.g. labels.csv or labels.dta."),
    fmt: str | None = typer.Option(
        None, "--format", help="csv, tsv, jsonl, parquet, xlsx or dta (Stata); default: from the file name."
    ),
    split: str = typer.Option("all", "--split", help="Only the documents of this split: dev, test or all."),
    repeat: str = typer.Option(
        "0",
        "--repeat",
        help="Which answer when the run labeled each text several times: 0 (the first) or all.",
    ),
    text: bool = typer.Option(False, "--text", help="Add the document text as a column."),
    meta: bool = typer.Option(False, "--meta", help="Add the document metadata as meta_<name> columns."),
    force: bool = typer.Option(False, "--force", help="Replace the file (and its sidecars) if it exists."),
    validated_only: bool = typer.Option(
        False,
        "--validated-only",
        help="Export only if the run's validation on the test split reaches --min-f1 and/or --min-alpha.",
    ),
    min_f1: float | None = typer.Option(
        None,
        "--min-f1",
        help="Smallest macro F1 against gold on the test split (from `annotator validate`); the point "
        "estimate is compared unless --conservative.",
    ),
    min_alpha: float | None = typer.Option(
        None,
        "--min-alpha",
        help="Smallest Krippendorff's alpha of the humans plus the run on the test split "
        "(from `annotator agreement --split test`).",
    ),
    conservative: bool = typer.Option(
        False,
        "--conservative",
        help="Hold the lower end of the 95% interval to the threshold instead of the point estimate.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Write a run's labels with their provenance (model, prompt, codebook, time) to a file.

    The codebook is written beside it (FILE.codebook.yaml), and a provenance record (FILE.provenance.json).
    The id and label columns are named so that `annotator import codes FILE --coder NAME` reads it back.
    An existing file (or sidecar) is not replaced unless --force is given; then nothing is written.
    """
    from annotator.services.export import export_run

    result = export_run(
        get_project(write=False),
        _run_id(run),
        out,
        fmt=fmt,
        split=split,
        repeat=_repeat(repeat),
        text=text,
        meta=meta,
        overwrite=force,
        min_f1=min_f1,
        min_alpha=min_alpha,
        conservative=conservative,
        validated_only=validated_only,
    )
    if as_json:
        print_json(result.to_json())
        return
    which = "every repeat" if result.repeat is None else f"repeat {result.repeat}"
    console.print(
        f"wrote {result.path} ({result.format}): {result.n_rows} rows of run {result.run_id}, split "
        f"{result.split}, {which}: {result.n_ok} ok, {result.n_invalid} invalid, {result.n_error} error",
        markup=False,
    )
    if result.codebook_path:
        console.print(f"codebook: {result.codebook_path}", markup=False)
    console.print(f"provenance: {result.provenance_path}", markup=False)
    if result.label_codes:
        codes = ", ".join(f"{i} = {name}" for i, name in result.label_codes.items())
        console.print(f"label codes (Stata value labels): {codes}", markup=False)
    for check in result.validation["checks"] if result.validation else []:
        console.print(check["line"], markup=False)
    for warning in result.warnings:
        console.print(f"warning: {warning}", markup=False)
