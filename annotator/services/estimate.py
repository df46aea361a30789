"""`annotator estimate`: from a run's labels to a figure a paper can print: the share of each label in the
documents the run was asked, three ways side by side, each with its interval and its n:

- **gold only**: the gold codes alone (valid, wide);
- **LLM only**: the run's labels on every document, NOT bias-corrected (its interval ignores the LLM's
  errors), with the LLM's bias measured on the gold items beside it;
- **prediction-powered** (PPI++, power-tuned): the run's labels on every document, corrected with the gold
  items (Angelopoulos et al. 2023; annotator.stats.ppi).

Units: the population is the run's asked set within the split; an asked document without a valid answer
counts as "not this label" for the LLM (PPI stays valid whatever the LLM's errors) and is counted in the
result. The gold items are the population's documents with a gold code.

PPI needs the gold items to be a probability sample of the population. The design is stated, and refused
when unknown: `census` (gold codes on every document: the gold share is the population's), `--gold-sample N
--seed S` (annotator draws a simple random sample of the gold-coded documents, or with ``--strata COL`` a
stratified one with equal allocation, weighted by N_h / n_h), or `--assume-random` (the user says the gold
documents were drawn at random; with ``--strata COL``, at random within each stratum). Gold built from
adjudicated disagreements or a hand-picked file is not a random sample, and nothing here can make it one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from annotator.errors import InputError, arg
from annotator.project import Project
from annotator.services.results import Result
from annotator.stats.errors import DataError
from annotator.store.estimation import EstimationData, load_estimation

MAX_GROUPS = 12  # --by: more groups than this is a column of ids, not of groups


@dataclass(frozen=True)
class Design:
    kind: str  # census, sample, stratified sample, assumed random, assumed stratified
    statement: str  # what is assumed, in words
    gold_ids: list[int]  # the gold items used
    weights: list[float] | None  # design weights (N_h / n_h), aligned with gold_ids; None: equal


@dataclass(frozen=True)
class LabelEstimate:
    label: str
    gold_only: dict[str, Any] | None
    llm_only: dict[str, Any]
    llm_bias: dict[str, Any] | None  # mean(LLM - gold) on the gold items
    ppi: dict[str, Any] | None
    census: float | None  # the share among every gold code when gold covers the population
    error: str | None = None  # why gold-only and PPI are missing


@dataclass(frozen=True)
class GroupEstimates:
    group: str
    n_documents: int
    n_gold: int
    labels: list[LabelEstimate]


@dataclass(frozen=True)
class EstimateResult(Result):
    run_id: int
    model: str | None
    prompt: str | None
    codebook: str
    gold: str
    split: str
    alpha: float
    n_documents: int  # the population: the run's asked set within the split
    n_no_valid_answer: int  # asked, no valid answer (counted as no label for the LLM)
    n_gold: int  # gold items used
    design: str
    design_statement: str
    labels: list[LabelEstimate]
    by: str | None = None
    groups: list[GroupEstimates] = field(default_factory=list)
    differences: list[dict[str, Any]] = field(default_factory=list)
    regression: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


def _indicator(values: list[str | None], label: str) -> np.ndarray:
    return np.fromiter((1.0 if v == label else 0.0 for v in values), dtype=float, count=len(values))


def design_of(
    data: EstimationData,
    gold_sample: int | None = None,
    seed: int = 0,
    strata: str | None = None,
    assume_random: bool = False,
) -> Design:
    """How the gold items were chosen, as far as annotator knows it (module docstring); refused when unknown."""
    frame = sorted(data.gold_codes)
    n_pop = len(data.population)
    if not frame:
        raise InputError(
            f"gold coder {data.gold!r} coded none of the {n_pop} documents run {data.run_id} was asked; code "
            "a random sample of them (`annotator assign`, then `annotator gold build`)"
        )
    census = len(frame) == n_pop
    if strata is not None:
        _check_strata(data, strata)
    if gold_sample is not None:
        if gold_sample < 2 or gold_sample > len(frame):
            raise InputError(f"{arg('gold_sample', gold_sample)}: use 2 to {len(frame)} (the gold items)")
        if not census and not assume_random:
            raise InputError(
                f"gold coder {data.gold!r} coded {len(frame)} of the {n_pop} documents: a sample drawn from them "
                f"is a random sample of those {len(frame)}, not of the {n_pop}, unless they were drawn at random "
                f"themselves; add {arg('assume_random')} if they were"
            )
        ids, weights = _draw(data, frame, gold_sample, seed, strata)
        kind = "stratified sample" if strata else "sample"
        how = (
            f"a stratified random sample by {strata!r}, equal allocation, weighted by N_h / n_h"
            if strata
            else "a simple random sample"
        )
        statement = f"{how} of {gold_sample} gold items drawn by annotator (seed {seed}) from " + (
            f"gold codes on all {n_pop} documents" if census else f"the {len(frame)} gold-coded documents"
        )
        return Design(kind, statement, ids, weights)
    if census:
        return Design(
            "census",
            f"census: gold coder {data.gold!r} coded all {n_pop} documents, so the gold share is the share in "
            "these documents; the intervals treat them as a sample from a larger population",
            frame,
            None,
        )
    if not assume_random:
        where = f" (imported from {', '.join(data.gold_sources)})" if data.gold_sources else ""
        raise InputError(
            f"gold coder {data.gold!r} coded {len(frame)} of the {n_pop} documents{where}, and annotator does not "
            "know how they were chosen; a prediction-powered estimate needs a random sample (gold built from "
            "adjudicated disagreements or a hand-picked file is not one). Add "
            f"{arg('assume_random')} if they were drawn at random (e.g. `annotator assign` without "
            f"stratification), with {arg('strata', 'COL')} if at random within the groups of a column"
        )
    weights = _stratum_weights(data, frame, strata) if strata else None
    kind = "assumed stratified" if strata else "assumed random"
    statement = (
        f"assumed (--assume-random): the {len(frame)} gold items are a "
        + (
            f"random sample within each group of {strata!r}, weighted by N_h / n_h"
            if strata
            else "simple random sample"
        )
        + f" of the {n_pop} documents"
    )
    return Design(kind, statement, frame, weights)


def _stratum(data: EstimationData, doc: int, strata: str) -> str:
    return str(data.metas.get(doc, {}).get(strata))


def _check_strata(data: EstimationData, strata: str) -> None:
    missing = [data.keys[d] for d in data.population if strata not in data.metas.get(d, {})]
    if missing:
        raise InputError(
            f"{arg('strata', strata)}: {len(missing)} documents have no {strata!r} (e.g. {missing[0]!r}); "
            "strata must cover every document"
        )


def _draw(
    data: EstimationData, frame: list[int], n: int, seed: int, strata: str | None
) -> tuple[list[int], list[float] | None]:
    rng = np.random.default_rng(seed)
    if strata is None:
        return sorted(int(frame[i]) for i in rng.choice(len(frame), size=n, replace=False)), None
    groups: dict[str, list[int]] = {}
    for d in frame:
        groups.setdefault(_stratum(data, d, strata), []).append(d)
    share = n // len(groups)
    if share < 2:
        raise InputError(f"{arg('gold_sample', n)}: too few for {len(groups)} strata of {strata!r} (2 each)")
    picked: list[int] = []
    for name in sorted(groups):
        members = groups[name]
        take = min(share, len(members))
        picked += [int(members[i]) for i in rng.choice(len(members), size=take, replace=False)]
    picked.sort()
    return picked, _stratum_weights(data, picked, strata)


def _stratum_weights(data: EstimationData, gold: list[int], strata: str) -> list[float]:
    """w_i = N_h / n_h: the population's documents in item i's stratum over the gold items in it. Every
    stratum needs gold items: one without any would silently drop out of the estimate."""
    big: dict[str, int] = {}
    for d in data.population:
        h = _stratum(data, d, strata)
        big[h] = big.get(h, 0) + 1
    small: dict[str, int] = {}
    for d in gold:
        h = _stratum(data, d, strata)
        small[h] = small.get(h, 0) + 1
    empty = sorted(h for h in big if h not in small)
    if empty:
        raise InputError(
            f"{arg('strata', strata)}: no gold item in {len(empty)} of its groups ({', '.join(map(repr, empty[:5]))}, "
            f"{sum(big[h] for h in empty)} documents); a stratified design needs gold items in every group"
        )
    return [big[_stratum(data, d, strata)] / small[_stratum(data, d, strata)] for d in gold]


def _share(e: dict[str, Any]) -> dict[str, Any]:
    """A share's normal interval cut to [0, 1] (a share cannot leave it; near 0 or 1 the normal interval
    does); ``clipped`` says whether it was. The estimate and its standard error are left as they are."""
    lower, upper = e.get("lower"), e.get("upper")
    clipped = (lower is not None and lower < 0) or (upper is not None and upper > 1)
    if lower is not None:
        e["lower"] = max(0.0, lower)
    if upper is not None:
        e["upper"] = min(1.0, upper)
    return {**e, "clipped": clipped}


def label_estimates(
    data: EstimationData, design: Design, label: str, population: list[int], alpha: float
) -> LabelEstimate:
    """The three estimates of one label's share in ``population`` (a subset of data.population)."""
    from annotator.stats import ppi

    inside = set(population)
    keep = [i for i, d in enumerate(design.gold_ids) if d in inside]
    gold_ids = [design.gold_ids[i] for i in keep]
    weights = None if design.weights is None else [design.weights[i] for i in keep]
    yhat_all = _indicator([data.answers[d] for d in population], label)
    try:
        llm = _share(ppi.naive_share(yhat_all, alpha).to_dict())
    except DataError as exc:
        raise InputError(f"{label!r}: {exc}") from None
    census = None
    if design.kind in ("sample", "stratified sample") and len(data.gold_codes) == len(data.population):
        census = float(np.mean(_indicator([data.gold_codes[d] for d in population], label)))
    y = _indicator([data.gold_codes[d] for d in gold_ids], label)
    yhat = _indicator([data.answers[d] for d in gold_ids], label)
    try:
        gold = _share(ppi.classical_share(y, alpha, weights).to_dict())
        bias = ppi.measured_bias(y, yhat, alpha, weights).to_dict()
        corrected = _share(ppi.ppi_share(y, yhat, yhat_all, alpha, weights=weights).to_dict())
    except DataError as exc:
        return LabelEstimate(label, None, llm, None, None, census, str(exc))
    return LabelEstimate(label, gold, llm, bias, corrected, census)


def estimate(
    project: Project,
    run_id: int,
    gold: str | None = None,
    split: str = "all",
    by: str | None = None,
    labels: list[str] | None = None,
    alpha: float = 0.05,
    gold_sample: int | None = None,
    seed: int = 0,
    strata: str | None = None,
    assume_random: bool = False,
    regress: str | None = None,
    linear: bool = False,
) -> EstimateResult:
    if not 0 < alpha < 0.5:
        raise InputError(f"{arg('alpha', alpha)}: use e.g. 0.05 for 95% intervals")
    with project.transaction() as session:
        data = load_estimation(session, run_id, gold, split)
    design = design_of(data, gold_sample, seed, strata, assume_random)
    chosen = _labels(data, labels)
    notes: list[str] = []
    result_labels = [label_estimates(data, design, lab, data.population, alpha) for lab in chosen]
    groups, differences = ([], []) if by is None else _by(data, design, chosen, by, alpha, notes)
    regression = None
    if regress is not None:
        from annotator.services.estimate_regress import regression_estimates

        regression = regression_estimates(data, design, regress, alpha, notes, linear)
    missing = sum(1 for d in data.population if data.answers[d] is None)
    if missing:
        notes.append(
            f"{missing} of the {len(data.population)} documents have no valid answer from run {run_id} "
            "(invalid or error): counted as none of the labels for the LLM; the corrected estimate accounts for it"
        )
    if len(design.gold_ids) < 30:
        notes.append(f"only {len(design.gold_ids)} gold items: the normal intervals may be off at so few")
    return EstimateResult(
        run_id=run_id,
        model=data.model,
        prompt=data.prompt,
        codebook=data.codebook,
        gold=data.gold,
        split=split,
        alpha=alpha,
        n_documents=len(data.population),
        n_no_valid_answer=missing,
        n_gold=len(design.gold_ids),
        design=design.kind,
        design_statement=design.statement,
        labels=result_labels,
        by=by,
        groups=groups,
        differences=differences,
        regression=regression,
        notes=notes,
    )


def _labels(data: EstimationData, labels: list[str] | None) -> list[str]:
    if not labels:
        seen = set(data.gold_codes.values()) | {a for a in data.answers.values() if a is not None}
        return [lab for lab in data.labels if lab in seen]
    unknown = [lab for lab in labels if lab not in data.labels]
    if unknown:
        raise InputError(
            f"{arg('label', ','.join(unknown))}: not a label of codebook {data.codebook!r} "
            f"({', '.join(data.labels)})"
        )
    return labels


def _by(
    data: EstimationData, design: Design, labels: list[str], by: str, alpha: float, notes: list[str]
) -> tuple[list[GroupEstimates], list[dict[str, Any]]]:
    """Each group's estimates, and the difference between every two groups (of the first group and each other
    when there are more than four)."""
    from annotator.stats import ppi

    members: dict[str, list[int]] = {}
    for d in data.population:
        value = data.metas.get(d, {}).get(by)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        members.setdefault(str(value), []).append(d)
    if not members:
        raise InputError(f"{arg('by', by)}: no document of the run has a {by!r} value")
    small = sorted(name for name, ids in members.items() if len(ids) < 2)
    if small:
        notes.append(f"groups of {by!r} with fewer than 2 documents left out: {', '.join(small)}")
        members = {name: ids for name, ids in members.items() if len(ids) >= 2}
    if len(members) > MAX_GROUPS:
        raise InputError(f"{arg('by', by)}: {len(members)} groups; use a column with at most {MAX_GROUPS}")
    left_out = len(data.population) - sum(len(m) for m in members.values())
    if left_out:
        notes.append(f"{left_out} documents have no {by!r} value and are in no group")
    gold = set(design.gold_ids)
    groups = [
        GroupEstimates(
            name,
            len(ids),
            sum(1 for d in ids if d in gold),
            [label_estimates(data, design, lab, ids, alpha) for lab in labels],
        )
        for name, ids in sorted(members.items())
    ]
    pairs = [(a, b) for i, a in enumerate(groups) for b in groups[i + 1 :]]
    if len(groups) > 4:
        pairs = [(groups[0], b) for b in groups[1:]]
    differences = []
    for a, b in pairs:
        for ea, eb in zip(a.labels, b.labels, strict=True):
            row: dict[str, Any] = {"label": ea.label, "groups": [a.group, b.group]}
            for method in ("gold_only", "llm_only", "ppi"):
                x, y = getattr(ea, method), getattr(eb, method)
                row[method] = None if x is None or y is None else _difference(ppi, x, y)
            differences.append(row)
    return groups, differences


def _difference(ppi: Any, a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any] | None:
    """a - b from the stored dicts (None where a figure was not finite); None when they cannot be subtracted
    (one group weighted, the other not)."""

    def back(e: dict[str, Any]) -> Any:
        values = {k: e[k] for k in ppi.Estimate.__dataclass_fields__ if k in e}
        for k in ("estimate", "lower", "upper", "se"):
            values[k] = math.nan if values[k] is None else values[k]
        return ppi.Estimate(**values)

    try:
        return dict(ppi.difference(back(a), back(b)).to_dict())
    except DataError:
        return None


def record(
    project: Project,
    kind: str,
    result: dict[str, Any],
    run_id: int | None,
    split: str,
    params: dict[str, Any],
) -> None:
    """Store an estimate (``kind`` estimate or estimate_runs) with the settings that made it, for the report."""
    from annotator.services.results import stamped
    from annotator.store.models import Metric

    row = Metric(kind=kind, run_id=run_id, split=split, params=params, result=stamped(kind, result))
    with project.transaction() as session:
        session.add(row)


def check_out(out: Path, force: bool) -> None:
    """Refuse an --out file that cannot be written, before anything is computed."""
    if out.suffix.lower() not in (".csv", ".json"):
        raise InputError(f"{arg('out', str(out))}: write a .csv or a .json file")
    if out.exists() and not force:
        raise InputError(f"{out} exists: choose another file, or add {arg('force')} to replace it")


def write_estimates(out: Path, data: dict[str, Any], rows: list[dict[str, Any]], force: bool) -> None:
    """Write estimates as JSON (the whole result) or CSV (a row per figure), as every shared file is written
    (annotator.services.export.files: atomic, umask mode, replaced only with ``force``)."""
    import csv
    import io
    import json

    from annotator.services.export.files import write_text

    check_out(out, force)
    if out.suffix.lower() == ".json":
        text = json.dumps(data, indent=2, default=str)
    else:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["run"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        text = buffer.getvalue()
    write_text(out, text, force)
