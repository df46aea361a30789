"""codebook check | show | diff | list."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import typer

from annotator.cli.common import console, get_project, print_json, state, table

app = typer.Typer(
    help="Codebooks: labels, definitions and rules shared by humans and the LLM.", no_args_is_help=True
)


@app.command("check")
def check(file: Path = typer.Argument(..., help="The codebook YAML file.")) -> None:
    """Report every problem in a codebook file, each with its line and field."""
    from annotator.errors import CodebookError
    from annotator.services.codebooks import check_file

    result = check_file(file)
    if result.codebook is not None:
        codebook = result.codebook
        console.print(
            f"{file}: ok ({codebook.ref}, {codebook.kind}, labels: {', '.join(codebook.allowed_labels)})"
        )
        return
    state.show_problems = True  # this one command lists every problem (main() resets it per invocation)
    raise CodebookError(
        f"{file}: {len(result.problems)} problem(s); fix each and run the check again", result.problems
    )


@app.command("show")
def show(
    spec: str = typer.Argument(..., help="A file, a project codebook NAME, or NAME@VERSION (registered)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Print a codebook (canonical form)."""
    from annotator.services.codebooks import canonical_yaml, resolve

    codebook, _ = resolve(spec, lambda: get_project(write=False))
    if as_json:
        print_json(codebook.model_dump(mode="json") | {"sha256": codebook.sha256})
    else:
        console.print(f"# {codebook.ref}  sha256 {codebook.sha256[:12]}", markup=False)
        console.print(canonical_yaml(codebook), markup=False, end="")


@app.command("diff")
def diff(
    a: str = typer.Argument(..., help="File, NAME or NAME@VERSION."),
    b: str = typer.Argument(..., help="File, NAME or NAME@VERSION."),
) -> None:
    """Show what changed between two codebooks (e.g. `codebook diff sentiment@1 sentiment`)."""
    from annotator.services import codebooks

    cb_a, name_a = codebooks.resolve(a, lambda: get_project(write=False))
    cb_b, name_b = codebooks.resolve(b, lambda: get_project(write=False))
    text = codebooks.diff(cb_a, cb_b, name_a, name_b)
    console.print(
        text or f"{name_a} and {name_b} have the same content", markup=False, end="" if text else "\n"
    )


@app.command("list")
def list_codebooks(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """The project's codebook files and the versions registered in the database."""
    from annotator.services.codebooks import codebook_status

    result = codebook_status(get_project(write=False))
    rows = [asdict(f) for f in result.files]
    stored = [asdict(v) for v in result.older_versions]
    if as_json:
        print_json({"files": rows, "older_versions": stored})
        return
    console.print(
        table("codebook files", ["file", "codebook", "labels", "status"], [list(r.values()) for r in rows])
    )
    if stored:
        console.print(
            table(
                "older registered versions",
                ["codebook", "sha256", "registered"],
                [list(r.values()) for r in stored],
            )
        )
    if not rows:
        console.print(
            f"No codebooks in {result.codebooks_dir}; `annotator init DIR --example sentiment` shows one"
        )
