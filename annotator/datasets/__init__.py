"""Example data sets bundled with annotator (see :mod:`annotator.datasets.hutto`)."""

from annotator.datasets.hutto import CITATION, EXAMPLES, LICENSE_NAME, ExampleData, load_example

__all__ = ["CITATION", "EXAMPLES", "LICENSE_NAME", "ExampleData", "load_example"]
