"""Formatting and redaction shared by the HTML and Markdown reports.

Numbers: coefficients with two decimals and intervals as "0.81 [0.77, 0.85]"; a figure that could not be
computed is "n/a". Redaction: the report is meant to be shared with reviewers, so anything that looks like a
credential is removed twice: from the stored JSON before rendering (keys named like secrets, user:password
in URLs, key-shaped strings) and from the rendered text (the values of secret-looking environment variables
and of the project's ``.env``).
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from typing import Any

from annotator.redaction import (  # the report's redaction is the tool's one rule (see annotator.redaction)
    REDACTED,
    is_secret_key,
    known_secrets,
    redact,
    remove_secrets,
    scrub_text,
)
from annotator.store.models import as_utc as utc

__all__ = ["REDACTED", "is_secret_key", "known_secrets", "redact", "remove_secrets", "scrub_text"]

NA = "n/a"

# -- numbers and times ---------------------------------------------------------------------------------


def num(x: Any, digits: int = 2) -> str:
    if x is None or isinstance(x, bool):
        return NA
    try:
        value = float(x)
    except (TypeError, ValueError):
        return NA
    if not math.isfinite(value):
        return NA
    return f"{round(value, digits) + 0.0:.{digits}f}"  # + 0.0: no "-0.00"


def ci(e: dict[str, Any] | None, digits: int = 2) -> str:
    """An estimate with its interval: "0.81 [0.77, 0.85]"; "too few units (n; ...)" for a figure left
    uncomputed on too small an overlap; "n/a" when it could not be computed for another reason. An interval
    whose bootstrap left too many replicates undefined is marked."""
    if not isinstance(e, dict):
        return NA
    if e.get("estimate") is None:
        reason = e.get("reason")
        return reason if isinstance(reason, str) and reason.startswith("too few units") else NA
    if e.get("low") is None or e.get("high") is None:
        return num(e["estimate"], digits)
    text = f"{num(e['estimate'], digits)} [{num(e['low'], digits)}, {num(e['high'], digits)}]"
    return text + " (interval unreliable)" if e.get("unreliable") else text


def pct(x: Any, digits: int = 0) -> str:
    if x is None:
        return NA
    try:
        value = float(x)
    except (TypeError, ValueError):
        return NA
    return f"{100 * value:.{digits}f}%" if math.isfinite(value) else NA


def count(x: Any) -> str:
    if x is None:
        return NA
    try:
        return f"{int(x):,}"
    except (TypeError, ValueError):
        return str(x)


def usd(x: Any) -> str:
    try:
        value = float(x)
    except (TypeError, ValueError):
        return NA
    return "$0" if value == 0 else f"${value:,.4f}"


def when(t: datetime | str | None) -> str:
    """A time as "2024-05-01 12:03:04 UTC" (stored times are UTC)."""
    if t is None:
        return NA
    if isinstance(t, str):
        try:
            value = utc(datetime.fromisoformat(t))
        except ValueError:
            return t
    elif isinstance(t, datetime):
        value = utc(t)
    else:
        return str(t)
    assert value is not None
    return f"{value:%Y-%m-%d %H:%M:%S} UTC"


def duration(seconds: Any) -> str:
    try:
        s = float(seconds)
    except (TypeError, ValueError):
        return NA
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.2f} h"


def as_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def kv(value: dict[str, Any] | None) -> list[tuple[str, str]]:
    """A mapping as (key, value) rows: scalars as text, nested values as one-line JSON."""
    rows = []
    for key, v in sorted((value if isinstance(value, dict) else {}).items()):
        if isinstance(v, dict | list):
            text = json.dumps(v, ensure_ascii=False, sort_keys=True, default=str)
        elif v is None:
            text = "null"
        elif isinstance(v, bool):
            text = "true" if v else "false"
        else:
            text = str(v)
        rows.append((str(key), text))
    return rows


def short_sha(sha: str | None) -> str:
    return str(sha)[:12] if sha else NA


# -- Markdown ------------------------------------------------------------------------------------------

_MD_SPECIAL = str.maketrans(
    {
        "\\": "\\\\",
        "|": "\\|",
        "`": "\\`",
        "*": "\\*",
        "_": "\\_",
        "[": "\\[",
        "]": "\\]",
        "<": "&lt;",
        ">": "&gt;",
        "&": "&amp;",
        "\r": " ",
        "\n": " ",
    }
)


def md(value: Any) -> str:
    """User text as inline Markdown (a table cell or a sentence): no markup, no raw HTML, one line."""
    return "" if value is None else str(value).translate(_MD_SPECIAL)


def md_block(text: str | None, lang: str = "") -> str:
    """Text as a fenced code block whose fence is longer than any backtick run inside (so it cannot end early)."""
    body = text or ""
    runs = re.findall(r"`+", body)
    fence = "`" * max(3, 1 + max((len(r) for r in runs), default=0))
    return f"{fence}{lang}\n{body.rstrip()}\n{fence}"
