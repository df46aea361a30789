"""The software a result was made with, stored with each run: Python's version and the installed version of
each package that took part in producing its answers (the caller names them)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version


def software_versions(packages: Iterable[str]) -> dict[str, str]:
    """Python's version and each named package's installed version (those not installed are left out)."""
    found = {"python": sys.version.split()[0]}
    for name in packages:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found
