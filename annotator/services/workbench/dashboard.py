"""The lead's dashboard: each coder's progress, and human-human agreement on the overlap as it fills.

Agreement is computed on the overlap documents only (those every coder of an assignment was given), on the
units two or more coders have coded so far, with their n beside each figure. The dashboard watches the overlap
fill, so from ``PROVISIONAL_UNITS`` units it shows alpha marked provisional (its interval says how little 10 or
20 units settle); from ``MIN_UNITS`` (where `annotator agreement` and the report start giving a figure) it is
no longer marked; below ``PROVISIONAL_UNITS`` it is "too few units (n)". The uncertain label is missing.
Alpha comes with a seeded unit-bootstrap 95% interval (``N_BOOT`` replicates: the page is recomputed on every
load, and 500 replicates of a few hundred units take milliseconds). The coder-by-coder confusion tables show,
for each pair, the labels both gave on the overlap documents both coded.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median
from typing import Any, TypedDict

from annotator.project import Project
from annotator.services.results import Result
from annotator.stats.alpha import alpha_report
from annotator.stats.bootstrap import Alpha, bootstrap
from annotator.stats.intervals import MIN_UNITS, estimate, too_few
from annotator.stats.matrix import to_matrix
from annotator.store import coding as rows
from annotator.store.registry import project_codebook

N_BOOT = 500
PROVISIONAL_UNITS = 10  # a lead checking a first round of 20 shared documents sees a figure


class CoderProgress(TypedDict):
    name: str
    role: str
    revoked: bool
    assigned: int
    done: int
    skipped: int
    unclear: int  # codes flagged "codebook unclear"
    median_seconds: float | None  # per coded document


class Confusion(TypedDict):
    a: str
    b: str
    n_units: int  # overlap documents both coded
    labels: list[str]
    counts: list[list[int]]  # counts[i][j]: a said labels[i], b said labels[j]


class OverlapAgreement(TypedDict):
    codebook: str
    coders: list[str]
    overlap_documents: int  # queued to every coder
    n_units: int  # of which two or more coders have coded
    pairable_values: int
    alpha: dict[str, Any]  # estimate, low, high (None with a reason when too few units or undefined)
    provisional: bool  # a figure on fewer than MIN_UNITS units
    confusion: list[Confusion]


@dataclass(frozen=True)
class Dashboard(Result):
    coders: list[CoderProgress]
    agreement: list[OverlapAgreement]  # one per codebook with an overlap
    min_units: int


def _confusion(a: str, b: str, la: dict[int, str], lb: dict[int, str], labels: list[str]) -> Confusion:
    both = sorted(set(la) & set(lb))
    index = {x: i for i, x in enumerate(labels)}
    counts = [[0] * len(labels) for _ in labels]
    for d in both:
        counts[index[la[d]]][index[lb[d]]] += 1
    return {"a": a, "b": b, "n_units": len(both), "labels": labels, "counts": counts}


def _blank(reason: str) -> dict[str, Any]:
    return {"estimate": None, "low": None, "high": None, "reason": reason}


def _agreement(
    codebook: str,
    names: list[str],
    overlap: set[int],
    labels: dict[str, dict[int, str]],
    allowed: list[str],
    uncertain: str | None,
    multilabel: bool = False,
) -> OverlapAgreement:
    keep = (lambda x: x != uncertain) if multilabel else (lambda x: x != uncertain and x in allowed)
    coded = {n: {d: x for d, x in labels[n].items() if d in overlap and keep(x)} for n in names}
    records = [(n, d, x) for n in names for d, x in coded[n].items()]
    units = sorted({d for n in names for d in coded[n]})
    report_n, values, alpha = 0, 0, _blank(too_few(0))
    if multilabel:  # as `annotator agreement`: alpha and a confusion table need one label per text
        shared = [d for d in units if sum(d in coded[n] for n in names) >= 2]
        reason = "not computed: a multilabel codebook (agreement needs one label per text)"
        return {"codebook": codebook, "coders": names, "overlap_documents": len(overlap),
                "n_units": len(shared), "pairable_values": sum(sum(d in coded[n] for n in names) for d in shared),
                "alpha": _blank(reason), "provisional": False, "confusion": []}  # fmt: skip
    if records:
        matrix, _, _, _ = to_matrix(records, coders=names, units=units, categories=allowed)
        rep = alpha_report(matrix)
        report_n, values = rep.pairable_units, rep.pairable_values
        if rep.pairable_units < PROVISIONAL_UNITS:
            alpha = _blank(too_few(rep.pairable_units, PROVISIONAL_UNITS))
        elif rep.reason is not None:
            alpha = _blank(rep.reason)
        else:
            boot = bootstrap(matrix, Alpha(), n=N_BOOT, seed=0)
            alpha = estimate(boot.estimate, boot.replicates)
    pairs = [
        _confusion(a, b, coded[a], coded[b], allowed) for i, a in enumerate(names) for b in names[i + 1 :]
    ]
    return {
        "codebook": codebook,
        "coders": names,
        "overlap_documents": len(overlap),
        "n_units": report_n,
        "pairable_values": values,
        "alpha": alpha,
        "provisional": alpha.get("estimate") is not None and report_n < MIN_UNITS,
        "confusion": pairs,
    }


def dashboard(project: Project) -> Dashboard:
    """Every account's progress, and agreement on each codebook's overlap documents."""
    progress: list[CoderProgress] = []
    by_codebook: dict[str, dict[str, Any]] = {}
    with project.transaction() as session:
        for acc in rows.accounts(session):
            items = rows.queue(session, acc.coder_id)
            secs = [a.seconds for a, _ in items if a.seconds is not None and not a.skipped]
            progress.append(
                {
                    "name": acc.name,
                    "role": acc.role,
                    "revoked": acc.revoked_at is not None,
                    "assigned": len(items),
                    "done": sum(1 for a, _ in items if a.coded_at is not None and not a.skipped),
                    "skipped": sum(1 for a, _ in items if a.skipped),
                    "unclear": sum(1 for a, _ in items if a.unclear),
                    "median_seconds": round(median(secs), 1) if secs else None,
                }
            )
            for a, _ in items:
                if a.overlap:
                    entry = by_codebook.setdefault(a.codebook, {"coders": {}, "docs": set()})
                    entry["docs"].add(a.document_id)
                    entry["coders"].setdefault(acc.name, acc.coder_id)
        labels = {
            cb: {name: rows.human_labels(session, cid, cb) for name, cid in entry["coders"].items()}
            for cb, entry in by_codebook.items()
        }
    out = []
    for cb, entry in sorted(by_codebook.items()):
        book = project_codebook(project, cb)
        uncertain = book.uncertain.name if book.uncertain else None
        names = sorted(entry["coders"])
        multi = book.kind == "multilabel"
        out.append(_agreement(cb, names, entry["docs"], labels[cb], book.label_names, uncertain, multi))
    return Dashboard(progress, out, MIN_UNITS)
