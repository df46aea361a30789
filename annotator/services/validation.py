"""`annotator validate`: each LLM or baseline run against a gold coder, on the gold items the run was asked.

Per run (repeat 0, the first answer to each document): accuracy, per-class precision, recall, F1 and support,
macro and weighted F1, Cohen's kappa against gold, the confusion matrix and coverage. Accuracy and coverage
are proportions with Wilson score intervals (the percentile bootstrap gives [1, 1] for 20 of 20); macro F1 and
kappa have seeded unit-bootstrap intervals (documents resampled with replacement, percentile intervals, the
share of undefined replicates reported and flagged above 5%).

The coverage rule (DESIGN.md): a run is scored on gold ∩ asked, the gold items of the split that the run
selected (its asked set, ``annotator.store.asked``), and its figures carry that n. A gold item the run was
never asked is out of scope, never an error. An asked item without a valid answer (status invalid or error,
or no answer at all because the run was interrupted) counts as an error in the headline figures, so
accuracy = correct / asked gold items; such items are also reported separately (``n_invalid``,
``n_missing``), and ``coverage`` is the share of asked gold items with a valid answer. In the confusion
matrix they form the last column, ``(invalid/missing)``; for kappa they are one more category of the run's
answers. The codebook's uncertain label is an answer like any other: against a gold coder that never uses
it, it is always wrong (it is a class of the per-class figures only when gold uses it). Macro and weighted F1
average over the classes gold uses in the evaluated set.

Layers: this module loads the gold codes and runs (`annotator.store.scored`), scores each run on its items and
stores one metrics row per run; the figures themselves are `annotator.stats.classification`'s. The result is
a `Validation` (`annotator.services.validation_result`, with the shape of its run entries and stored rows).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray
from sqlmodel import Session

from annotator.errors import InputError, arg
from annotator.project import Project
from annotator.services.results import stamped
from annotator.services.validation_result import (
    ByGroups,
    Figures,
    FreezeStatus,
    RunEntry,
    RunKind,
    Split,
    StoredRun,
    Validation,
)
from annotator.stats.classification import INVALID, MIN_SUPPORT, confusion_stats, validation_figures
from annotator.stats.intervals import CI, MIN_UNITS, estimate, json_number, wilson
from annotator.store.models import (
    Metric,
)
from annotator.store.scored import (
    RunInfo,
    default_gold,
    load_gold_and_runs,
    meta_columns,
    utc_text,
)

__all__ = [
    "CI",
    "INVALID",
    "MIN_SUPPORT",
    "MIN_UNITS",
    "MISSING_GROUP",
    "RunEntry",
    "RunInfo",
    "Validation",
    "confusion_stats",
    "default_gold",
    "estimate",
    "freeze_status",
    "json_number",
    "load_gold_and_runs",
    "meta_columns",
    "utc_text",
    "validate",
    "validation_figures",
    "wilson",
]

Array = NDArray[np.float64]
MISSING_GROUP = "(missing)"


def freeze_status(info: RunInfo) -> FreezeStatus:
    """Whether the run's prompt was frozen before the run started, with the times and a one-line verdict."""
    started = utc_text(info.started_at)
    assert started is not None
    if info.prompt is None:
        return FreezeStatus(
            frozen_before_run=None,
            prompt=None,
            frozen_at=None,
            started_at=started,
            line=f"run {info.id} has no prompt ({info.kind}): nothing to freeze",
        )
    frozen = info.frozen_at is not None and info.frozen_at < info.started_at
    if info.frozen_at is None:
        line = f"run {info.id}: prompt {info.prompt} was NOT frozen (run started {started})"
    elif frozen:
        line = (
            f"run {info.id}: prompt {info.prompt} was frozen at {utc_text(info.frozen_at)}, before the run started "
            f"({started})"
        )
    else:
        line = (
            f"run {info.id}: prompt {info.prompt} was NOT frozen before the run started: frozen at "
            f"{utc_text(info.frozen_at)}, run started {started}"
        )
    return FreezeStatus(
        frozen_before_run=frozen,
        prompt=info.prompt,
        frozen_at=utc_text(info.frozen_at),
        started_at=started,
        line=line,
    )


def _small_n(n: int, who: str) -> str:
    return f"only {n} gold items were asked of {who} (fewer than {MIN_UNITS}): its figures are unstable"


@dataclass(frozen=True)
class _Scoring:
    """How each run is scored: the gold codes, the codebook's labels and the bootstrap."""

    gold_codes: dict[int, str]
    labels: list[str]
    uncertain: str | None
    n_boot: int
    seed: int

    def figures(self, info: RunInfo, docs: list[int]) -> Figures:
        """The run's figures on the gold items of ``docs`` it was asked (some, never none)."""
        mine = [d for d in docs if d in info.asked]
        y_true = [self.gold_codes[d] for d in mine]
        y_pred = [a if (a := info.answers.get(d)) is not None else INVALID for d in mine]
        n_missing = sum(d not in info.answers for d in mine)
        figures = validation_figures(
            y_true, y_pred, self.labels, self.uncertain, n_missing, self.n_boot, self.seed
        )
        return cast(Figures, figures)


def _check_by(session: Session, by: str | None) -> None:
    if by is None:
        return
    columns = meta_columns(session)
    if by not in columns:
        raise InputError(
            f"{arg('by', by)}: no such metadata column (columns: {', '.join(columns) or 'none'})"
        )


def _uncertain_note(uncertain: str | None, gold_codes: dict[int, str]) -> str:
    if uncertain is None:
        return "the codebook has no uncertain label"
    if uncertain in set(gold_codes.values()):
        return f"the uncertain label {uncertain!r} is a class: the gold coder uses it"
    return f"the gold coder never uses the uncertain label {uncertain!r}: a run answering it is counted wrong"


def _notes(uncertain_note: str, n_split: int, split: str) -> list[str]:
    return [
        uncertain_note,
        f"each run is scored on the gold items it was asked (of the {n_split} gold items of the {split} split), "
        "with that n: gold items a run never selected are out of its scope, not errors",
        "asked items without a valid answer (invalid or error answers, or none at all) count as errors in "
        "accuracy, F1 and kappa (kappa: as one more category); they are reported separately as n_invalid and "
        "n_missing, and coverage is valid answers / asked gold items",
        "accuracy and coverage intervals are Wilson score intervals; macro F1 and kappa intervals are percentile "
        "bootstrap intervals (documents resampled)",
        "each run's first answer (repeat 0) to each document is scored",
    ]


def _groups(doc_ids: list[int], metas: dict[int, dict[str, Any]], by: str | None) -> dict[str, list[int]]:
    """The gold items by their value of the metadata column ``by`` (missing values last)."""
    groups: dict[str, list[int]] = {}
    if by is None:
        return groups
    for d in doc_ids:
        value = metas.get(d, {}).get(by)
        key = MISSING_GROUP if value is None or value == "" else str(value)
        groups.setdefault(key, []).append(d)
    return dict(sorted(groups.items(), key=lambda kv: (kv[0] == MISSING_GROUP, kv[0])))


def _runs_to_score(
    infos: list[RunInfo], named: bool, notes: list[str], split: str, n_split: int
) -> list[RunInfo]:
    """The runs to list: those named (``named``), or every run asked some of the split's gold items."""
    if named:
        return infos
    idle = [info for info in infos if not info.asked]
    scored = [info for info in infos if info.asked]  # e.g. dev runs on test are left out
    if idle:
        notes.append(
            f"left out, asked none of these {n_split} gold items: "
            + ", ".join(f"run:{info.id}" for info in idle)
            + " (name them with --runs to see them listed)"
        )
    if not scored:
        raise InputError(
            f"no run was asked any of the {split} split's {n_split} gold items; run one first "
            f"(`annotator run --split {split} ...`)"
        )
    return scored


def _by_groups(scoring: _Scoring, info: RunInfo, by: str, groups: dict[str, list[int]]) -> ByGroups:
    """The run's figures in each group of ``by`` it was asked some items of."""
    by_groups: dict[str, Figures] = {}
    not_asked: list[str] = []
    for g, ds in groups.items():
        if not any(d in info.asked for d in ds):
            not_asked.append(g)
            continue
        fig = scoring.figures(info, ds)
        if fig["n_gold"] < MIN_UNITS:
            fig["warnings"] = [_small_n(fig["n_gold"], f"run:{info.id} in group {g!r}"), *fig["warnings"]]
        by_groups[g] = fig
    return ByGroups(column=by, groups=by_groups, not_asked=not_asked)


def _run_entry(
    scoring: _Scoring,
    info: RunInfo,
    doc_ids: list[int],
    split: str,
    by: str | None,
    groups: dict[str, list[int]],
    notes: list[str],
) -> StoredRun:
    """One run's entry: its figures on the gold items it was asked (and by group), or why it has none."""
    kind = cast(RunKind, info.kind)  # load_gold_and_runs loads LLM and baseline runs only
    if not info.asked:
        line = (
            f"run:{info.id} was asked none of the {len(doc_ids)} gold items of the {split} split "
            f"(it was asked {info.n_asked} documents): nothing to score"
        )
        notes.append(line)
        return StoredRun(
            run_id=info.id,
            kind=kind,
            model=info.model,
            prompt=info.prompt,
            n_asked=info.n_asked,
            n_gold=0,
            asked_none=True,
            line=line,
            warnings=[],
        )
    entry: StoredRun = {
        "run_id": info.id,
        "kind": kind,
        "model": info.model,
        "prompt": info.prompt,
        "n_asked": info.n_asked,
        **scoring.figures(info, doc_ids),
    }
    n = entry["n_gold"]
    if n < MIN_UNITS:
        warning = _small_n(n, f"run:{info.id}")
        entry["warnings"] = [warning, *entry["warnings"]]
        notes.append(warning)
    if split == "test":
        entry["frozen"] = freeze_status(info)
    if by is not None:
        entry["by"] = _by_groups(scoring, info, by, groups)
    return entry


def _store(project: Project, result: Validation, entries: list[StoredRun]) -> list[RunEntry]:
    """One metrics row of kind validation per scored entry (the result's header, the entry as ``"run"``); the
    entries with the id of their row (None for a run asked none of the gold items: nothing is stored)."""
    common = result.to_json()
    del common["runs"]
    params = {
        "gold": result.gold,
        "split": result.split,
        "by": result.by,
        "n_boot": result.n_boot,
        "seed": result.seed,
        "codebook": result.codebook,
        "ci": result.ci,
    }
    out: list[RunEntry] = []
    with project.transaction() as session:
        for entry in entries:
            metric_id = None
            if not entry.get("asked_none"):
                row = Metric(
                    kind="validation",
                    run_id=entry["run_id"],
                    split=result.split,
                    params=params,
                    result=stamped("validation", common | {"run": entry}),
                )
                session.add(row)
                session.flush()
                metric_id = row.id
            out.append(RunEntry(**entry, metric_id=metric_id))
    return out


def validate(
    project: Project,
    gold: str | None = None,
    split: str = "test",
    runs: list[int] | None = None,
    by: str | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    codebook: str | None = None,
) -> Validation:
    """Each run against the gold coder on the gold items it was asked (see the module docstring); one metrics
    row of kind validation per scored run.

    ``gold``: the gold coder's name, or None for the project's only gold coder (``default_gold``). Each run
    entry of the result carries ``metric_id`` (None for a run named in ``runs`` that was asked none of the
    gold items: it has no figures and nothing is stored for it).
    """
    if n_boot < 1:
        raise InputError(f"{arg('n_boot', n_boot)}: use at least 1 replicate (1000 is the default)")
    with project.transaction() as session:
        gold_name = gold.strip() if gold is not None and gold.strip() else default_gold(session)
        data = load_gold_and_runs(session, gold_name, split, runs, codebook)
        _check_by(session, by)
    labels: list[str] = data["labels"]
    uncertain: str | None = data["uncertain"]
    doc_ids: list[int] = data["doc_ids"]
    n_split = len(doc_ids)
    uncertain_note = _uncertain_note(uncertain, data["gold_codes"])
    notes = _notes(uncertain_note, n_split, split)
    groups = _groups(doc_ids, data["metas"], by)
    scoring = _Scoring(data["gold_codes"], labels, uncertain, n_boot, seed)
    scored = _runs_to_score(data["runs"], runs is not None, notes, split, n_split)
    entries = [_run_entry(scoring, info, doc_ids, split, by, groups, notes) for info in scored]
    result = Validation(
        gold=data["gold"],
        gold_kind=data["gold_kind"],
        codebook=data["codebook"],
        codebook_versions=data["codebook_versions"],
        split=cast(Split, split),  # load_gold_and_runs refuses any other
        by=by,
        labels=labels,
        uncertain_label=uncertain,
        uncertain_note=uncertain_note,
        n_gold=n_split,
        n_gold_split=n_split,
        scope="asked",
        min_units=MIN_UNITS,
        n_boot=n_boot,
        seed=seed,
        ci=CI,
        notes=notes,
        runs=[],
    )
    return dataclasses.replace(result, runs=_store(project, result, entries))
