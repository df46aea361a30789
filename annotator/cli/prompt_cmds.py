"""prompt list | show | render | diff | new | freeze."""

from __future__ import annotations

from dataclasses import asdict

import typer

from annotator.cli.common import console, get_project, print_json, table

app = typer.Typer(
    help="Prompt templates: versioned, hashed, diffable; frozen before the test run.", no_args_is_help=True
)


@app.command("list")
def list_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every template in prompts/, with its hash and whether it is registered, frozen or changed."""
    from annotator.services.prompts import list_templates

    project = get_project(write=False)
    rows = [asdict(r) for r in list_templates(project)]
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
    from annotator.services import prompts

    project = get_project(write=False)
    if registered:
        console.print(prompts.registered_text(project, ref), markup=False, end="")
        return
    template = prompts.template(project, ref)
    console.print(f"# {template.path}  sha256 {template.sha256[:12]}", markup=False)
    console.print(template.text, markup=False, end="")


@app.command("render")
def render(
    ref: str = typer.Argument(..., help="CODEBOOK/NAME.vN, e.g. sentiment/zero-shot.v1."),
    doc: str | None = typer.Option(None, "--doc", help="Document id (default: the first document)."),
    as_json: bool = typer.Option(False, "--json", help="Print the messages as JSON."),
) -> None:
    """Show the exact messages the model would receive for one document."""
    from annotator.services.prompts import render as render_prompt

    rendered = render_prompt(get_project(write=False), ref, doc)
    if as_json:
        print_json(rendered.messages)
        return
    console.print(
        f"{rendered.template} for document {rendered.document} ({rendered.codebook.ref})", markup=False
    )
    for message in rendered.messages:
        console.rule(f"[bold]{message['role']}[/bold]", align="left")
        console.print(message["content"], markup=False)


@app.command("diff")
def diff(
    a: str = typer.Argument(..., help="First template."), b: str = typer.Argument(..., help="Second.")
) -> None:
    """Show what changed between two template versions."""
    from annotator.services import prompts

    text = prompts.diff(get_project(write=False), a, b)
    console.print(text or f"{a} and {b} are identical", markup=False, end="" if text else "\n")


@app.command("new")
def new(
    name: str = typer.Argument(..., help="New prompt: NAME, CODEBOOK/NAME, or CODEBOOK/NAME.vN."),
    from_ref: str = typer.Option(..., "--from", help="Template to start from."),
) -> None:
    """Start a new template (or the next version of one) as a copy of an existing template."""
    from annotator.services import prompts

    created = prompts.new(get_project(write=False), name, from_ref)
    console.print(f"created {created.path} ({created.ref})")


@app.command("freeze")
def freeze(ref: str = typer.Argument(..., help="CODEBOOK/NAME.vN to freeze.")) -> None:
    """Freeze a template: record that it is final. Only frozen prompts may run on the test split."""
    from annotator.services import prompts

    result = prompts.freeze(get_project(), ref)
    when = f"{result.frozen_at:%Y-%m-%d %H:%M:%S} UTC" if result.frozen_at else "?"
    console.print(
        f"{result.ref} {'frozen at' if result.froze else 'was already frozen at'} {when} "
        f"(sha256 {result.sha256[:12]})"
    )
