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
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import cohen_kappa_score, confusion_matrix, precision_recall_fscore_support

from annotator.errors import InputError
from annotator.project import Project
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

Array = NDArray[np.float64]
INVALID = "(invalid/missing)"
MISSING_GROUP = "(missing)"
MIN_SUPPORT = 30


def confusion_stats(conf: Array, label_idx: list[int]) -> tuple[Array, Array, Array]:
    """Accuracy, macro F1 (over ``label_idx``) and kappa of batched confusion matrices (... x K x K)."""
    n = conf.sum(axis=(-2, -1))
    diag = np.diagonal(conf, axis1=-2, axis2=-1)
    rows = conf.sum(axis=-1)
    cols = conf.sum(axis=-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = diag.sum(axis=-1) / n
        tp = diag[..., label_idx]
        denom = rows[..., label_idx] + cols[..., label_idx]
        f1 = np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1), 0.0)
        macro = f1.mean(axis=-1) if label_idx else np.full(n.shape, np.nan)
        pe = (rows * cols).sum(axis=-1) / n**2
        kappa = np.where(pe < 1, (acc - pe) / (1 - pe), np.nan)
    return acc, macro, kappa


def validation_figures(
    y_true: list[str],
    y_pred: list[str],
    labels: list[str],
    uncertain: str | None,
    n_missing: int,
    n_boot: int,
    seed: int,
) -> dict[str, Any]:
    """Every figure of one run on one set of gold items; ``y_pred`` holds INVALID for invalid/missing answers.

    The items are the ones the run was asked (the caller restricts them): ``n_missing`` of the INVALID
    answers are asked items never answered, the rest invalid or error answers. Accuracy and coverage carry
    Wilson intervals (``coverage`` itself stays a plain number; its interval is ``coverage_interval``); macro
    F1 and kappa carry seeded percentile-bootstrap intervals (``intervals.estimate``).
    """
    n = len(y_true)
    gold_used = set(y_true)
    classes = labels + ([uncertain] if uncertain is not None and uncertain in gold_used else [])
    answer_cols = labels + ([uncertain] if uncertain is not None else [])
    all_cols = [*answer_cols, INVALID]
    n_invalid_or_missing = sum(p == INVALID for p in y_pred)
    n_uncertain = sum(p == uncertain for p in y_pred) if uncertain is not None else 0
    correct = sum(t == p for t, p in zip(y_true, y_pred, strict=True))
    support_classes = [c for c in classes if c in gold_used]
    warnings = [
        f"class {c!r} has {y_true.count(c)} gold items (fewer than {MIN_SUPPORT}): its figures are unstable"
        for c in classes
        if y_true.count(c) < MIN_SUPPORT
    ]
    out: dict[str, Any] = {
        "n_gold": n,
        "n_correct": correct,
        "n_valid": n - n_invalid_or_missing,
        "n_invalid": n_invalid_or_missing - n_missing,
        "n_missing": n_missing,
        "n_uncertain": n_uncertain,
        "coverage": json_number(1 - n_invalid_or_missing / n) if n else None,
        "coverage_interval": wilson(n - n_invalid_or_missing, n),
        "warnings": warnings,
    }
    if n == 0:
        return out | {"accuracy": wilson(0, 0), "per_class": [], "confusion": None}
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=classes, zero_division=np.nan)
    out["per_class"] = [
        {
            "label": c,
            "precision": json_number(float(p[i])),
            "recall": json_number(float(r[i])),
            "f1": json_number(float(f[i])),
            "support": int(s[i]),
        }
        for i, c in enumerate(classes)
    ]
    if support_classes:
        _, _, mf, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=support_classes, average="macro", zero_division=0.0
        )
        _, _, wf, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=support_classes, average="weighted", zero_division=0.0
        )
        macro, weighted = float(mf), float(wf)
    else:
        macro = weighted = math.nan
    kappa = float(cohen_kappa_score(y_true, y_pred)) if len(set(y_true) | set(y_pred)) > 1 else math.nan
    cm = confusion_matrix(y_true, y_pred, labels=all_cols)
    row_labels = [c for c in answer_cols if c in classes]
    out["confusion"] = {
        "rows": row_labels,  # gold
        "columns": all_cols,  # the run's answers
        "matrix": [[int(v) for v in cm[all_cols.index(rl)]] for rl in row_labels],
    }

    # bootstrap: documents resampled, every statistic on the same draws
    index = {c: i for i, c in enumerate(all_cols)}
    k = len(all_cols)
    t = np.array([index[v] for v in y_true])
    q = np.array([index[v] for v in y_pred])
    draws = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    weights = np.zeros((n_boot, n))
    np.add.at(weights, (np.repeat(np.arange(n_boot), n), draws.ravel()), 1.0)
    onehot = np.zeros((n, k * k))
    onehot[np.arange(n), t * k + q] = 1.0
    conf = (weights @ onehot).reshape(n_boot, k, k)
    _, macro_r, kappa_r = confusion_stats(conf, [index[c] for c in support_classes])
    out["accuracy"] = wilson(correct, n)
    out["macro_f1"] = estimate(macro, macro_r)
    out["weighted_f1"] = json_number(weighted)
    out["kappa"] = estimate(kappa, kappa_r)
    return out


def freeze_status(info: RunInfo) -> dict[str, Any]:
    """Whether the run's prompt was frozen before the run started, with the times and a one-line verdict."""
    started = utc_text(info.started_at)
    if info.prompt is None:
        return {
            "frozen_before_run": None,
            "prompt": None,
            "frozen_at": None,
            "started_at": started,
            "line": f"run {info.id} has no prompt ({info.kind}): nothing to freeze",
        }
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
    return {
        "frozen_before_run": frozen,
        "prompt": info.prompt,
        "frozen_at": utc_text(info.frozen_at),
        "started_at": started,
        "line": line,
    }


def _small_n(n: int, who: str) -> str:
    return f"only {n} gold items were asked of {who} (fewer than {MIN_UNITS}): its figures are unstable"


def validate(
    project: Project,
    gold: str | None = None,
    split: str = "test",
    runs: list[int] | None = None,
    by: str | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    codebook: str | None = None,
) -> dict[str, Any]:
    """Each run against the gold coder on the gold items it was asked (see the module docstring); one metrics
    row of kind validation per scored run.

    ``gold``: the gold coder's name, or None for the project's only gold coder (``default_gold``). Returns the
    JSON-ready result; each run entry carries ``metric_id`` (None for a run named in ``runs`` that was asked
    none of the gold items: it has no figures and nothing is stored for it).
    """
    if n_boot < 1:
        raise InputError(f"--bootstrap {n_boot}: use at least 1 replicate (1000 is the default)")
    with project.transaction() as session:
        gold_name = gold.strip() if gold is not None and gold.strip() else default_gold(session)
        data = load_gold_and_runs(session, gold_name, split, runs, codebook)
        if by is not None:
            columns = meta_columns(session)
            if by not in columns:
                raise InputError(
                    f"--by {by!r}: no such metadata column (columns: {', '.join(columns) or 'none'})"
                )
    labels: list[str] = data["labels"]
    uncertain: str | None = data["uncertain"]
    gold_codes: dict[int, str] = data["gold_codes"]
    doc_ids: list[int] = data["doc_ids"]
    n_split = len(doc_ids)
    gold_uses_uncertain = uncertain is not None and uncertain in set(gold_codes.values())
    if uncertain is None:
        uncertain_note = "the codebook has no uncertain label"
    elif gold_uses_uncertain:
        uncertain_note = f"the uncertain label {uncertain!r} is a class: the gold coder uses it"
    else:
        uncertain_note = f"the gold coder never uses the uncertain label {uncertain!r}: a run answering it is counted wrong"
    notes = [
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
    groups: dict[str, list[int]] = {}
    if by is not None:
        for d in doc_ids:
            value = data["metas"].get(d, {}).get(by)
            key = MISSING_GROUP if value is None or value == "" else str(value)
            groups.setdefault(key, []).append(d)
        groups = dict(sorted(groups.items(), key=lambda kv: (kv[0] == MISSING_GROUP, kv[0])))

    def figures(info: RunInfo, docs: list[int]) -> dict[str, Any]:
        """The run's figures on the gold items of ``docs`` it was asked."""
        mine = [d for d in docs if d in info.asked]
        y_true = [gold_codes[d] for d in mine]
        y_pred = [a if (a := info.answers.get(d)) is not None else INVALID for d in mine]
        n_missing = sum(d not in info.answers for d in mine)
        return validation_figures(y_true, y_pred, labels, uncertain, n_missing, n_boot, seed)

    def asked_none(info: RunInfo) -> str:
        return (
            f"run:{info.id} was asked none of the {n_split} gold items of the {split} split "
            f"(it was asked {info.n_asked} documents): nothing to score"
        )

    run_out: list[dict[str, Any]] = []
    scored: list[RunInfo] = data["runs"]
    idle = [info for info in scored if not info.asked]
    if runs is None:  # runs never asked this split's gold items (e.g. dev runs on test) are left out
        scored = [info for info in scored if info.asked]
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
    for info in scored:
        entry: dict[str, Any] = {
            "run_id": info.id,
            "kind": info.kind,
            "model": info.model,
            "prompt": info.prompt,
            "n_asked": info.n_asked,
        }
        if not info.asked:
            line = asked_none(info)
            notes.append(line)
            entry |= {"n_gold": 0, "asked_none": True, "line": line, "warnings": [], "metric_id": None}
            run_out.append(entry)
            continue
        entry |= figures(info, doc_ids)
        n = entry["n_gold"]
        if n < MIN_UNITS:
            warning = _small_n(n, f"run:{info.id}")
            entry["warnings"] = [warning, *entry["warnings"]]
            notes.append(warning)
        if split == "test":
            entry["frozen"] = freeze_status(info)
        if by is not None:
            by_groups: dict[str, dict[str, Any]] = {}
            not_asked: list[str] = []
            for g, ds in groups.items():
                if not any(d in info.asked for d in ds):
                    not_asked.append(g)
                    continue
                fig = figures(info, ds)
                if fig["n_gold"] < MIN_UNITS:
                    fig["warnings"] = [
                        _small_n(fig["n_gold"], f"run:{info.id} in group {g!r}"),
                        *fig["warnings"],
                    ]
                by_groups[g] = fig
            entry["by"] = {"column": by, "groups": by_groups, "not_asked": not_asked}
        run_out.append(entry)

    common = {
        "gold": data["gold"],
        "gold_kind": data["gold_kind"],
        "codebook": data["codebook"],
        "codebook_versions": data["codebook_versions"],
        "split": split,
        "by": by,
        "labels": labels,
        "uncertain_label": uncertain,
        "uncertain_note": uncertain_note,
        "n_gold": n_split,  # kept for older readers: the split's gold items, not a run's n
        "n_gold_split": n_split,
        "scope": "asked",  # each run's figures are on gold ∩ its asked set (n_gold of the run entry)
        "min_units": MIN_UNITS,
        "n_boot": n_boot,
        "seed": seed,
        "ci": CI,
        "notes": notes,
    }
    params = {
        "gold": data["gold"],
        "split": split,
        "by": by,
        "n_boot": n_boot,
        "seed": seed,
        "codebook": data["codebook"],
        "ci": CI,
    }
    with project.transaction() as session:
        for entry in run_out:
            if entry.get("asked_none"):
                continue
            row = Metric(
                kind="validation",
                run_id=entry["run_id"],
                split=split,
                params=params,
                result=common | {"run": entry},
            )
            session.add(row)
            session.flush()
            entry["metric_id"] = row.id
    return common | {"runs": run_out}
