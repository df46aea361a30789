"""Formatting and redaction shared by the HTML and Markdown reports.

Numbers: coefficients with two decimals and intervals as "0.81 [0.77, 0.85]" (estimated shares with three, as
`annotator estimate` prints them); a figure that could not be computed is "n/a". Redaction: the report is
meant to be shared with reviewers, so anything that looks like a credential is removed twice: from the
stored JSON before rendering (keys named like secrets, user:password in URLs, key-shaped strings) and from
the rendered text (the values of secret-looking environment variables and of the project's ``.env``).
"""

from __future__ import annotations

import json
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
from annotator.textfmt import NA, count, duration, interval, number, usd
from annotator.textfmt import percent as pct

__all__ = [
    "NA",
    "REDACTED",
    "count",
    "duration",
    "is_secret_key",
    "known_secrets",
    "pct",
    "redact",
    "remove_secrets",
    "scrub_text",
    "usd",
]

# -- numbers and times ---------------------------------------------------------------------------------
# The number formatting is annotator.textfmt's (one home for the CLI and the reports); the report shows two
# decimals and "n/a" for a figure that could not be computed.


def num(x: Any, digits: int = 2) -> str:
    return number(x, digits, NA)


def ci(e: dict[str, Any] | None, digits: int = 2) -> str:
    """An estimate with its interval: "0.81 [0.77, 0.85]"; "too few units (n; ...)" for a figure left
    uncomputed on too small an overlap; "n/a" when it could not be computed for another reason. An interval
    whose bootstrap left too many replicates undefined is marked."""
    return interval(e, digits, NA, too_few=True, brief=True)


def est(e: dict[str, Any] | None, digits: int = 3) -> str:
    """A stored estimate of a share, a difference or a coefficient (``annotator.stats.ppi.Estimate.to_dict``:
    estimate, lower, upper) as "0.305 [0.262, 0.348]", three decimals as `annotator estimate` prints them;
    "n/a" when there is none."""
    if not isinstance(e, dict):
        return NA
    return interval(
        {"estimate": e.get("estimate"), "low": e.get("lower"), "high": e.get("upper")}, digits, NA
    )


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
