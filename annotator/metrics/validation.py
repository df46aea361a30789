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
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import cohen_kappa_score, confusion_matrix, precision_recall_fscore_support
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from annotator.errors import InputError
from annotator.metrics.agreement import RUN_KINDS, SPLITS
from annotator.metrics.intervals import CI, MIN_UNITS, estimate, json_number, wilson
from annotator.project import Project
from annotator.registry import stored_codebook
from annotator.store.asked import asked_sets
from annotator.store.models import (
    Annotation,
    CodebookVersion,
    Coder,
    Document,
    Metric,
    PromptVersion,
    Run,
    as_utc,
)

Array = NDArray[np.float64]
INVALID = "(invalid/missing)"
MISSING_GROUP = "(missing)"
MIN_SUPPORT = 30
GOLD_KINDS = ("gold", "human")


@dataclass
class RunInfo:
    """One run to score: what it is, when it started, when its prompt was frozen, what it was asked, and its
    answers."""

    id: int
    kind: str
    model: str | None
    prompt: str | None
    started_at: datetime
    frozen_at: datetime | None
    # document id -> label, or None for an invalid/error answer (asked gold items only)
    answers: dict[int, str | None] = field(default_factory=dict)
    # the gold items (of the split) the run was asked: the only items its figures are computed on
    asked: set[int] = field(default_factory=set)
    # every document the run was asked, gold or not, on any split
    selected: set[int] = field(default_factory=set)

    @property
    def n_asked(self) -> int:
        return len(self.selected)

    @classmethod
    def of(cls, run: Run, prompt: PromptVersion | None) -> RunInfo:
        """A stored run (and its prompt version, if any), with no answers loaded yet."""
        assert run.id is not None
        return cls(
            id=run.id,
            kind=run.kind,
            model=run.model,
            prompt=prompt.ref if prompt else None,
            started_at=as_utc(run.started_at) or run.started_at,
            frozen_at=as_utc(prompt.frozen_at) if prompt else None,
        )


def _when(t: datetime | None) -> str | None:
    return None if t is None else f"{t:%Y-%m-%d %H:%M:%S} UTC"


def _codebook_name(session: Session, gold_id: int, codebook: str | None) -> str:
    if codebook is not None:
        return codebook
    names = sorted(
        set(
            session.execute(
                sa_select(col(CodebookVersion.name))
                .join(Run, col(Run.codebook_id) == col(CodebookVersion.id))
                .where(col(Run.coder_id) == gold_id)
            )
            .scalars()
            .all()
        )
    )
    if len(names) == 1:
        return names[0]
    raise InputError(
        f"say which codebook with --codebook NAME (the gold coder's codebooks: {', '.join(names)})"
    )


def default_gold(session: Session) -> str:
    """The project's only gold coder, the one ``--gold`` means when it is not given.

    Refused (InputError naming the candidates and what to do) when there is no gold coder or several."""
    names = sorted(session.exec(select(Coder.name).where(col(Coder.kind) == "gold")).all())
    if len(names) == 1:
        return names[0]
    if names:
        raise InputError(
            f"{len(names)} gold coders ({', '.join(names)}): say which with --gold NAME, "
            f"e.g. --gold {names[0]}"
        )
    humans = sorted(session.exec(select(Coder.name).where(col(Coder.kind) == "human")).all())
    also = f", or name a human coder with --gold NAME (human coders: {', '.join(humans)})" if humans else ""
    raise InputError(
        "no gold coder in this project: import one (`annotator import codes FILE --coder NAME --kind gold`) "
        f"or build one from human coders (`annotator gold build NAME --from a,b`){also}"
    )


def _gold_coder(session: Session, gold: str) -> Coder:
    coder = session.exec(select(Coder).where(col(Coder.name) == gold.strip())).first()
    if coder is None or coder.kind not in GOLD_KINDS:
        known = sorted(session.exec(select(Coder.name).where(col(Coder.kind) == "gold")).all())
        why = "no coder" if coder is None else f"{coder.kind} coder"
        raise InputError(
            f"--gold {gold!r}: {why} of that name is a gold coder (gold coders: {', '.join(known) or 'none'}); "
            "import one (`annotator import codes --kind gold`) or build one (`annotator gold build NAME --from a,b`)"
        )
    return coder


def load_gold_and_runs(
    session: Session, gold: str, split: str, runs: list[int] | None, codebook: str | None
) -> dict[str, Any]:
    """The gold coder's codes on ``split``, the codebook's labels and the repeat-0 answers of the runs.

    ``runs``: these run ids (refused unless LLM or baseline runs of the codebook), or every such run when
    None. Returns a dict: gold, gold_kind, codebook, codebook_versions, labels, uncertain, gold_codes
    (document id -> label), doc_ids, metas (document id -> metadata) and runs (a list of ``RunInfo``, each
    with its asked gold items and its answers on them only).
    """
    if split not in SPLITS:
        raise InputError(f"--split {split!r}: use dev, test or all")
    coder = _gold_coder(session, gold)
    assert coder.id is not None
    name = _codebook_name(session, coder.id, codebook)
    versions = sorted(
        session.exec(select(CodebookVersion).where(col(CodebookVersion.name) == name)).all(),
        key=lambda v: v.version,
    )
    if not versions:
        known = sorted(set(session.exec(select(CodebookVersion.name)).all()))
        raise InputError(
            f"no codes under codebook {name!r} (codebooks with codes: {', '.join(known) or 'none'})"
        )
    books = [stored_codebook(session, v.name, v.version) for v in versions]
    latest = books[-1]
    if latest.kind == "multilabel":
        raise InputError(f"codebook {latest.ref} is multilabel: validate needs one label per text")
    labels: list[str] = []
    for book in reversed(books):
        labels += [n for n in book.label_names if n not in labels]
    uncertain = latest.uncertain.name if latest.uncertain else None
    version_ids = [v.id for v in versions]

    # gold codes (the latest import run per document)
    q = (
        sa_select(col(Annotation.document_id), col(Annotation.label), col(Run.id))
        .join(Run, col(Run.id) == col(Annotation.run_id))
        .join(Document, col(Document.id) == col(Annotation.document_id))
        .where(
            col(Run.coder_id) == coder.id,
            col(Run.codebook_id).in_(version_ids),
            col(Annotation.status) == "ok",
            col(Annotation.label).is_not(None),
            col(Annotation.repeat) == 0,
        )
        .order_by(col(Run.id))
    )
    if split != "all":
        q = q.where(col(Document.split) == split)
    gold_codes: dict[int, str] = {}
    for doc_id, label, _ in session.execute(q).all():
        gold_codes[doc_id] = label
    if not gold_codes:
        raise InputError(
            f"gold coder {coder.name!r} has no codes of codebook {name!r} on split {split!r}"
            + ("; use --split all or assign splits (`annotator split`)" if split != "all" else "")
        )

    # runs
    rq = select(Run).where(col(Run.codebook_id).in_(version_ids), col(Run.kind).in_(RUN_KINDS))
    if runs:
        found = {r.id: r for r in session.exec(select(Run).where(col(Run.id).in_(runs))).all()}
        bad = [
            f"{i} ({'no such run' if i not in found else 'not an LLM or baseline run of ' + repr(name)})"
            for i in runs
            if i not in found or found[i].kind not in RUN_KINDS or found[i].codebook_id not in version_ids
        ]
        if bad:
            raise InputError(f"--runs: {', '.join(bad)}; `annotator runs` lists the runs")
        rq = rq.where(col(Run.id).in_(runs))
    run_rows = sorted(session.exec(rq).all(), key=lambda r: r.id or 0)
    if not run_rows:
        raise InputError(f"no LLM or baseline runs of codebook {name!r}; label with `annotator run` first")
    asked = asked_sets(session, [r.id for r in run_rows if r.id is not None])
    infos: list[RunInfo] = []
    for r in run_rows:
        assert r.id is not None
        prompt = session.get(PromptVersion, r.prompt_id) if r.prompt_id is not None else None
        info = RunInfo.of(r, prompt)
        info.selected = asked[r.id]
        info.asked = {d for d in asked[r.id] if d in gold_codes}
        aq = sa_select(col(Annotation.document_id), col(Annotation.label), col(Annotation.status)).where(
            col(Annotation.run_id) == r.id, col(Annotation.repeat) == 0
        )
        for doc_id, label, status in session.execute(aq).all():
            if doc_id in info.asked:
                info.answers[doc_id] = label if status == "ok" and label is not None else None
        infos.append(info)

    doc_ids = sorted(gold_codes)
    metas = dict(
        session.execute(
            sa_select(col(Document.id), col(Document.meta)).where(col(Document.id).in_(doc_ids))
        ).all()
    )
    gold_labels = set(gold_codes.values())
    unknown = sorted(gold_labels - set(labels) - {uncertain})
    if unknown:
        raise InputError(
            f"gold coder {coder.name!r} has labels no version of codebook {name!r} defines: {unknown}"
        )
    return {
        "gold": coder.name,
        "gold_kind": coder.kind,
        "codebook": name,
        "codebook_versions": [v.version for v in versions],
        "labels": labels,
        "uncertain": uncertain,
        "gold_codes": gold_codes,
        "doc_ids": doc_ids,
        "metas": {d: (m or {}) for d, m in metas.items()},
        "runs": infos,
    }


def _all_meta_columns(session: Session) -> list[str]:
    cols: set[str] = set()
    for meta in session.execute(sa_select(col(Document.meta))).scalars().all():
        cols.update((meta or {}).keys())
    return sorted(cols)


# -- figures ----------------------------------------------------------------------------------------------


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
    started = _when(info.started_at)
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
            f"run {info.id}: prompt {info.prompt} was frozen at {_when(info.frozen_at)}, before the run started "
            f"({started})"
        )
    else:
        line = (
            f"run {info.id}: prompt {info.prompt} was NOT frozen before the run started: frozen at "
            f"{_when(info.frozen_at)}, run started {started}"
        )
    return {
        "frozen_before_run": frozen,
        "prompt": info.prompt,
        "frozen_at": _when(info.frozen_at),
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
            columns = _all_meta_columns(session)
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
