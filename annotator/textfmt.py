"""Figures as the command line and one-line messages print them: "0.812" and "0.812 [0.770, 0.851]"."""

from __future__ import annotations

from typing import Any


def number(x: float | None, digits: int = 3, missing: str = "NaN") -> str:
    return missing if x is None else f"{x:.{digits}f}"


def interval(e: dict[str, Any] | None, digits: int = 3, missing: str = "NaN") -> str:
    """An estimate with its interval (from a dict with estimate, low, high); the estimate alone when the
    interval is missing; ``missing`` when there is no estimate."""
    if not e or e.get("estimate") is None:
        return missing
    if e.get("low") is None or e.get("high") is None:
        return number(e["estimate"], digits, missing)
    text = f"{number(e['estimate'], digits)} [{number(e['low'], digits)}, {number(e['high'], digits)}]"
    if e.get("unreliable"):
        text += (
            f" (interval unreliable: {100 * (e.get('undefined_share') or 0):.0f}% of replicates undefined)"
        )
    return text
