"""What `annotator export` wrote (``ExportResult``), and the closed sets of its formats and splits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict, get_args

from annotator.services.results import Result

ExportFormat = Literal["csv", "tsv", "jsonl", "parquet", "xlsx", "dta"]  # dta: Stata, format 118
ExportSplit = Literal["dev", "test", "all"]
FORMATS: tuple[ExportFormat, ...] = get_args(ExportFormat)
SPLITS: tuple[ExportSplit, ...] = get_args(ExportSplit)


class Gate(TypedDict):
    """The validation gate's figures (``min_f1``/``min_alpha``), all of which passed."""

    conservative: bool  # the lower end of the 95% interval was compared, not the point estimate
    # one per threshold: figure, estimate, low, high, compared, threshold, passed, line, metric_id, n, few, and
    # for macro F1 gold, n_gold, accuracy, kappa, coverage, frozen; for alpha level (and reason when undefined)
    checks: list[dict[str, Any]]


@dataclass(frozen=True)
class ExportResult(Result):
    """What `export_run` wrote; ``to_json()`` is what ``export --json`` prints."""

    path: str  # the export, as given
    format: ExportFormat
    run_id: int
    split: ExportSplit  # the documents' split exported
    repeat: int | None  # the repeat exported (0: each document's first answer); None: every repeat
    n_rows: int  # rows written (answers)
    n_ok: int  # of which with a codebook label
    n_invalid: int  # of which answered outside the codebook (empty label)
    n_error: int  # of which without an answer (empty label)
    columns: list[str]  # as written in the file (Stata: its variable names)
    codebook_path: str | None  # the codebook sidecar; None when the run has no codebook
    provenance_path: str  # the provenance sidecar
    label_codes: dict[int, str] | None = None  # Stata: the integer codes of the label column
    validation: Gate | None = None  # the gate's figures, when min_f1/min_alpha were given
    warnings: list[str] = field(default_factory=list)  # one line each
