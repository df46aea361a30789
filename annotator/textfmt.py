"""Figures as people read them, for every face of the tool: the command line and one-line messages
("0.812", "0.812 [0.770, 0.851]") and the HTML and Markdown reports, whose filters in
``annotator.report.fmt`` are these functions with two decimals and "n/a" for a missing figure.

This is the one home of number formatting: a figure that could not be computed (None, a bool, text that is
not a number, NaN or an infinity) is ``missing``, never "nan", and a value that rounds to zero is never
printed as "-0.00". (``annotator.stats`` may import nothing of annotator, so its own message text keeps a few
formatters of its own.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

NA = "n/a"  # a missing figure in the reports
NAN = "NaN"  # a missing figure on the command line


def _finite(x: Any) -> float | None:
    if x is None or isinstance(x, bool):
        return None
    try:
        value = float(x)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def number(x: Any, digits: int = 3, missing: str = NAN) -> str:
    """A number with ``digits`` decimals; ``missing`` when there is none."""
    value = _finite(x)
    if value is None:
        return missing
    return f"{round(value, digits) + 0.0:.{digits}f}"  # + 0.0: no "-0.00"


def interval(
    e: Mapping[str, Any] | None,
    digits: int = 3,
    missing: str = NAN,
    *,
    too_few: bool = False,
    brief: bool = False,
) -> str:
    """An estimate with its interval (from a dict with estimate, low, high): "0.812 [0.770, 0.851]"; the
    estimate alone when the interval is missing; ``missing`` when there is no estimate.

    ``too_few``: a figure left uncomputed on too small an overlap shows its reason ("too few units (...)")
    instead of ``missing``. An interval whose bootstrap left too many replicates undefined is marked, with the
    share of undefined replicates unless ``brief``.
    """
    if not isinstance(e, dict):
        return missing
    if e.get("estimate") is None:
        reason = e.get("reason")
        return (
            reason if too_few and isinstance(reason, str) and reason.startswith("too few units") else missing
        )
    if e.get("low") is None or e.get("high") is None:
        return number(e["estimate"], digits, missing)
    text = (
        f"{number(e['estimate'], digits, missing)} "
        f"[{number(e['low'], digits, missing)}, {number(e['high'], digits, missing)}]"
    )
    if not e.get("unreliable"):
        return text
    if brief:
        return text + " (interval unreliable)"
    share = 100 * (e.get("undefined_share") or 0)
    return text + f" (interval unreliable: {share:.0f}% of replicates undefined)"


def percent(x: Any, digits: int = 0, missing: str = NA) -> str:
    """A share as a percentage: 0.25 -> "25%"."""
    value = _finite(x)
    return missing if value is None else f"{100 * value:.{digits}f}%"


def count(x: Any, missing: str = NA) -> str:
    """A whole number with thousands separators: "12,345"; text that is not a number as it is."""
    if x is None:
        return missing
    try:
        return f"{int(x):,}"
    except (TypeError, ValueError, OverflowError):  # OverflowError: an infinity
        return str(x)


def usd(x: Any, missing: str = NA) -> str:
    """A cost in US dollars: "$0" or "$1,234.5678"."""
    try:
        value = float(x)
    except (TypeError, ValueError):
        return missing
    return "$0" if value == 0 else f"${value:,.4f}"


def duration(seconds: Any, missing: str = NA) -> str:
    """Seconds as "12.3 s", "4.5 min" or "1.25 h"."""
    try:
        s = float(seconds)
    except (TypeError, ValueError):
        return missing
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.2f} h"
