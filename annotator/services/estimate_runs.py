"""`annotator estimate --across-runs`: how much a finding depends on coding choices (the multiverse check
Baumann et al. 2025, "LLM hacking", ask researchers to report): the same prediction-powered estimate under
every run of the codebook (each prompt version, model, temperature, baseline), side by side, with the
spread, whether a group difference changes sign or significance between runs, and a one-line verdict.

Which runs: those named (``--runs``), else every LLM and baseline run of the gold coder's codebook that is
not archived and was asked gold items of the split. Each run is estimated on its own asked set with the same
gold coder and design, so every figure keeps its n; a run the estimate refuses (no gold items among its
documents, an unknown design) is listed with the reason, not dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlmodel import col, select

from annotator.errors import AnnotatorError, InputError, arg
from annotator.project import Project
from annotator.services.estimate import estimate
from annotator.services.results import Result
from annotator.stats.errors import DataError
from annotator.store.estimation import NotAsked
from annotator.store.models import CodebookVersion, Run
from annotator.store.scored import RUN_KINDS, _codebook_name, _gold_coder, default_gold


@dataclass(frozen=True)
class RunFigure:
    run_id: int
    model: str | None
    prompt: str | None
    n_documents: int
    n_gold: int
    share: dict[str, Any] | None  # PPI estimate of the label's share
    difference: dict[str, Any] | None  # PPI estimate of the first two groups' difference (with --by)
    skipped: str | None = None


@dataclass(frozen=True)
class AcrossRuns(Result):
    label: str
    gold: str
    split: str
    by: str | None
    groups: list[str]  # the two groups compared (with --by)
    runs: list[RunFigure]
    spread: list[float] | None  # [min, max] of the share's estimates
    verdict: str
    alpha: float = 0.05
    design: str | None = None  # the design each run's estimate assumed (the first estimated run's statement)
    notes: list[str] = field(default_factory=list)


def _default_runs(project: Project, gold: str | None) -> tuple[list[int], str]:
    with project.transaction() as session:
        coder = _gold_coder(session, gold or default_gold(session))
        assert coder.id is not None
        name = _codebook_name(session, coder.id, None)
        ids = session.exec(
            select(Run.id)
            .join(CodebookVersion, col(CodebookVersion.id) == col(Run.codebook_id))
            .where(
                col(CodebookVersion.name) == name,
                col(Run.kind).in_(RUN_KINDS),
                col(Run.archived_at).is_(None),
            )
            .order_by(col(Run.id))
        ).all()
    return [int(i) for i in ids if i is not None], coder.name


def across_runs(
    project: Project,
    runs: list[int] | None,
    label: str | None,
    gold: str | None = None,
    split: str = "all",
    by: str | None = None,
    alpha: float = 0.05,
    **design: Any,
) -> AcrossRuns:
    ids, gold_name = (runs, gold or "") if runs else _default_runs(project, gold)
    if not ids:
        raise InputError(
            "no LLM or baseline runs of the gold coder's codebook; label with `annotator run` first"
        )
    figures: list[RunFigure] = []
    chosen_label = label
    groups: list[str] = []
    statement: str | None = None
    for run_id in ids:
        try:
            result = estimate(project, run_id, gold, split, by, [label] if label else None, alpha, **design)
        except NotAsked:
            figures.append(RunFigure(run_id, None, None, 0, 0, None, None, f"asked no {split} document"))
            continue
        except (AnnotatorError, DataError) as exc:
            figures.append(RunFigure(run_id, None, None, 0, 0, None, None, skipped=str(exc)))
            continue
        gold_name, statement = result.gold, statement or result.design_statement
        chosen_label = chosen_label or result.labels[0].label
        mine = next((e for e in result.labels if e.label == chosen_label), None)
        diff = next((d for d in result.differences if d["label"] == chosen_label), None)
        if diff is not None and not groups:
            groups = list(diff["groups"])
        figures.append(
            RunFigure(
                run_id,
                result.model,
                result.prompt,
                result.n_documents,
                result.n_gold,
                mine.ppi if mine else None,
                diff["ppi"] if diff and diff["groups"] == groups else None,
            )
        )
    if chosen_label is None:
        raise InputError("no run could be estimated: " + "; ".join(f.skipped or "" for f in figures))
    shares = [f.share["estimate"] for f in figures if f.share and f.share["estimate"] is not None]
    spread = [min(shares), max(shares)] if shares else None
    verdict = _verdict(figures, chosen_label, groups, spread)
    return AcrossRuns(chosen_label, gold_name, split, by, groups, figures, spread, verdict, alpha, statement)


def _verdict(figures: list[RunFigure], label: str, groups: list[str], spread: list[float] | None) -> str:
    done = [f for f in figures if f.skipped is None]
    if groups:
        diffs = [f.difference for f in done if f.difference and f.difference["estimate"] is not None]
        signs = [_sign(d) for d in diffs]
        positive, negative = signs.count(1), signs.count(-1)
        if not diffs:
            return f"no run gave a difference between {groups[0]!r} and {groups[1]!r}"
        if not positive and not negative:
            return (
                f"no run finds a significant difference in {label!r} between {groups[0]!r} and {groups[1]!r} "
                f"({len(diffs)} runs)"
            )
        lead = 1 if positive >= negative else -1
        holds, reverses = (positive, negative) if lead == 1 else (negative, positive)
        word = "higher" if lead == 1 else "lower"
        finding = f"{label!r} is significantly {word} in {groups[0]!r} than in {groups[1]!r}"
        if reverses:
            return (
                f"the finding ({finding}) holds in {holds} of {len(diffs)} runs and reverses (significantly) in "
                f"{reverses}: it depends on the coding choices"
            )
        unclear = len(diffs) - holds
        tail = f"; not significant in {unclear}" if unclear else ""
        return f"the finding ({finding}) holds in {holds} of {len(diffs)} runs{tail}"
    if spread is None:
        return "no run gave an estimate"
    intervals = [
        (f.share["lower"], f.share["upper"]) for f in done if f.share and f.share["lower"] is not None
    ]
    overlap = max(lo for lo, _ in intervals) <= min(hi for _, hi in intervals) if intervals else False
    return (
        f"the share of {label!r} lies between {spread[0]:.3f} and {spread[1]:.3f} across {len(intervals)} runs; "
        + ("every run's interval overlaps every other's" if overlap else "some runs' intervals do not overlap: it "
           "depends on the coding choices")
    )  # fmt: skip


def _sign(d: dict[str, Any]) -> int:
    """1 or -1 when the interval excludes 0 on that side, 0 when it includes it."""
    if d["lower"] is not None and d["lower"] > 0:
        return 1
    if d["upper"] is not None and d["upper"] < 0:
        return -1
    return 0


def parse_runs(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InputError(f"{arg('runs', text)}: a comma list of run ids, e.g. 3,5,9") from None
