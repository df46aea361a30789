"""How `annotator compare` scores one run: its figures on the gold items it was asked (validate's), its
alpha against the human majority on its own units, its per-item correctness and statistics on bootstrap
draws shared by every run scored on the same number of items (for paired differences), and its cost."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, func

from annotator.services.agreement import CodeMatrix
from annotator.services.compare.result import Humans
from annotator.services.validation import RunInfo
from annotator.stats.classification import INVALID, confusion_stats, validation_figures
from annotator.stats.intervals import estimate, json_number, too_few
from annotator.stats.reliability import Alpha, alpha_report, majority
from annotator.store.models import Annotation, Coder, Run, as_utc

Array = NDArray[np.float64]


def _weights(n_items: int, n_boot: int, seed: int) -> Array:
    """How often each item is drawn in each replicate: the draws `validate` makes for its intervals."""
    draws = np.random.default_rng(seed).integers(0, n_items, size=(n_boot, n_items))
    flat = (draws + n_items * np.arange(n_boot)[:, None]).ravel()
    return np.bincount(flat, minlength=n_boot * n_items).reshape(n_boot, n_items).astype(float)


def _none(reason: str, **extra: Any) -> dict[str, Any]:
    """An undefined figure, with why."""
    return {"estimate": None, "low": None, "high": None} | extra | {"reason": reason}


NO_HUMANS = (
    "no human coders besides the gold coder: import human codes (`annotator import codes`) to see alpha"
)


# -- scoring ------------------------------------------------------------------------------------------------


class Scorer:
    """Each run's figures on its own asked gold items; paired statistics on the items two runs share."""

    def __init__(
        self,
        data: dict[str, Any],
        matrix: CodeMatrix,
        asked: dict[int, set[int]],
        n_boot: int,
        seed: int,
        min_units: int,
    ) -> None:
        self.data = data
        self.labels: list[str] = data["labels"]
        self.uncertain: str | None = data["uncertain"]
        self.gold_codes: dict[int, str] = data["gold_codes"]
        self.doc_ids: list[int] = data["doc_ids"]
        self.matrix = matrix
        self.asked = asked  # run id -> every document it was asked (any split)
        self.n_boot = n_boot
        self.seed = seed
        self.min_units = min_units
        gold = data["gold"]
        self.ref = [i for i, c in enumerate(matrix.coders) if c.kind == "human" and c.name != gold]
        self.row_of = {c.name: i for i, c in enumerate(matrix.coders)}
        self.unit_of = {d: j for j, d in enumerate(matrix.units)}
        self._draws: dict[int, Array] = {}

    def weights(self, n_items: int) -> Array:
        """The bootstrap weights for ``n_items`` items (the same draws for every run on the same items)."""
        if n_items not in self._draws:
            self._draws[n_items] = _weights(n_items, self.n_boot, self.seed)
        return self._draws[n_items]

    @property
    def split(self) -> str:
        return str(self.matrix.split)

    def items(self, info: RunInfo) -> list[int]:
        """The run's scope: the gold items it was asked."""
        asked = self.asked.get(info.id, set())
        return [d for d in self.doc_ids if d in asked]

    def humans_alpha(self) -> Humans:
        """The human coders' alpha among themselves on the split's gold items (context for the runs')."""
        coders = [self.matrix.coders[i].name for i in self.ref]
        if not self.ref:
            return Humans(coders=coders, alpha=_none(NO_HUMANS))
        cols = [self.unit_of[d] for d in self.doc_ids if d in self.unit_of]
        sub = self.matrix.codes[self.ref][:, cols]
        rep = alpha_report(sub)
        if not math.isfinite(rep.alpha):
            return Humans(coders=coders, alpha=_none(rep.reason or "undefined", pairable_units=0))
        reps = Alpha().replicates(sub, self.weights(sub.shape[1]))
        alpha = estimate(rep.alpha, reps) | {"pairable_units": rep.pairable_units, "reason": None}
        return Humans(coders=coders, alpha=alpha)

    def alpha_vs_majority(self, info: RunInfo) -> dict[str, Any]:
        """Alpha (nominal) of the run against the human majority label, on the units of the split the run was
        asked where a majority exists and the run gave a label (as `annotator agreement`); the others counted."""
        if not self.ref:
            return _none(NO_HUMANS, n_units=0)
        asked = self.asked.get(info.id, set())
        units = [d for d in self.matrix.units if d in asked]
        cols = [self.unit_of[d] for d in units]
        k = len(self.matrix.categories)
        maj, n_ties = majority(self.matrix.codes[self.ref][:, cols], k)
        row = self.row_of.get(f"run:{info.id}")
        run = self.matrix.codes[row, cols] if row is not None else np.full(len(cols), np.nan)
        no_label = ~np.isfinite(run)
        keep = np.isfinite(maj) & ~no_label
        n = int(keep.sum())
        extra = {
            "n_units": n,
            "n_ties_left_out": n_ties,
            "n_no_label": int((no_label & np.isfinite(maj)).sum()),
        }
        if n < self.min_units:
            return _none(too_few(n, self.min_units), **extra)
        sub = np.vstack([maj[keep], run[keep]])
        rep = alpha_report(sub)
        if not math.isfinite(rep.alpha):
            return _none(rep.reason or "undefined", **extra)
        reps = Alpha().replicates(sub, self.weights(n))
        return estimate(rep.alpha, reps) | extra | {"reason": None}

    def score(self, info: RunInfo, items: list[int]) -> dict[str, Any]:
        """One run's figures on its items (validate's), its alpha vs the human majority, and whether too few."""
        y_true = [self.gold_codes[d] for d in items]
        y_pred = [a if (a := info.answers.get(d)) is not None else INVALID for d in items]
        n_missing = sum(d not in info.answers for d in items)
        fig = validation_figures(
            y_true, y_pred, self.labels, self.uncertain, n_missing, self.n_boot, self.seed
        )
        fig["n_items"] = fig.pop("n_gold")
        fig["too_few"] = too_few(len(items), self.min_units) if len(items) < self.min_units else None
        fig["alpha_vs_majority"] = self.alpha_vs_majority(info)
        return fig

    def paired(self, info: RunInfo, items: list[int]) -> tuple[NDArray[np.bool_], Array]:
        """A run's per-item correctness on ``items`` and its (accuracy, macro F1) statistics: row 0 the point
        estimates, rows 1.. the bootstrap replicates on the draws shared by every run on that many items."""
        y_true = [self.gold_codes[d] for d in items]
        y_pred = [a if (a := info.answers.get(d)) is not None else INVALID for d in items]
        gold_used = set(y_true)
        answer_cols = self.labels + ([self.uncertain] if self.uncertain is not None else [])
        all_cols = [*answer_cols, INVALID]
        classes = self.labels + (
            [self.uncertain] if self.uncertain is not None and self.uncertain in gold_used else []
        )
        index = {c: i for i, c in enumerate(all_cols)}
        k = len(all_cols)
        n = len(items)
        onehot = np.zeros((n, k * k))
        onehot[np.arange(n), [index[t] * k + index[p] for t, p in zip(y_true, y_pred, strict=True)]] = 1.0
        w = np.vstack([np.ones((1, n)), self.weights(n)])
        acc, macro, _ = confusion_stats(
            (w @ onehot).reshape(-1, k, k), [index[c] for c in classes if c in gold_used]
        )
        correct = np.array([t == p for t, p in zip(y_true, y_pred, strict=True)], dtype=bool)
        return correct, np.column_stack([acc, macro])


def run_costs(session: Session, ids: list[int]) -> dict[int, dict[str, Any]]:
    """Cost, time and tokens of each run as a whole, and per valid answer (every document and repeat)."""
    ok = dict(
        session.execute(
            sa_select(col(Annotation.run_id), func.count())
            .where(col(Annotation.run_id).in_(ids), col(Annotation.status) == "ok")
            .group_by(col(Annotation.run_id))
        ).all()
    )
    rows = session.execute(
        sa_select(Run, col(Coder.name))
        .join(Coder, col(Coder.id) == col(Run.coder_id))
        .where(col(Run.id).in_(ids))
    ).all()
    out: dict[int, dict[str, Any]] = {}
    for run, coder in rows:
        assert run.id is not None
        n_ok = int(ok.get(run.id, 0))
        start, end = as_utc(run.started_at), as_utc(run.finished_at)
        seconds = (end - start).total_seconds() if start is not None and end is not None else None

        def per(x: float | None, n_ok: int = n_ok) -> float | None:
            return None if x is None or n_ok == 0 else json_number(x / n_ok)

        out[run.id] = {
            "coder": coder,
            "status": run.status,
            "run_split": run.split,
            "n_valid_total": n_ok,
            "cost_usd": json_number(run.cost_usd),
            "cost_per_valid": per(run.cost_usd),
            "seconds": json_number(seconds) if seconds is not None else None,
            "seconds_per_valid": per(seconds),
            "tokens_in": run.tokens_in,
            "tokens_out": run.tokens_out,
            "tokens_per_valid": per(run.tokens_in + run.tokens_out),
        }
    return out
