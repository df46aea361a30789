"""`annotator export`: the labels of one run, with their provenance, as a file a statistics package reads.

One row per answer (document x repeat) of the run, with the document id (``id``, the user's doc_key), the
label, its probability, the answer's status and error, and the run, model, prompt and codebook that made it
(``frame``: the columns are ``COLUMNS``). Invalid and error rows keep an empty label: a label is never
invented.

Beside the export go the codebook the run used (``FILE.codebook.yaml``) and a provenance record
(``FILE.provenance.json``). Every path is checked before any work: an existing export or sidecar is not
replaced unless ``overwrite`` is set, and a refused export writes nothing. The files are written all or
nothing, with the mode the umask gives (``files``, the writer the report uses too). With
``min_f1``/``min_alpha`` the export happens only when the run's latest stored test-split validation or
agreement reaches the threshold (``gate``).

The pieces: ``frame`` builds the rows, ``gate`` is the validation gate, ``formats`` writes csv, tsv, jsonl,
parquet, xlsx and Stata files with their sidecars; ``files`` writes them; ``export_run`` here ties them
together.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from annotator.codebook import to_yaml
from annotator.project import Project

from .files import Writer, write_files
from .formats import (
    FORMATS,
    STATA_STR_MAX,
    SUFFIXES,
    XLSX_CELL_MAX,
    _check_target,
    _provenance,
    _write_frame,
    label_codes,
    resolve_format,
    sidecars,
)
from .frame import COLUMNS, META_PREFIX, TEXT_COLUMN, _check_split, _context, _frame, export_frame
from .gate import check_validation
from .result import SPLITS, ExportFormat, ExportResult, ExportSplit, Gate

__all__ = [
    "COLUMNS",
    "FORMATS",
    "META_PREFIX",
    "SPLITS",
    "STATA_STR_MAX",
    "SUFFIXES",
    "TEXT_COLUMN",
    "XLSX_CELL_MAX",
    "ExportFormat",
    "ExportResult",
    "ExportSplit",
    "Gate",
    "check_validation",
    "export_frame",
    "export_run",
    "label_codes",
    "resolve_format",
    "sidecars",
]


def export_run(
    project: Project,
    run_id: int,
    out: str | Path,
    fmt: str | None = None,
    split: str | None = None,
    repeat: int | None = 0,
    text: bool = False,
    meta: bool = False,
    overwrite: bool = False,
    min_f1: float | None = None,
    min_alpha: float | None = None,
    conservative: bool = False,
    validated_only: bool = False,
) -> ExportResult:
    """Write the labels of a run (see the module docstring) and the codebook and provenance beside them.

    ``min_f1``/``min_alpha`` (or ``validated_only``, which then needs one of them) gate the export on the
    run's stored test-split figures. Returns what was written.
    """
    out = Path(out)
    _check_target(out, overwrite)
    kind = resolve_format(out, fmt)
    split = _check_split(split)
    gate = None
    if validated_only or min_f1 is not None or min_alpha is not None:
        gate = check_validation(project, run_id, min_f1, min_alpha, conservative)
    with project.transaction() as session:
        ctx = _context(session, run_id)
        frame = _frame(session, ctx, split, repeat, text, meta)
    counts = frame["status"].value_counts()
    codes = label_codes(ctx.codebook, frame["label"]) if kind == "dta" else None
    warnings: list[str] = []
    if ctx.run.status != "done":
        warnings.append(
            f"run {run_id} is {ctx.run.status}: the export holds the {len(frame)} answers there are "
            f"(of {ctx.run.n_items} items planned)"
        )
    if kind == "dta" and codes is None:
        warnings.append("a multilabel codebook: the Stata label column is text (a;b), without value labels")
    if kind == "xlsx":
        long = [
            str(c)
            for c in frame.columns
            if frame[c].map(lambda v: isinstance(v, str) and len(v) > XLSX_CELL_MAX).any()
        ]
        if long:
            frame = frame.copy()
            for c in long:
                frame[c] = frame[c].map(lambda v: v[:XLSX_CELL_MAX] if isinstance(v, str) else v)
            warnings.append(f"Excel cells hold at most {XLSX_CELL_MAX} characters: cut in {', '.join(long)}")
    codebook_path, provenance_path = sidecars(out)
    draft = ExportResult(
        path=str(out),
        format=kind,
        run_id=run_id,
        split=split,
        repeat=repeat,
        n_rows=len(frame),
        n_ok=int(counts.get("ok", 0)),
        n_invalid=int(counts.get("invalid", 0)),
        n_error=int(counts.get("error", 0)),
        columns=[],
        codebook_path=str(codebook_path) if ctx.codebook is not None else None,
        provenance_path=str(provenance_path),
        label_codes=codes,
        validation=gate,
        warnings=warnings,
    )
    title = f"annotator run {run_id} ({ctx.run.model or ctx.coder})"
    columns: list[str] = []  # as written, known once the export is

    def write_export(tmp: Path) -> None:
        columns[:] = _write_frame(frame, tmp, kind, codes, title)

    def write_provenance(tmp: Path) -> None:
        written = replace(draft, columns=list(columns))
        record = _provenance(ctx, written, codebook_path.name if ctx.codebook is not None else None)
        tmp.write_text(json.dumps(record, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")

    writers: list[tuple[Path, Writer]] = [(out, write_export)]
    if ctx.codebook is not None:
        book = ctx.codebook
        writers.append((codebook_path, lambda tmp: tmp.write_text(to_yaml(book), encoding="utf-8")))
    writers.append((provenance_path, write_provenance))
    # the export is written first (the provenance records its columns) and moved into place last
    write_files(writers, overwrite)
    return replace(draft, columns=list(columns))
