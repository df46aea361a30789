"""Pure statistics on arrays (numpy, scipy, scikit-learn): reliability, intervals and the bootstrap, tests,
paired figures. Nothing here imports the rest of annotator (tests/test_layers.py holds it to that); bad codes
raise :class:`DataError`, a ValueError the CLI prints as a user error."""

from annotator.stats.errors import DataError

# default minimum overlap below which a comparison is "too few units (n)"; here rather than in intervals so that
# the CLI can show it as a default without importing numpy
MIN_UNITS = 30

__all__ = ["MIN_UNITS", "DataError"]
