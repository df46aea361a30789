"""init, status, db."""

from __future__ import annotations

from pathlib import Path

import typer

from annotator.cli.common import console, get_project, print_json, table

db_app = typer.Typer(help="The project database: schema version and migrations.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("status")(status)
    app.add_typer(db_app, name="db")


def init(
    folder: Path = typer.Argument(..., help="Folder to create (or an empty existing one)."),
    example: str | None = typer.Option(
        None, "--example", "-e", help="Copy a shipped codebook and its prompts: sentiment or stance."
    ),
    name: str | None = typer.Option(None, help="Project name (default: the folder name)."),
) -> None:
    """Create a project: annotator.toml, codebooks/, prompts/ and a migrated annotator.db."""
    from annotator.project import init_project

    project = init_project(folder, name=name, example=example)
    console.print(f"Created project {project.name!r} in {project.root}")
    if example:
        console.print(f"  with the {example} codebook and its prompts")
    console.print(
        f"Next: cd {folder} && annotator import example rotten-tomatoes  (or: annotator import docs FILE)"
    )


def status(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Documents per split, coders and their codes, runs."""
    from annotator.services.status import project_status

    info = project_status(get_project(write=False))
    if as_json:
        print_json(info.to_json())
        return
    docs = info.documents
    console.print(f"[bold]{info.project}[/bold]  {info.database}  (schema {info.schema})")
    console.print(
        f"documents: {docs['total']}  dev {docs['dev']}  test {docs['test']}  unassigned {docs['unassigned']}"
    )
    if info.split:
        sp = info.split
        how = f", stratified by {sp['stratify']}" if sp["stratify"] else ""
        forced = " (forced re-split)" if sp["forced"] else ""
        console.print(f"split: test share {sp['test_fraction']}, seed {sp['seed']}{how}, {sp['at']}{forced}")
    if info.coders:
        rows = [[c["name"], c["kind"], c["runs"], c["codes"], c["dev"], c["test"]] for c in info.coders]
        console.print(table("coders", ["coder", "kind", "runs", "codes", "dev", "test"], rows))
    coded = [r for r in info.runs if r["kind"] not in ("human", "gold")]  # imports are in the coders table
    if coded:
        rows = [
            [r["id"], r["coder"], r["kind"], r["codebook"], r["model"], r["split"], r["status"], r["items"]]
            for r in coded
        ]
        console.print(
            table("runs", ["id", "coder", "kind", "codebook", "model", "split", "status", "items"], rows)
        )
    if info.archived_runs:
        console.print(f"{info.archived_runs} archived run(s) not shown (`annotator runs --all` lists them)")
    if info.prompts:
        rows = [[p["ref"], p["sha256"], p["frozen_at"] or "-"] for p in info.prompts]
        console.print(table("prompts used", ["prompt", "sha256", "frozen"], rows))
    if not docs["total"]:
        console.print("No documents yet: `annotator import docs FILE --text COL --id COL`")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database to the current schema (done automatically whenever a project opens)."""
    from annotator.services import database

    done = database.upgrade(get_project())
    console.print(f"{done.database}: schema {done.before or 'empty'} -> {done.after}")


@db_app.command("current")
def db_current() -> None:
    """Show the database's schema revision and the newest one this annotator knows."""
    from annotator.services import database

    rev = database.current(get_project(write=False))
    console.print(f"{rev.database}: schema {rev.current or 'empty'} (head {rev.head})")


@db_app.command("downgrade")
def db_downgrade(revision: str = typer.Argument(..., help="Target revision, e.g. base or 0001.")) -> None:
    """Migrate the schema back (for developers; data in dropped tables is lost)."""
    from annotator.services import database

    done = database.downgrade(get_project(), revision)
    console.print(f"{done.database}: schema now {done.after or 'empty'}")
