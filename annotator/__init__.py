"""annotator: validated LLM text coding for social scientists (the Törnberg 2024 pipeline)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("annotator")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"
