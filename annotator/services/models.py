"""The models annotator knows: the local LLM(s) and the baselines' sentence encoders (pull one into the model
store once, offline afterwards; list them with whether each is pulled), and each provider's priced models."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from annotator.baselines import hub
from annotator.llm import local

Progress = Callable[[str], None]


def known() -> list[str]:
    """Every name `annotator models pull` takes, sorted."""
    return sorted([*local.LOCAL_MODELS, *hub.ENCODERS])


def pull(name: str, progress: Progress | None = None) -> Path:
    """Fetch model ``name`` (an LLM or an encoder) unless it is there already; returns where it lies."""
    if name not in hub.ENCODERS and name not in local.LOCAL_MODELS:
        raise local.ModelError(f"unknown model {name!r}: `annotator models pull` knows {', '.join(known())}")
    if name in hub.ENCODERS:
        return hub.pull_encoder(name, progress=progress)
    return local.pull(name, progress=progress)


def list_models() -> list[dict[str, Any]]:
    """One row per model: the LLMs (kind llm) first, then the encoders, each with whether it is pulled."""
    rows = [
        {"name": r["name"], "kind": "llm", **{k: v for k, v in r.items() if k != "name"}}
        for r in local.list_models()
    ]
    return rows + hub.list_encoders()


def provider_models(provider: str, prices: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """``provider``'s models with their prices (USD per million tokens; ``prices``: a project's [prices]); for
    ``local``, the local LLMs as `list_models` shows them."""
    from annotator.llm.providers import priced_models

    if provider == "local":
        return [r for r in list_models() if r["kind"] == "llm"]
    return priced_models(provider, prices)
