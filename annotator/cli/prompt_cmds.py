"""prompt list | show | render | diff | new | freeze."""

from __future__ import annotations

import typer

from annotator.cli.common import console, get_project, print_json, table

app = typer.Typer(
    help="Prompt templates: versioned, hashed, diffable; frozen before the test run.", no_args_is_help=True
)


@app.command("list")
def list_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every template in prompts/, with its hash and whether it is registered, frozen or changed."""
    from annotator.errors import TemplateError
    from annotator.prompts import list_prompts, load_prompt
    from annotator.store.registry import find_prompt_version, prompt_status

    project = get_project(write=False)
    rows = []
    with project.transaction() as session:
        for ref in list_prompts(project.prompts_dir):
            try:
                template = load_prompt(project.prompts_dir, ref)
            except TemplateError as exc:
                rows.append(
                    {"prompt": str(ref), "sha256": "-", "status": f"BROKEN: {exc}", "description": ""}
                )
                continue
            row = find_prompt_version(session, ref)
            status = prompt_status(session, template)
            if status == "frozen" and row and row.frozen_at:
                status = f"frozen {row.frozen_at:%Y-%m-%d %H:%M}"
            rows.append(
                {
                    "prompt": str(ref),
                    "sha256": template.sha256[:12],
                    "status": status,
                    "description": template.meta.description,
                }
            )
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print(
            f"No templates in {project.prompts_dir} (expected prompts/<codebook>/<name>.v<N>.jinja)"
        )
        return
    console.print(
        table(None, ["prompt", "sha256", "status", "description"], [list(r.values()) for r in rows])
    )


@app.command("show")
def show(
    ref: str = typer.Argument(..., help="CODEBOOK/NAME.vN, e.g. sentiment/zero-shot.v1."),
    registered: bool = typer.Option(False, "--registered", help="Print the text stored in the database."),
) -> None:
    """Print a template file (or, with --registered, the text registered for that version)."""
    from annotator.errors import TemplateError
    from annotator.prompts import load_prompt, parse_ref
    from annotator.store.registry import find_prompt_version

    project = get_project(write=False)
    if registered:
        with project.transaction() as session:
            row = find_prompt_version(session, parse_ref(ref))
        if row is None:
            raise TemplateError(f"{ref} is not registered yet (it is registered when first frozen or run)")
        console.print(row.body, markup=False, end="")
        return
    template = load_prompt(project.prompts_dir, ref)
    console.print(f"# {template.path}  sha256 {template.sha256[:12]}", markup=False)
    console.print(template.text, markup=False, end="")


@app.command("render")
def render(
    ref: str = typer.Argument(..., help="CODEBOOK/NAME.vN, e.g. sentiment/zero-shot.v1."),
    doc: str | None = typer.Option(None, "--doc", help="Document id (default: the first document)."),
    as_json: bool = typer.Option(False, "--json", help="Print the messages as JSON."),
) -> None:
    """Show the exact messages the model would receive for one document."""
    from sqlmodel import col, select

    from annotator.errors import InputError
    from annotator.prompts import DocumentInput, load_prompt
    from annotator.store.models import Document
    from annotator.store.registry import project_codebook

    project = get_project(write=False)
    template = load_prompt(project.prompts_dir, ref)
    codebook = project_codebook(project, template.ref.codebook)
    with project.transaction() as session:
        query = select(Document).order_by(col(Document.id))
        document = session.exec(query if doc is None else query.where(col(Document.doc_key) == doc)).first()
    if document is None:
        if doc is None:
            raise InputError("no documents yet; import some first (`annotator import docs FILE`)")
        raise InputError(f"no document with id {doc!r}; `annotator status` shows how many are imported")
    messages = template.render(
        codebook, DocumentInput(id=document.doc_key, text=document.text, meta=document.meta)
    )
    if as_json:
        print_json(messages)
        return
    console.print(f"{template.ref} for document {document.doc_key} ({codebook.ref})", markup=False)
    for message in messages:
        console.rule(f"[bold]{message['role']}[/bold]", align="left")
        console.print(message["content"], markup=False)


@app.command("diff")
def diff(
    a: str = typer.Argument(..., help="First template."), b: str = typer.Argument(..., help="Second.")
) -> None:
    """Show what changed between two template versions."""
    from annotator.prompts import load_prompt, prompt_diff

    project = get_project(write=False)
    text = prompt_diff(load_prompt(project.prompts_dir, a), load_prompt(project.prompts_dir, b))
    console.print(text or f"{a} and {b} are identical", markup=False, end="" if text else "\n")


@app.command("new")
def new(
    name: str = typer.Argument(..., help="New prompt: NAME, CODEBOOK/NAME, or CODEBOOK/NAME.vN."),
    from_ref: str = typer.Option(..., "--from", help="Template to start from."),
) -> None:
    """Start a new template (or the next version of one) as a copy of an existing template."""
    from annotator.prompts import new_prompt

    project = get_project(write=False)
    ref = new_prompt(project.prompts_dir, name, from_ref)
    console.print(
        f"created {project.prompts_dir / ref.codebook / f'{ref.name}.v{ref.version}.jinja'} ({ref})"
    )


@app.command("freeze")
def freeze(ref: str = typer.Argument(..., help="CODEBOOK/NAME.vN to freeze.")) -> None:
    """Freeze a template: record that it is final. Only frozen prompts may run on the test split."""
    from annotator.store.registry import freeze_prompt

    row, froze = freeze_prompt(get_project(), ref)
    when = f"{row.frozen_at:%Y-%m-%d %H:%M:%S} UTC" if row.frozen_at else "?"
    console.print(
        f"{row.ref} {'frozen at' if froze else 'was already frozen at'} {when} (sha256 {row.sha256[:12]})"
    )
