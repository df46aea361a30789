"""Figures drawn as inline SVG text: a confusion matrix and an interval (dot-and-whisker) plot.

No plotting library: the figures are simple enough to write by hand, and inline SVG keeps the report one
self-contained file that needs no script and no network. Every label passes through ``escape``.
"""

from __future__ import annotations

import math
from typing import Any

from markupsafe import Markup, escape

CHAR_W = 7.0  # approximate width of a 12px sans-serif character
FONT = "font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;font-size:12px"
INK = "#222"
ACCENT = (43, 91, 132)  # dark blue: the full share of a confusion-matrix row
LIGHT = (255, 255, 255)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _label(x: float, y: float, text: str, limit: int, anchor: str = "end", extra: str = "") -> str:
    shown = _short(text, limit)
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" dominant-baseline="middle"{extra}>'
        f"<title>{escape(text)}</title>{escape(shown)}</text>"
    )


def _mix(share: float) -> str:
    share = min(max(share, 0.0), 1.0)
    r, g, b = (round(lo + (hi - lo) * share) for lo, hi in zip(LIGHT, ACCENT, strict=True))
    return f"rgb({r},{g},{b})"


def confusion_svg(rows: list[str], columns: list[str], matrix: list[list[int]], title: str) -> Markup:
    """Counts of gold label (rows) by answer (columns); each cell shaded by its share of the row."""
    limit = 18
    row_w = CHAR_W * min(limit, max((len(r) for r in rows), default=4)) + 16
    cell_w = max(64.0, CHAR_W * min(limit, max((len(c) for c in columns), default=4)) + 12)
    cell_h = 40.0
    top = 44.0
    left = row_w + 22
    width = left + cell_w * len(columns) + 8
    height = top + cell_h * len(rows) + 30
    out = [
        f'<svg role="img" aria-label="{escape(title)}" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'width="{width:.0f}" height="{height:.0f}" class="figure" style="{FONT}">',
        f"<title>{escape(title)}</title>",
        f'<text x="{left + cell_w * len(columns) / 2:.1f}" y="12" text-anchor="middle" '
        f'dominant-baseline="middle" font-weight="600" fill="{INK}">answer of the run</text>',
        f'<text transform="translate(10,{top + cell_h * len(rows) / 2:.1f}) rotate(-90)" text-anchor="middle" '
        f'dominant-baseline="middle" font-weight="600" fill="{INK}">gold</text>',
    ]
    for j, c in enumerate(columns):
        out.append(_label(left + cell_w * (j + 0.5), top - 12, c, limit, "middle", f' fill="{INK}"'))
    for i, (r, counts) in enumerate(zip(rows, matrix, strict=True)):
        y = top + cell_h * i
        out.append(_label(left - 8, y + cell_h / 2, r, limit, "end", f' fill="{INK}"'))
        total = sum(counts)
        for j, n in enumerate(counts):
            share = n / total if total else 0.0
            x = left + cell_w * j
            fg = "#fff" if share > 0.55 else INK
            weight = ' font-weight="600"' if j == i else ""
            out.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{cell_w:.1f}" height="{cell_h:.1f}" '
                f'fill="{_mix(share)}" stroke="#bbb" stroke-width="0.5"/>'
                f'<text x="{x + cell_w / 2:.1f}" y="{y + cell_h / 2 - 7:.1f}" text-anchor="middle" '
                f'dominant-baseline="middle" fill="{fg}"{weight}>{n}</text>'
                f'<text x="{x + cell_w / 2:.1f}" y="{y + cell_h / 2 + 9:.1f}" text-anchor="middle" '
                f'dominant-baseline="middle" fill="{fg}" font-size="10">{100 * share:.0f}%</text>'
            )
    out.append(
        f'<text x="{left:.1f}" y="{height - 10:.1f}" fill="#555" font-size="11">'
        "cells: count and share of the gold row; diagonal: agreement</text>"
    )
    out.append("</svg>")
    return Markup("".join(out))


def _finite(x: Any) -> float | None:
    """``x`` as a float when it is a finite number, else None."""
    if isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x):
        return float(x)
    return None


def interval_svg(
    items: list[dict[str, Any]],
    title: str,
    reference: dict[str, Any] | None = None,
    lower: float = 0.0,
    upper: float = 1.0,
) -> Markup:
    """One row per item: its estimate (dot) and interval (line) on a common axis. ``reference``
    (estimate, low, high, label) is drawn as a shaded band with a line at its estimate."""
    values = [
        f
        for it in [*items, *([reference] if reference else [])]
        for v in (it.get("estimate"), it.get("low"), it.get("high"))
        if (f := _finite(v)) is not None
    ]
    lo = min([lower, *values])
    hi = max([upper, *values])
    lo = math.floor(lo * 10) / 10
    hi = math.ceil(hi * 10) / 10
    if hi <= lo:
        hi = lo + 1
    limit = 28
    label_w = CHAR_W * min(limit, max((len(str(it["label"])) for it in items), default=6)) + 16
    plot_w = 240.0
    row_h = 22.0
    top = 40.0 if reference else 26.0
    left = label_w + 8
    height = top + row_h * max(len(items), 1) + 34
    width = left + plot_w + 130

    def x_of(v: float) -> float:
        return left + (v - lo) / (hi - lo) * plot_w

    out = [
        f'<svg role="img" aria-label="{escape(title)}" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'width="{width:.0f}" height="{height:.0f}" class="figure" style="{FONT}">',
        f"<title>{escape(title)}</title>",
        f'<text x="{left:.1f}" y="12" dominant-baseline="middle" font-weight="600" fill="{INK}">'
        f"{escape(title)}</text>",
    ]
    bottom = top + row_h * max(len(items), 1)
    ref_est = _finite(reference.get("estimate")) if reference else None
    if reference and ref_est is not None:
        r_lo = _finite(reference.get("low"))
        r_hi = _finite(reference.get("high"))
        r_lo = ref_est if r_lo is None else r_lo
        r_hi = ref_est if r_hi is None else r_hi
        out.append(
            f'<rect x="{x_of(r_lo):.1f}" y="{top:.1f}" width="{max(x_of(r_hi) - x_of(r_lo), 1):.1f}" '
            f'height="{bottom - top:.1f}" fill="#e9e2cf"/>'
            f'<line x1="{x_of(ref_est):.1f}" x2="{x_of(ref_est):.1f}" '
            f'y1="{top:.1f}" y2="{bottom:.1f}" stroke="#9a7b2f" stroke-dasharray="4 3"/>'
            f'<text x="{x_of(ref_est):.1f}" y="{top - 6:.1f}" text-anchor="middle" '
            f'fill="#7a5f1f" font-size="11">{escape(str(reference.get("label", "reference")))}</text>'
        )
    # axis with ticks every 0.2 (or 0.5 on a wide range)
    step = 0.2 if hi - lo <= 2 else 0.5
    out.append(
        f'<line x1="{left:.1f}" x2="{left + plot_w:.1f}" y1="{bottom:.1f}" y2="{bottom:.1f}" stroke="#888"/>'
    )
    tick = math.ceil(lo / step) * step
    while tick <= hi + 1e-9:
        x = x_of(tick)
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top:.1f}" y2="{bottom + 4:.1f}" stroke="#e3e3e3"/>'
            f'<text x="{x:.1f}" y="{bottom + 16:.1f}" text-anchor="middle" fill="#555" font-size="11">'
            f"{tick:.1f}</text>"
        )
        tick += step
    if lo < 0 < hi:
        out.append(
            f'<line x1="{x_of(0):.1f}" x2="{x_of(0):.1f}" y1="{top:.1f}" y2="{bottom:.1f}" stroke="#888"/>'
        )
    for i, it in enumerate(items):
        y = top + row_h * (i + 0.5)
        out.append(_label(left - 8, y, str(it["label"]), limit, "end", f' fill="{INK}"'))
        est, low, high = (_finite(it.get(k)) for k in ("estimate", "low", "high"))
        if est is None:
            out.append(
                f'<text x="{left + 4:.1f}" y="{y:.1f}" dominant-baseline="middle" fill="#777">n/a</text>'
            )
            continue
        if low is not None and high is not None:
            out.append(
                f'<line x1="{x_of(low):.1f}" x2="{x_of(high):.1f}" y1="{y:.1f}" y2="{y:.1f}" '
                f'stroke="{INK}" stroke-width="1.5"/>'
            )
        out.append(f'<circle cx="{x_of(est):.1f}" cy="{y:.1f}" r="3.5" fill="rgb{ACCENT}"/>')
        text = it.get("text") or f"{est:.2f}"
        out.append(
            f'<text x="{left + plot_w + 10:.1f}" y="{y:.1f}" dominant-baseline="middle" fill="{INK}">'
            f"{escape(text)}</text>"
        )
    out.append("</svg>")
    return Markup("".join(out))
