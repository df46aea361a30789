"""Example data sets bundled with annotator (see :mod:`annotator.data.datasets.hutto`)."""

from annotator.data.datasets.hutto import CITATION, EXAMPLES, LICENSE_NAME, ExampleData, load_example

__all__ = ["CITATION", "EXAMPLES", "LICENSE_NAME", "ExampleData", "load_example"]
