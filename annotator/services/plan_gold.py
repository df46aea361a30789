"""`annotator plan-gold`: how many documents humans must code, planned from a pilot.

- For a prediction-powered interval of total width W on each label's share: the gold items needed beside the
  gold-only number (annotator.stats.gold_planning.gold_needed_for_width), from the pilot of gold items the
  run was asked (their gold codes and the run's labels on them) and the run's documents.
- ``alpha_width``: the units two or three coders must double-code for a Krippendorff's alpha interval of
  that width, simulated from the agreement of the human coders who coded the pilot
  (annotator.stats.gold_planning.units_for_alpha_width).
Each answer says what it assumed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from annotator.errors import InputError, arg
from annotator.project import Project
from annotator.services.results import Result
from annotator.stats.errors import DataError
from annotator.store.estimation import load_estimation


@dataclass(frozen=True)
class GoldPlanResult(Result):
    run_id: int
    gold: str
    split: str
    target_width: float
    n_documents: int
    pilot_n: int
    labels: list[dict[str, Any]]  # per label: GoldPlan.to_dict() (+ label), or an error
    alpha_plan: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


def plan_gold(
    project: Project,
    run_id: int,
    target_width: float,
    gold: str | None = None,
    split: str = "all",
    alpha: float = 0.05,
    alpha_width: float | None = None,
    coders: list[str] | None = None,
    seed: int = 0,
) -> GoldPlanResult:
    from annotator.stats.gold_planning import gold_needed_for_width

    if not 0 < target_width < 1:
        raise InputError(f"{arg('target_width', target_width)}: the interval's total width, e.g. 0.05")
    with project.transaction() as session:
        data = load_estimation(session, run_id, gold, split)
    pilot = sorted(data.gold_codes)
    if len(pilot) < 10:
        raise InputError(
            f"a pilot of {len(pilot)} gold items among run {run_id}'s documents; code at least 10"
        )
    seen = set(data.gold_codes.values()) | {a for a in data.answers.values() if a}
    rows: list[dict[str, Any]] = []
    for label in [lab for lab in data.labels if lab in seen]:
        y = np.array([1.0 if data.gold_codes[d] == label else 0.0 for d in pilot])
        yhat = np.array([1.0 if data.answers[d] == label else 0.0 for d in pilot])
        try:
            plan = gold_needed_for_width(y, yhat, len(data.population), target_width, alpha)
            rows.append({"label": label, **plan.to_dict()})
        except DataError as exc:
            rows.append({"label": label, "error": str(exc)})
    notes = [f"pilot: the {len(pilot)} gold items of gold coder {data.gold!r} among run {run_id}'s documents"]
    alpha_plan = None
    if alpha_width is not None:
        alpha_plan = _alpha_plan(project, data.codebook, split, alpha_width, coders, seed)
    return GoldPlanResult(
        run_id, data.gold, split, target_width, len(data.population), len(pilot), rows, alpha_plan, notes
    )


def _alpha_plan(
    project: Project, codebook: str, split: str, width: float, coders: list[str] | None, seed: int
) -> dict[str, Any]:
    from annotator.stats.gold_planning import units_for_alpha_width
    from annotator.store.codes import load_codes

    with project.transaction() as session:
        matrix = load_codes(session, codebook, split, coders)
    humans = [i for i, c in enumerate(matrix.coders) if c.kind == "human"]
    if len(humans) < 2:
        raise InputError(
            f"{arg('alpha_width', width)}: needs a pilot coded by two or more human coders (found "
            f"{len(humans)} on the {split} split); name them with {arg('coders', 'a,b')}"
        )
    codes = matrix.codes[humans]
    level: Literal["nominal", "ordinal"] = "ordinal" if matrix.scale == "ordinal" else "nominal"
    try:
        plan = units_for_alpha_width(codes, width, level, matrix.values or None, seed=seed)
    except DataError as exc:
        raise InputError(f"{arg('alpha_width', width)}: {exc}") from None
    return {"coders": [matrix.coders[i].name for i in humans], **plan.to_dict()}
