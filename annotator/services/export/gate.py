"""The validation gate of `annotator export`: the run's stored test-split figures must reach a threshold.

Gating (``min_f1``/``min_alpha``): the export happens only when the run's latest stored validation (macro F1
against gold) or agreement (Krippendorff's alpha of the run with the human majority label) on the test split
reaches the threshold. The point estimate is compared, or the lower end of its 95% interval with
``conservative``. Every line states the n the figure rests on.

Refused, with what to run: a stored figure older than the run's latest answer; a validation stored before
`validate` scored each run on the gold items it was asked, when that changes the figure (it counted gold items
the run was never asked as missing errors); an agreement stored before alpha with the human majority label
existed (its ``alpha_with_humans`` pools the humans and the run, so it rises with the humans' agreement
whatever the run does); an alpha that is undefined (e.g. too few units), with the reason.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, func, select

from annotator.errors import AnnotatorError, InputError, arg
from annotator.project import Project
from annotator.stats.intervals import MIN_UNITS
from annotator.store.models import Annotation, Coder, Metric, as_utc
from annotator.textfmt import interval

from .frame import _context, _iso
from .result import Gate


def _compare(
    what: str, e: dict[str, Any] | None, threshold: float, conservative: bool, source: str
) -> dict[str, Any]:
    e = e or {}
    key = "low" if conservative else "estimate"
    value = e.get(key)
    passed = value is not None and math.isfinite(value) and value >= threshold
    side = "lower end of the 95% interval" if conservative else "point estimate"
    verdict = "reaches" if passed else "is below"
    if value is None:
        verdict = "is undefined, so it cannot reach"
    line = (
        f"{what} on the test split {interval(e)} ({source}): the {side} {verdict} the threshold {threshold:g}"
    )
    return {
        "figure": what,
        "estimate": e.get("estimate"),
        "low": e.get("low"),
        "high": e.get("high"),
        "compared": key,
        "threshold": threshold,
        "passed": passed,
        "line": line,
    }


def _n_text(n: Any, what: str) -> str:
    """ "n = 30 gold items the run was asked", or with "(n = 12, fewer than 30)" below the minimum."""
    if not isinstance(n, int):
        return f"n unknown ({what})"
    if n < MIN_UNITS:
        return f"{what} (n = {n}, fewer than {MIN_UNITS})"
    return f"n = {n} {what}"


def _gold_hint(session: Session) -> str:
    golds = sorted(session.exec(select(Coder.name).where(col(Coder.kind) == "gold")).all())
    return golds[0] if len(golds) == 1 else "NAME"


def _latest_answer(session: Session, run_id: int) -> datetime | None:
    return as_utc(
        session.exec(
            select(func.max(Annotation.created_at)).where(
                col(Annotation.run_id) == run_id, col(Annotation.repeat) == 0
            )
        ).one()
    )


def _f1_check(session: Session, run_id: int, threshold: float, conservative: bool) -> dict[str, Any]:
    metric = session.exec(
        select(Metric)
        .where(col(Metric.kind) == "validation", col(Metric.run_id) == run_id, col(Metric.split) == "test")
        .order_by(col(Metric.id).desc())
    ).first()
    if metric is None:
        raise AnnotatorError(
            f"{arg('min_f1', threshold)}: run {run_id} has no validation on the test split; run `annotator validate --gold "
            f"{_gold_hint(session)} --split test --runs {run_id}` first"
        )
    again = f"annotator validate --gold {metric.result.get('gold')} --split test --runs {run_id}"
    _check_fresh(session, run_id, metric, again)
    entry = metric.result.get("run", {})
    if metric.result.get("scope") != "asked" and entry.get("n_missing"):
        # stored before each run was scored on its asked set: its never-asked gold items counted as errors
        raise AnnotatorError(
            f"{arg('min_f1', threshold)}: validation metric {metric.id} of run {run_id} was computed before validate scored each "
            f"run on the gold items it was asked ({entry.get('n_missing')} gold items counted as missing, some "
            f"possibly never asked); run `{again}` again"
        )
    n = entry.get("n_gold")
    source = f"validation metric {metric.id} against {metric.result.get('gold')!r}, " + _n_text(
        n, "gold items the run was asked"
    )
    out = _compare("macro F1", entry.get("macro_f1"), threshold, conservative, source)
    out |= {
        "metric_id": metric.id,
        "gold": metric.result.get("gold"),
        "n_gold": n,
        "n": n,
        "few": isinstance(n, int) and n < MIN_UNITS,
        "accuracy": entry.get("accuracy"),
        "kappa": entry.get("kappa"),
        "coverage": entry.get("coverage"),
        "frozen": (entry.get("frozen") or {}).get("line"),
    }
    return out


def _alpha_check(session: Session, run_id: int, threshold: float, conservative: bool) -> dict[str, Any]:
    rows = session.exec(
        select(Metric)
        .where(col(Metric.kind) == "agreement", col(Metric.split) == "test")
        .order_by(col(Metric.id).desc())
    ).all()
    again = "annotator agreement --split test"
    for metric in rows:
        entries = [e for e in metric.result.get("runs", []) if e.get("run_id") == run_id]
        entry = next((e for e in entries if e.get("repeat") in (0, None)), entries[0] if entries else None)
        if entry is None:
            continue
        e = entry.get("alpha_vs_majority")
        if not isinstance(e, dict):
            # an older row: only the pooled alpha of the humans plus the run, which is no test of the run
            raise AnnotatorError(
                f"{arg('min_alpha', threshold)}: agreement metric {metric.id} predates the run's alpha with the human majority "
                "label (it has only the pooled alpha of the humans plus the run, which is not gated on); run "
                f"`{again}` again"
            )
        _check_fresh(session, run_id, metric, again)
        level = metric.result.get("level", "nominal")
        n = e.get("n_units")
        source = f"agreement metric {metric.id}, {level}, " + _n_text(n, "units")
        what = "Krippendorff's alpha with the human majority label"
        if e.get("estimate") is None:
            reason = e.get("reason") or "undefined"
            out = {
                "figure": what,
                "estimate": None,
                "low": None,
                "high": None,
                "compared": "low" if conservative else "estimate",
                "threshold": threshold,
                "passed": False,
                "reason": reason,
                "line": f"{what} on the test split is not a number: {reason} ({source}), so it cannot be "
                f"compared with the threshold {threshold:g}",
            }
        else:
            out = _compare(what, e, threshold, conservative, source)
        return out | {
            "metric_id": metric.id,
            "level": level,
            "n": n,
            "few": isinstance(n, int) and n < MIN_UNITS,
        }
    raise AnnotatorError(
        f"{arg('min_alpha', threshold)}: run {run_id} has no agreement figures on the test split; run `{again}` first"
    )


def _check_fresh(session: Session, run_id: int, metric: Metric, command: str) -> None:
    latest, made = _latest_answer(session, run_id), as_utc(metric.created_at)
    if latest is not None and made is not None and latest > made:
        raise AnnotatorError(
            f"run {run_id} has answers newer ({_iso(latest)}) than its stored figures (metric {metric.id}, "
            f"{_iso(made)}); run `{command}` again"
        )


def check_validation(
    project: Project,
    run_id: int,
    min_f1: float | None = None,
    min_alpha: float | None = None,
    conservative: bool = False,
) -> Gate:
    """Refuse (AnnotatorError, with the figures) unless the run's test-split figures reach the thresholds.

    Reads the latest stored `validate` (macro F1 on the gold items the run was asked) and `agreement` (alpha
    of the run with the human majority label) results of the run; compares the point estimate, or the lower
    end of the interval with ``conservative``. Returns the checks that passed.
    """
    if min_f1 is None and min_alpha is None:
        raise InputError(
            f"{arg('validated_only')} needs a threshold: add {arg('min_f1', 0.8)} or {arg('min_alpha', 0.7)}"
        )
    for name, value in (("min_f1", min_f1), ("min_alpha", min_alpha)):
        if value is not None and not (0.0 <= value <= 1.0):
            raise InputError(f"{arg(name, value)}: give a number between 0 and 1, e.g. {arg(name, 0.8)}")
    checks: list[dict[str, Any]] = []
    with project.transaction() as session:
        _context(session, run_id)
        if min_f1 is not None:
            checks.append(_f1_check(session, run_id, min_f1, conservative))
        if min_alpha is not None:
            checks.append(_alpha_check(session, run_id, min_alpha, conservative))
    failed = [c for c in checks if not c["passed"]]
    if failed:
        raise AnnotatorError(f"not exported: run {run_id}'s " + "; ".join(c["line"] for c in failed))
    return Gate(conservative=conservative, checks=checks)
