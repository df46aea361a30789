"""The coding process for the methods report: who coded what in the workbench, the overlap, the time per
document, how the gold was adjudicated, and the review notes that explain why a codebook changed."""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median
from typing import TypedDict

from annotator.project import Project
from annotator.services.results import Result
from annotator.services.workbench.review import NoteSummary, note_summary
from annotator.store import coding as rows
from annotator.store import review


class CoderLine(TypedDict):
    name: str
    role: str
    assigned: int
    coded: int
    skipped: int
    unclear: int  # codes flagged "codebook unclear"
    overlap_coded: int  # of the overlap documents
    median_seconds: float | None


class GoldLine(TypedDict):
    gold: str
    unanimous: int
    adjudicated: int
    by: list[str]  # the leads who decided


@dataclass(frozen=True)
class CodingProcess(Result):
    coders: list[CoderLine]
    overlap_documents: int  # documents queued to more than one coder
    seconds_per_document: float | None  # median over every coded document
    adjudication: list[GoldLine]
    review: NoteSummary

    @property
    def empty(self) -> bool:
        return not self.coders and not self.adjudication and not self.review.n_notes


def coding_process(project: Project) -> CodingProcess:
    lines: list[CoderLine] = []
    seconds: list[float] = []
    overlap: set[int] = set()
    golds: list[GoldLine] = []
    with project.transaction() as session:
        for acc in rows.accounts(session):
            items = rows.queue(session, acc.coder_id)
            done = [a for a, _ in items if a.coded_at is not None and not a.skipped]
            own = [a.seconds for a in done if a.seconds is not None]
            seconds.extend(own)
            overlap.update(a.document_id for a, _ in items if a.overlap)
            lines.append(
                {
                    "name": acc.name,
                    "role": acc.role,
                    "assigned": len(items),
                    "coded": len(done),
                    "skipped": sum(1 for a, _ in items if a.skipped),
                    "unclear": sum(1 for a in done if a.unclear),
                    "overlap_coded": sum(1 for a in done if a.overlap),
                    "median_seconds": round(median(own), 1) if own else None,
                }
            )
        for gold_id, name in review.gold_coders(session):
            decided = review.adjudications(session, gold_id)
            if not decided:
                continue
            leads = review.coder_names(session, {a.by_id for a in decided.values() if a.by_id is not None})
            golds.append(
                {
                    "gold": name,
                    "unanimous": sum(1 for a in decided.values() if a.how == "unanimous"),
                    "adjudicated": sum(1 for a in decided.values() if a.how == "adjudicated"),
                    "by": sorted(leads.values()),
                }
            )
    return CodingProcess(
        lines, len(overlap), round(median(seconds), 1) if seconds else None, golds, note_summary(project)
    )
