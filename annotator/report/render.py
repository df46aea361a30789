"""Turn the gathered data into one HTML file (inline CSS and SVG, no script, no network) or Markdown.

Both formats come from Jinja2 templates in ``templates/``. The HTML environment autoescapes everything, so
user text (documents, prompts, codebooks, coder names) can never become markup; the Markdown template passes
user text through ``md`` (inline) or ``md_block`` (fenced, a fence longer than any backtick run inside).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, wraps
from typing import Any

from jinja2 import ChainableUndefined, Environment, PackageLoader, StrictUndefined, Undefined

from . import fmt, svg

SECTIONS = [
    ("summary", "Summary"),
    ("data", "Data and splits"),
    ("codebook", "Codebook"),
    ("prompts", "Prompts"),
    ("models", "Models and parameters"),
    ("runs", "Runs"),
    ("baselines", "Baselines"),
    ("reliability", "Reliability: human–human and human–LLM agreement"),
    ("validation", "Validation against gold"),
    ("comparison", "Comparison of runs"),
    ("estimates", "Estimates"),
    ("freezing", "Prompt freezing and the test split"),
    ("costs", "Cost and time"),
    ("coding", "Human coding: workbench, review and adjudication"),
    ("software", "Software versions"),
]

# model parameters shown as columns (the full parameters follow each run as JSON)
KEY_PARAMS = ("temperature", "top_p", "max_tokens", "seed")
# where the Estimates section sends a reader who doubts the intervals
COVERAGE_BENCHMARK = "python -m benchmarks bench_coverage"


def _verdict(entry: dict[str, Any] | None) -> str:
    yardstick = entry.get("yardstick") if isinstance(entry, dict) else None
    return str(yardstick.get("verdict") or fmt.NA) if isinstance(yardstick, dict) else fmt.NA


def _level(alpha: Any) -> str:
    """An error level as the intervals' confidence: 0.05 -> "95%" ("n/a" when there is none)."""
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
        return fmt.NA
    return f"{100 * (1 - alpha):g}%"


def _metric_items(entries: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    items = []
    for e in entries:
        f = e["figures"]
        est = f.get(name) or {}
        items.append(
            {
                "label": f"run {f.get('run_id')}",
                "estimate": est.get("estimate"),
                "low": est.get("low"),
                "high": est.get("high"),
                "text": fmt.ci(est),
            }
        )
    return items


def _agreement_items(result: dict[str, Any]) -> list[dict[str, Any]]:
    items = []
    for r in result.get("runs", []):
        est = r.get("mean_kappa_vs_humans") or {}
        items.append(
            {
                "label": str(r.get("coder")),
                "estimate": est.get("estimate"),
                "low": est.get("low"),
                "high": est.get("high"),
                "text": fmt.ci(est),
            }
        )
    return items


def _human_reference(result: dict[str, Any]) -> dict[str, Any] | None:
    h = (result.get("humans") or {}).get("mean_pairwise_kappa") or {}
    if h.get("estimate") is None:
        return None
    return h | {"label": "human–human"}


def _pairs(value: Any) -> list[tuple[str, Any]]:
    """A mapping's items sorted by key (nothing for a missing or malformed value)."""
    return (
        sorted(((str(k), v) for k, v in value.items()), key=lambda kv: kv[0])
        if isinstance(value, dict)
        else []
    )


def _lenient(func: Callable[..., Any]) -> Callable[..., Any]:
    """A filter that reads a missing value (an older stored result without that key) as None."""

    @wraps(func)
    def wrapper(value: Any, *args: Any) -> Any:
        return func(None if isinstance(value, Undefined) else value, *args)

    return wrapper


def _environment(autoescape: bool, strict: bool) -> Environment:
    env = Environment(
        loader=PackageLoader("annotator.report", "templates"),
        autoescape=autoescape,
        # results stored by older versions may lack a key: render it as empty rather than fail (tests
        # render strictly, so a misspelt name in a template is caught there)
        undefined=StrictUndefined if strict else ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    filters: dict[str, Callable[..., Any]] = {
        "num": fmt.num,
        "ci": fmt.ci,
        "est": fmt.est,
        "level": _level,
        "pct": fmt.pct,
        "count": fmt.count,
        "usd": fmt.usd,
        "when": fmt.when,
        "duration": fmt.duration,
        "json": fmt.as_json,
        "kv": fmt.kv,
        "sha": fmt.short_sha,
        "md": fmt.md,
        "md_block": fmt.md_block,
        "verdict": _verdict,
        "pairs": _pairs,
    }
    env.filters.update({name: _lenient(f) for name, f in filters.items()})
    env.globals.update(
        sections=SECTIONS,
        number={key: i + 1 for i, (key, _) in enumerate(SECTIONS)},
        key_params=KEY_PARAMS,
        coverage_benchmark=COVERAGE_BENCHMARK,
        confusion_svg=svg.confusion_svg,
        interval_svg=svg.interval_svg,
        metric_items=_metric_items,
        agreement_items=_agreement_items,
        human_reference=_human_reference,
        NA=fmt.NA,
    )
    return env


@cache
def _env(autoescape: bool, strict: bool) -> Environment:
    return _environment(autoescape, strict)


def render(data: dict[str, Any], fmt_name: str, strict: bool = False) -> str:
    """The report as text: ``html`` or ``md``. ``strict``: a missing value is an error (for tests)."""
    html = fmt_name == "html"
    template = _env(html, strict).get_template("report.html.j2" if html else "report.md.j2")
    return template.render(**data)
