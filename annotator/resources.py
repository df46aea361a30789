"""Where the files shipped with annotator live: in a wheel they sit inside the package
(``annotator/_migrations``, ``annotator/_examples``); in a source checkout at the repository root."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _find(inside: str, at_root: str) -> Path:
    packaged = _PACKAGE / inside
    if packaged.is_dir():
        return packaged
    source = _PACKAGE.parent / at_root
    if source.is_dir():
        return source
    raise RuntimeError(f"annotator is installed without its {at_root}/ folder (looked in {packaged})")


def migrations_dir() -> Path:
    return _find("_migrations", "migrations")


def example_codebooks_dir() -> Path:
    return _find("_examples/codebooks", "codebooks")


def example_prompts_dir() -> Path:
    return _find("_examples/prompts", "prompts")
