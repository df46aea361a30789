"""codebook check | show | diff | list."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from annotator.cli.common import console, get_project, print_json, state, table

if TYPE_CHECKING:
    from annotator.codebook import Codebook

app = typer.Typer(
    help="Codebooks: labels, definitions and rules shared by humans and the LLM.", no_args_is_help=True
)


def _resolve(spec: str) -> tuple[Codebook, str]:
    """A codebook from a file path, a project codebook name, or NAME@VERSION from the database."""
    from annotator.codebook import load_codebook
    from annotator.errors import CodebookError
    from annotator.store.registry import project_codebook, stored_codebook

    path = Path(spec)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        return load_codebook(path), str(path)
    project = get_project(write=False)
    if "@" in spec:
        name, _, version = spec.partition("@")
        if not version.isdigit():
            raise CodebookError(f"{spec!r}: write NAME@VERSION with a whole number, e.g. sentiment@1")
        with project.transaction() as session:
            return stored_codebook(session, name, int(version)), spec
    return project_codebook(project, spec), str(project.codebook_path(spec))


@app.command("check")
def check(file: Path = typer.Argument(..., help="The codebook YAML file.")) -> None:
    """Report every problem in a codebook file, each with its line and field."""
    from annotator.codebook import check_codebook, load_codebook
    from annotator.errors import CodebookError

    problems = check_codebook(file)
    if not problems:
        codebook = load_codebook(file)
        console.print(
            f"{file}: ok ({codebook.ref}, {codebook.kind}, labels: {', '.join(codebook.allowed_labels)})"
        )
        return
    state.show_problems = True
    raise CodebookError(f"{file}: {len(problems)} problem(s); fix each and run the check again", problems)


@app.command("show")
def show(
    spec: str = typer.Argument(..., help="A file, a project codebook NAME, or NAME@VERSION (registered)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Print a codebook (canonical form)."""
    from annotator.codebook import to_yaml

    codebook, _ = _resolve(spec)
    if as_json:
        print_json(codebook.model_dump(mode="json") | {"sha256": codebook.sha256})
    else:
        console.print(f"# {codebook.ref}  sha256 {codebook.sha256[:12]}", markup=False)
        console.print(to_yaml(codebook), markup=False, end="")


@app.command("diff")
def diff(
    a: str = typer.Argument(..., help="File, NAME or NAME@VERSION."),
    b: str = typer.Argument(..., help="File, NAME or NAME@VERSION."),
) -> None:
    """Show what changed between two codebooks (e.g. `codebook diff sentiment@1 sentiment`)."""
    from annotator.codebook import codebook_diff

    cb_a, name_a = _resolve(a)
    cb_b, name_b = _resolve(b)
    text = codebook_diff(cb_a, cb_b, name_a, name_b)
    console.print(
        text or f"{name_a} and {name_b} have the same content", markup=False, end="" if text else "\n"
    )


@app.command("list")
def list_codebooks(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """The project's codebook files and the versions registered in the database."""
    from sqlmodel import col, select

    from annotator.codebook import load_codebook
    from annotator.errors import CodebookError
    from annotator.store.models import CodebookVersion
    from annotator.store.registry import codebook_files

    project = get_project(write=False)
    with project.transaction() as session:
        registered = session.exec(
            select(CodebookVersion).order_by(col(CodebookVersion.name), col(CodebookVersion.version))
        ).all()
    known = {(r.name, r.version): r.sha256 for r in registered}
    rows = []
    for path in codebook_files(project):
        try:
            cb = load_codebook(path)
        except CodebookError as exc:
            rows.append({"file": path.name, "codebook": "-", "labels": "-", "status": f"BROKEN: {exc}"})
            continue
        sha = known.get((cb.name, cb.version))
        status = "new" if sha is None else "registered" if sha == cb.sha256 else "CHANGED: bump its version"
        rows.append(
            {"file": path.name, "codebook": cb.ref, "labels": ", ".join(cb.allowed_labels), "status": status}
        )
    files = {(r["codebook"]) for r in rows}
    stored = [
        {
            "codebook": f"{r.name}@{r.version}",
            "sha256": r.sha256[:12],
            "registered": r.created_at.isoformat(timespec="seconds"),
        }
        for r in registered
        if f"{r.name}@{r.version}" not in files
    ]
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
            f"No codebooks in {project.codebooks_dir}; `annotator init DIR --example sentiment` shows one"
        )
