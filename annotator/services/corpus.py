"""The project's documents and human codes, as the CLI asks for them: import a file of documents or of codes,
import a bundled example, split into dev and test, build a gold coder. Each loads, checks and stores in
annotator.data (one transaction each); this module is the services' name for them."""

from __future__ import annotations

from annotator.data.codes import import_codes
from annotator.data.corpus import import_documents
from annotator.data.example import import_example
from annotator.data.gold import build_gold
from annotator.data.splits import make_split

__all__ = ["build_gold", "import_codes", "import_documents", "import_example", "make_split"]
