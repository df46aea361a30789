"""annotator: validated LLM text coding for social scientists (the Törnberg 2024 pipeline)."""

from typing import Any


def __getattr__(name: str) -> Any:
    """``annotator.__version__``, looked up when asked for: importlib.metadata costs ~20 ms of every command."""
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("annotator")
        except PackageNotFoundError:  # running from a source tree that is not installed
            return "0.0.0+source"
    raise AttributeError(f"module 'annotator' has no attribute {name!r}")
