"""The file formats of `annotator export`, its sidecars and the all-or-nothing write.

Formats: csv, tsv, jsonl, parquet, xlsx and Stata (dta, format 118, with variable labels and, for
single-label codebooks, value labels of the label column in codebook order).

Beside the export go the codebook the run used (``FILE.codebook.yaml``, from the stored version, not the
file on disk, which may have moved on) and a provenance record (``FILE.provenance.json``: the run's
parameters, prompt template, software versions and, when the export was gated, the validation figures).

How the files are written (mode, all or nothing, no overwrite without ``overwrite``) is ``files``, the one
writer of the files a user shares, which the report uses too.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from annotator.codebook import Codebook
from annotator.errors import InputError, arg
from annotator.redaction import redact

from .files import check_targets
from .frame import COLUMNS, META_PREFIX, _Context, _iso
from .result import FORMATS, ExportFormat, ExportResult

SUFFIXES: dict[str, ExportFormat] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".xlsx": "xlsx",
    ".dta": "dta",
}
STATA_STR_MAX = 2045  # bytes of a str# variable in format 118; longer strings become strL
XLSX_CELL_MAX = 32767  # characters of an Excel cell


def resolve_format(out: Path, fmt: str | None) -> ExportFormat:
    """The format from ``fmt`` or the suffix; a suffix that names another format is refused."""
    by_suffix = SUFFIXES.get(out.suffix.lower())
    if fmt is not None:
        kind = next((f for f in FORMATS if f == fmt.strip().lower()), None)
        if kind is None:
            raise InputError(f"{arg('fmt', fmt)}: use {', '.join(FORMATS)}")
        if by_suffix is not None and by_suffix != kind:
            raise InputError(f"{arg('fmt', fmt)}: the suffix of {out.name} says {by_suffix}; make them agree")
        return kind
    if by_suffix is None:
        what = f"from {out.suffix!r}" if out.suffix else "without a suffix"
        raise InputError(
            f"{out}: cannot tell the format {what}; end the name in .csv, .tsv, .jsonl, .parquet, .xlsx or "
            f".dta, or name the format, e.g. {arg('fmt', 'csv')}"
        )
    return by_suffix


def sidecars(out: Path) -> tuple[Path, Path]:
    """The codebook and provenance files written beside an export."""
    return out.with_name(out.name + ".codebook.yaml"), out.with_name(out.name + ".provenance.json")


def _check_target(out: Path, overwrite: bool) -> None:
    """Refuse before any work: a folder, a missing folder, or (without ``overwrite``) any existing file."""
    check_targets([out, *sidecars(out)], overwrite, InputError, example="labels.csv")


def _stata_name(name: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_]", "_", name) or "v"
    if not (base[0].isalpha() or base[0] == "_"):
        base = "v_" + base
    base = base[:32]
    cand, i = base, 1
    while cand.lower() in taken:
        suffix = f"_{i}"
        cand, i = base[: 32 - len(suffix)] + suffix, i + 1
    taken.add(cand.lower())
    return cand


def label_codes(codebook: Codebook | None, labels: pd.Series) -> dict[int, str] | None:
    """Integer codes 1..K of the labels in codebook order (the uncertain label last); None for multilabel."""
    if codebook is not None and codebook.kind == "multilabel":
        return None
    names = list(codebook.allowed_labels) if codebook is not None else []
    names += sorted({str(v) for v in labels.dropna()} - set(names))  # never lose a label the codebook lacks
    return {i: name for i, name in enumerate(names, start=1)}


def _write_dta(frame: pd.DataFrame, path: Path, codes: dict[int, str] | None, title: str) -> list[str]:
    data = frame.copy()
    taken: set[str] = set()
    renames = {c: _stata_name(str(c), taken) for c in data.columns}
    described = {renames[c]: COLUMNS.get(str(c), str(c))[:80] for c in data.columns}
    if "id" in described:  # the user's own id column, where the import recorded it
        described["id"] = str(frame.attrs.get("id_label") or COLUMNS["id"])[:80]
    data = data.rename(columns=renames)
    value_labels: dict[Any, dict[float, str]] = {}
    if codes is not None:
        index = {name: float(i) for i, name in codes.items()}
        data["label"] = data["label"].map(index).astype("float64")
        value_labels["label"] = {float(i): name for i, name in codes.items()}
        described["label"] = "the run's label (value labels: codebook order); missing when not ok"
    strl: list[str] = []
    for c in data.columns:
        s = data[c]
        if pd.api.types.is_integer_dtype(s.dtype) and s.isna().any():
            data[c] = s.astype("float64")
        elif pd.api.types.is_integer_dtype(s.dtype):
            data[c] = s.astype("int64")
        elif pd.api.types.is_bool_dtype(s.dtype):
            data[c] = s.astype("int8")
        elif not pd.api.types.is_numeric_dtype(s.dtype):
            # Stata's missing string is "": a column of None alone cannot be written
            values = ["" if _missing(v) else v if isinstance(v, str) else json.dumps(v) for v in s]
            data[c] = pd.Series(values, index=s.index, dtype=object)
            if any(len(v.encode("utf-8")) > STATA_STR_MAX for v in values):
                strl.append(c)
    data.to_stata(
        path,
        write_index=False,
        version=118,
        convert_strl=strl,
        value_labels=value_labels or None,
        variable_labels=described,
        data_label=title[:80],
    )
    return list(data.columns)


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA


def _write_frame(
    frame: pd.DataFrame, path: Path, fmt: str, codes: dict[int, str] | None, title: str
) -> list[str]:
    if fmt in ("csv", "tsv"):
        frame.to_csv(
            path, index=False, sep="," if fmt == "csv" else "\t", encoding="utf-8", lineterminator="\n"
        )
    elif fmt == "jsonl":
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    elif fmt == "parquet":
        frame.to_parquet(path, index=False)
    elif fmt == "xlsx":
        frame.to_excel(path, index=False, sheet_name="labels")
    else:
        return _write_dta(frame, path, codes, title)
    return [str(c) for c in frame.columns]


def _provenance(ctx: _Context, result: ExportResult, codebook_file: str | None) -> dict[str, Any]:
    from annotator import __version__

    run, prompt, cb = ctx.run, ctx.prompt, ctx.codebook_row
    return {
        "annotator_version": __version__,
        "exported_at": _iso(datetime.now(UTC)),
        "file": Path(result.path).name,
        "format": result.format,
        "rows": result.n_rows,
        "selection": {"split": result.split, "repeat": "all" if result.repeat is None else result.repeat},
        "counts": {"ok": result.n_ok, "invalid": result.n_invalid, "error": result.n_error},
        "columns": {
            c: COLUMNS.get(c, "document metadata" if c.startswith(META_PREFIX) else "")
            for c in result.columns
        },
        "label_codes": result.label_codes,
        "run": {
            "id": run.id,
            "coder": ctx.coder,
            "kind": run.kind,
            "model": run.model,
            "status": run.status,
            "split": run.split,
            "started_at": _iso(run.started_at),
            "finished_at": _iso(run.finished_at),
            "items": run.n_items,
            "params": redact(run.params),
            "sample": redact(run.sample),
            "versions": run.versions,
            "spec_sha256": run.spec_sha256,
            "source": run.source,
        },
        "prompt": None
        if prompt is None
        else {
            "codebook": prompt.codebook,
            "name": prompt.name,
            "version": prompt.version,
            "sha256": prompt.sha256,
            "frozen_at": _iso(prompt.frozen_at),
            "template": prompt.body,
        },
        "codebook": None
        if cb is None
        else {"name": cb.name, "version": cb.version, "sha256": cb.sha256, "file": codebook_file},
        "validation": result.validation,
        "notes": [
            "rows whose status is not ok have an empty label: annotator never invents a label",
            "repeat 0 is each document's first answer, the one validate and agreement score",
        ],
    }
