"""`annotator export`: the labels of one run, with their provenance, as a file a statistics package reads.

One row per answer (document x repeat) of the run, with the document id (the user's own doc_key, in a column
named ``id``, so that `annotator import codes FILE --coder NAME` reads an export back with its defaults), the
label, its probability, the answer's status and error, and the run, model, prompt and codebook (name,
version, sha256) that made it. Invalid and error rows keep an empty label and carry the raw answer text:
a label is never invented.

Beside the export go the codebook the run used (``FILE.codebook.yaml``, from the stored version, not the
file on disk, which may have moved on) and a provenance record (``FILE.provenance.json``: the run's
parameters, prompt template, software versions and, when the export was gated, the validation figures).

Nothing is half-written: every file is written to a temporary file in the target folder and moved into
place only when all of them are complete. An existing export is not replaced unless ``overwrite`` is set.

Gating (``min_f1``/``min_alpha``): the export happens only when the run's latest stored validation (macro F1
against gold) or agreement (Krippendorff's alpha of the humans plus the run) on the test split reaches the
threshold. The point estimate is compared, or the lower end of its 95% interval with ``conservative``.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, func, select

from annotator.codebook import Codebook, to_yaml
from annotator.errors import AnnotatorError, InputError
from annotator.project import Project
from annotator.registry import stored_codebook
from annotator.store.models import Annotation, CodebookVersion, Coder, Document, Metric, PromptVersion, Run

SPLITS = ("dev", "test", "all")
SUFFIXES = {
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
FORMATS = ("csv", "tsv", "jsonl", "parquet", "xlsx", "dta")
STATA_STR_MAX = 2045  # bytes of a str# variable in format 118; longer strings become strL
XLSX_CELL_MAX = 32767  # characters of an Excel cell
META_PREFIX = "meta_"

# the columns of every export, in order, with what they hold (also the Stata variable labels, <= 80 chars)
COLUMNS: dict[str, str] = {
    "id": "document id (your doc_key)",
    "label": "the run's label; empty when status is not ok",
    "probability": "probability of the label, when the model gave one",
    "status": "ok, invalid (answer not a codebook label) or error (no answer)",
    "error": "why the answer is invalid or missing",
    "raw": "raw answer text of invalid and error rows",
    "rationale": "the model's rationale, when the prompt asks for one",
    "repeat": "repeat number (0: the first answer to each document)",
    "split": "the document's split: dev, test or empty",
    "run_id": "annotator run id",
    "coder": "coder name (the model for LLM runs)",
    "kind": "run kind: llm, baseline, human or gold",
    "model": "model (PROVIDER/MODEL)",
    "prompt": "prompt template name",
    "prompt_version": "prompt template version",
    "prompt_sha256": "sha256 of the prompt template",
    "codebook": "codebook name",
    "codebook_version": "codebook version",
    "codebook_sha256": "sha256 of the codebook (canonical JSON)",
    "created_at": "when the answer was made (ISO 8601, UTC)",
}
TEXT_COLUMN = "text"
_INT_COLUMNS = ("repeat", "run_id", "prompt_version", "codebook_version")
_SECRET = re.compile(r"api[_-]?key|secret|password|passwd|authorization|bearer|credential", re.IGNORECASE)


@dataclass
class ExportResult:
    """What `export_run` wrote."""

    path: str
    format: str
    run_id: int
    split: str
    repeat: int | None  # None: every repeat
    n_rows: int
    n_ok: int
    n_invalid: int
    n_error: int
    columns: list[str]  # as written in the file
    codebook_path: str | None
    provenance_path: str
    label_codes: dict[int, str] | None = None  # Stata: the integer codes of the label column
    validation: dict[str, Any] | None = None  # the gate's figures, when min_f1/min_alpha were given
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Context:
    run: Run
    coder: str
    codebook: Codebook | None
    codebook_row: CodebookVersion | None
    prompt: PromptVersion | None


# -- reading ---------------------------------------------------------------------------------------------


def _utc(t: datetime | None) -> datetime | None:
    if t is None:
        return None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _iso(t: datetime | None) -> str | None:
    u = _utc(t)
    return None if u is None else u.isoformat(timespec="seconds").replace("+00:00", "Z")


def _context(session: Session, run_id: int) -> _Context:
    run = session.get(Run, run_id)
    if run is None:
        raise AnnotatorError(f"no run {run_id}; `annotator runs` lists them")
    coder = session.get(Coder, run.coder_id)
    row = session.get(CodebookVersion, run.codebook_id) if run.codebook_id is not None else None
    book = stored_codebook(session, row.name, row.version) if row is not None else None
    prompt = session.get(PromptVersion, run.prompt_id) if run.prompt_id is not None else None
    return _Context(run, coder.name if coder else "", book, row, prompt)


def _check_split(split: str | None) -> str:
    split = split or "all"
    if split not in SPLITS:
        raise InputError(f"--split {split!r}: use dev, test or all")
    return split


def _frame(
    session: Session,
    ctx: _Context,
    split: str,
    repeat: int | None,
    text: bool,
    meta: bool,
) -> pd.DataFrame:
    run = ctx.run
    if repeat is not None and repeat < 0:
        raise InputError(f"--repeat {repeat}: use 0 (the first answer) or a higher repeat number, or all")
    q = (
        sa_select(Annotation, Document)
        .join(Document, col(Document.id) == col(Annotation.document_id))
        .where(col(Annotation.run_id) == run.id)
        .order_by(col(Document.id), col(Annotation.repeat))
    )
    if split != "all":
        q = q.where(col(Document.split) == split)
    if repeat is not None:
        q = q.where(col(Annotation.repeat) == repeat)
    pairs = session.execute(q).all()
    if not pairs:
        _explain_empty(session, run, split, repeat)
    book, prompt, cb = ctx.codebook, ctx.prompt, ctx.codebook_row
    rows: list[dict[str, Any]] = []
    for a, d in pairs:
        ok = a.status == "ok"
        row: dict[str, Any] = {
            "id": d.doc_key,
            "label": a.label if ok else None,
            "probability": a.probability,
            "status": a.status,
            "error": a.error,
            "raw": None if ok else a.raw,
            "rationale": a.rationale,
            "repeat": a.repeat,
            "split": d.split,
            "run_id": run.id,
            "coder": ctx.coder,
            "kind": run.kind,
            "model": run.model,
            "prompt": prompt.name if prompt else None,
            "prompt_version": prompt.version if prompt else None,
            "prompt_sha256": prompt.sha256 if prompt else None,
            "codebook": cb.name if cb else (book.name if book else None),
            "codebook_version": cb.version if cb else None,
            "codebook_sha256": cb.sha256 if cb else None,
            "created_at": _iso(a.created_at),
        }
        if text:
            row[TEXT_COLUMN] = d.text
        if meta:
            for k, v in (d.meta or {}).items():
                row[META_PREFIX + str(k)] = v
        rows.append(row)
    frame = pd.DataFrame.from_records(rows)
    columns = [*COLUMNS, *([TEXT_COLUMN] if text else [])]
    extra = sorted(c for c in frame.columns if c not in columns)
    frame = frame.reindex(columns=[*columns, *extra])
    for c in _INT_COLUMNS:
        frame[c] = frame[c].astype("Int64")
    frame["probability"] = frame["probability"].astype("float64")
    return frame


def _explain_empty(session: Session, run: Run, split: str, repeat: int | None) -> None:
    splits = sorted(
        {
            s or "none"
            for s in session.execute(
                sa_select(col(Document.split))
                .join(Annotation, col(Annotation.document_id) == col(Document.id))
                .where(col(Annotation.run_id) == run.id)
                .distinct()
            ).scalars()
        }
    )
    repeats = sorted(
        session.execute(
            sa_select(col(Annotation.repeat)).where(col(Annotation.run_id) == run.id).distinct()
        ).scalars()
    )
    if not repeats:
        raise AnnotatorError(f"run {run.id} has no answers yet (status {run.status}); nothing to export")
    if repeat is not None and repeat not in repeats:
        raise InputError(
            f"--repeat {repeat}: run {run.id} has repeats {', '.join(map(str, repeats))}; choose one of them"
        )
    raise InputError(
        f"--split {split}: run {run.id} has no answers on the {split} split (its documents' splits: "
        f"{', '.join(splits)}); use --split all or another split"
    )


def export_frame(
    project: Project,
    run_id: int,
    split: str | None = None,
    repeat: int | None = 0,
    text: bool = False,
    meta: bool = False,
) -> pd.DataFrame:
    """The labels of a run as a DataFrame, with provenance columns (see ``COLUMNS``).

    ``split``: dev, test or all (default). ``repeat``: which repeat (0, the first answer, by default; None for
    every repeat). ``text`` adds the document text, ``meta`` its metadata (columns ``meta_<name>``).
    """
    split = _check_split(split)
    with project.transaction() as session:
        return _frame(session, _context(session, run_id), split, repeat, text, meta)


# -- the validation gate ----------------------------------------------------------------------------------


def _fmt(x: float | None) -> str:
    return "NaN" if x is None else f"{x:.3f}"


def _span(e: dict[str, Any]) -> str:
    if e.get("low") is None or e.get("high") is None:
        return _fmt(e.get("estimate"))
    return f"{_fmt(e.get('estimate'))} [{_fmt(e['low'])}, {_fmt(e['high'])}]"


def _compare(
    what: str, e: dict[str, Any] | None, threshold: float, conservative: bool, source: str
) -> dict[str, Any]:
    e = e or {}
    key = "low" if conservative else "estimate"
    value = e.get(key)
    passed = value is not None and math.isfinite(value) and value >= threshold
    side = "lower end of the 95% interval" if conservative else "point estimate"
    verdict = "reaches" if passed else "is below"
    if value is None:
        verdict = "is undefined, so it cannot reach"
    line = f"{what} on the test split {_span(e)} ({source}): the {side} {verdict} the threshold {threshold:g}"
    return {
        "figure": what,
        "estimate": e.get("estimate"),
        "low": e.get("low"),
        "high": e.get("high"),
        "compared": key,
        "threshold": threshold,
        "passed": passed,
        "line": line,
    }


def _gold_hint(session: Session) -> str:
    golds = sorted(session.exec(select(Coder.name).where(col(Coder.kind) == "gold")).all())
    return golds[0] if len(golds) == 1 else "NAME"


def _latest_answer(session: Session, run_id: int) -> datetime | None:
    return _utc(
        session.exec(
            select(func.max(Annotation.created_at)).where(
                col(Annotation.run_id) == run_id, col(Annotation.repeat) == 0
            )
        ).one()
    )


def _f1_check(session: Session, run_id: int, threshold: float, conservative: bool) -> dict[str, Any]:
    metric = session.exec(
        select(Metric)
        .where(col(Metric.kind) == "validation", col(Metric.run_id) == run_id, col(Metric.split) == "test")
        .order_by(col(Metric.id).desc())
    ).first()
    if metric is None:
        raise AnnotatorError(
            f"--min-f1: run {run_id} has no validation on the test split; run `annotator validate --gold "
            f"{_gold_hint(session)} --split test --runs {run_id}` first"
        )
    _check_fresh(
        session, run_id, metric, f"annotator validate --gold {metric.result.get('gold')} --split test"
    )
    entry = metric.result.get("run", {})
    source = f"validation metric {metric.id} against {metric.result.get('gold')!r}, {entry.get('n_gold')} gold items"
    out = _compare("macro F1", entry.get("macro_f1"), threshold, conservative, source)
    out |= {
        "metric_id": metric.id,
        "gold": metric.result.get("gold"),
        "n_gold": entry.get("n_gold"),
        "accuracy": entry.get("accuracy"),
        "kappa": entry.get("kappa"),
        "coverage": entry.get("coverage"),
        "frozen": (entry.get("frozen") or {}).get("line"),
    }
    return out


def _alpha_check(session: Session, run_id: int, threshold: float, conservative: bool) -> dict[str, Any]:
    rows = session.exec(
        select(Metric)
        .where(col(Metric.kind) == "agreement", col(Metric.split) == "test")
        .order_by(col(Metric.id).desc())
    ).all()
    for metric in rows:
        entries = [e for e in metric.result.get("runs", []) if e.get("run_id") == run_id]
        entry = next((e for e in entries if e.get("repeat") in (0, None)), entries[0] if entries else None)
        if entry is None:
            continue
        _check_fresh(session, run_id, metric, "annotator agreement --split test")
        level = metric.result.get("level", "nominal")
        source = f"agreement metric {metric.id}, {level} alpha of the humans plus the run"
        out = _compare(
            "Krippendorff's alpha", entry.get("alpha_with_humans"), threshold, conservative, source
        )
        return out | {"metric_id": metric.id, "level": level}
    raise AnnotatorError(
        f"--min-alpha: run {run_id} has no agreement figures on the test split; run `annotator agreement "
        "--split test` first"
    )


def _check_fresh(session: Session, run_id: int, metric: Metric, command: str) -> None:
    latest, made = _latest_answer(session, run_id), _utc(metric.created_at)
    if latest is not None and made is not None and latest > made:
        raise AnnotatorError(
            f"run {run_id} has answers newer ({_iso(latest)}) than its stored figures (metric {metric.id}, "
            f"{_iso(made)}); run `{command}` again"
        )


def check_validation(
    project: Project,
    run_id: int,
    min_f1: float | None = None,
    min_alpha: float | None = None,
    conservative: bool = False,
) -> dict[str, Any]:
    """Refuse (AnnotatorError, with the figures) unless the run's test-split figures reach the thresholds.

    Reads the latest stored `validate` (macro F1) and `agreement` (alpha) results of the run; compares the
    point estimate, or the lower end of the interval with ``conservative``. Returns the checks that passed.
    """
    if min_f1 is None and min_alpha is None:
        raise InputError("--validated-only needs a threshold: add --min-f1 0.8 or --min-alpha 0.7")
    for name, value in (("--min-f1", min_f1), ("--min-alpha", min_alpha)):
        if value is not None and not (0.0 <= value <= 1.0):
            raise InputError(f"{name} {value}: give a number between 0 and 1, e.g. {name} 0.8")
    checks: list[dict[str, Any]] = []
    with project.transaction() as session:
        _context(session, run_id)
        if min_f1 is not None:
            checks.append(_f1_check(session, run_id, min_f1, conservative))
        if min_alpha is not None:
            checks.append(_alpha_check(session, run_id, min_alpha, conservative))
    failed = [c for c in checks if not c["passed"]]
    if failed:
        raise AnnotatorError(f"not exported: run {run_id}'s " + "; ".join(c["line"] for c in failed))
    return {"conservative": conservative, "checks": checks}


# -- writing ----------------------------------------------------------------------------------------------


def resolve_format(out: Path, fmt: str | None) -> str:
    """The format from ``fmt`` or the suffix; a suffix that names another format is refused."""
    by_suffix = SUFFIXES.get(out.suffix.lower())
    if fmt is not None:
        kind = fmt.strip().lower()
        if kind not in FORMATS:
            raise InputError(f"--format {fmt!r}: use {', '.join(FORMATS)}")
        if by_suffix is not None and by_suffix != kind:
            raise InputError(
                f"{out.name}: the suffix says {by_suffix} but --format says {kind}; make them agree"
            )
        return kind
    if by_suffix is None:
        what = f"from {out.suffix!r}" if out.suffix else "without a suffix"
        raise InputError(
            f"{out}: cannot tell the format {what}; end the name in .csv, .tsv, .jsonl, .parquet, .xlsx or "
            ".dta, or pass --format"
        )
    return by_suffix


def sidecars(out: Path) -> tuple[Path, Path]:
    """The codebook and provenance files written beside an export."""
    return out.with_name(out.name + ".codebook.yaml"), out.with_name(out.name + ".provenance.json")


def _check_target(out: Path, overwrite: bool) -> None:
    folder = out.parent
    if out.is_dir():
        raise InputError(f"{out} is a folder; give a file name, e.g. --out {out / 'labels.csv'}")
    if not folder.exists():
        raise InputError(f"folder {folder} does not exist; create it first or choose another --out")
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder; choose another --out")
    if not overwrite:
        for p in (out, *sidecars(out)):
            if p.exists():
                raise InputError(f"{p} already exists; pass --force to replace it, or choose another --out")


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


def _safe(value: Any) -> Any:
    """A copy of run parameters without anything that looks like a secret."""
    if isinstance(value, dict):
        return {k: _safe(v) for k, v in value.items() if not _SECRET.search(str(k))}
    if isinstance(value, list):
        return [_safe(v) for v in value]
    return value


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
            "params": _safe(run.params),
            "sample": _safe(run.sample),
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


def _write_all(out: Path, writers: list[tuple[Path, Callable[[Path], Any]]]) -> None:
    """Each writer fills a temp file in the target folder; all are moved into place only when all succeeded.

    They are moved in reverse order, so the first file (the export itself) lands last: its presence means
    that its sidecars are there too.
    """
    temps: list[tuple[Path, Path]] = []
    try:
        for target, write in writers:
            fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
            os.close(fd)
            temps.append((Path(name), target))
            write(Path(name))
        for tmp, target in reversed(temps):
            os.replace(tmp, target)
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc.strerror or exc}; choose another --out") from None
    finally:
        for tmp, _ in temps:
            tmp.unlink(missing_ok=True)


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
    result = ExportResult(
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

    def write_export(tmp: Path) -> None:
        result.columns = _write_frame(frame, tmp, kind, codes, title)

    def write_provenance(tmp: Path) -> None:
        record = _provenance(ctx, result, codebook_path.name if ctx.codebook is not None else None)
        tmp.write_text(json.dumps(record, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")

    writers: list[tuple[Path, Callable[[Path], Any]]] = []
    if ctx.codebook is not None:
        book = ctx.codebook
        writers.append((codebook_path, lambda tmp: tmp.write_text(to_yaml(book), encoding="utf-8")))
    # the export is written first (the provenance records its columns) and moved into place last
    _write_all(out, [(out, write_export), *writers, (provenance_path, write_provenance)])
    return result
