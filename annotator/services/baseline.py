"""Run a baseline as a coder: train on the train split's gold labels, label the target split, and store the
result as a run of kind ``baseline``, read by agreement, validate, compare and export like any LLM run.

The same settings on the same documents give the same spec hash, and the stored run is reused (``force``
recomputes it in place). Everything is computed first and written in one transaction: an interrupted or
failed baseline leaves nothing behind. Training on the test split is refused: it is held out.

The families (what each is, how its estimator is built, its coder name) are one registry,
`annotator.services.baseline_families.BASELINES`.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session, col, select

from annotator.baselines.base import Baseline, Prediction
from annotator.codebook import Codebook
from annotator.data.corpus import get_or_create_coder
from annotator.errors import AnnotatorError, InputError, arg
from annotator.llm.local import ModelError
from annotator.llm.runstore import software_versions
from annotator.project import Project
from annotator.services.baseline_families import (
    BASELINES,
    DEFAULT_ENCODERS,
    BaselineRequest,
    Family,
    Progress,
    build_estimator,
    check_name,
    coder_name,
    label_texts,
)
from annotator.services.baseline_inputs import BaselineInputs, load_inputs
from annotator.store.asked import store_asked
from annotator.store.db import bulk_insert
from annotator.store.models import Annotation, Coder, Run, utcnow
from annotator.store.registry import project_codebook, register_codebook

__all__ = [
    "BASELINES",
    "DEFAULT_ENCODERS",
    "PACKAGES",
    "SPLITS",
    "BaselineOutcome",
    "BaselineRequest",
    "Family",
    "Progress",
    "build_estimator",
    "check_name",
    "label_texts",
    "run_baseline",
]

SPLITS = ("dev", "test", "all")
PACKAGES = (
    "annotator",
    "scikit-learn",
    "numpy",
    "sentence-transformers",
    "transformers",
    "torch",
    "vaderSentiment",
)


@dataclass
class BaselineOutcome:
    run_id: int
    name: str
    coder: str
    reused: bool
    n_train: int
    n_items: int
    n_ok: int
    n_invalid: int
    seconds: float
    model: str | None
    notes: list[str]
    labels: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _encoder_identity(estimator: Baseline) -> str | None:
    """The cache identity of the encoder(s) a baseline uses (a folder's includes its fingerprint)."""
    single = getattr(estimator, "embedder", None)
    if single is not None:
        return str(getattr(single, "identity", single))
    several = getattr(estimator, "encoders", None)
    if several is not None:
        return ",".join(str(getattr(e, "identity", e)) for e in several)
    return None


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def _check_request(req: BaselineRequest, family: Family) -> None:
    for option, value in (("split", req.split), ("train_split", req.train_split)):
        if value not in SPLITS:
            raise InputError(f"{arg(option, value)}: use dev, test or all")
    if family.needs_training and req.train_split != "dev":
        raise InputError(
            f"{arg('train_split', req.train_split)}: a baseline trains on the dev split only; the test split is held "
            "out for validation, and training on it would make its figures meaningless"
        )


def _spec(
    req: BaselineRequest, estimator: Baseline, codebook: Codebook, inputs: BaselineInputs
) -> dict[str, Any]:
    """What the run is: the same spec on the same documents gives the same hash, and the run is reused."""
    spec = {
        "baseline": req.name,
        "estimator": type(estimator).__name__,
        "settings": estimator.describe(),
        "encoder": _encoder_identity(estimator),
        "seed": req.seed,
        "codebook": {"name": codebook.name, "version": codebook.version, "sha256": codebook.sha256},
        "gold": inputs.gold_name,
        "train": _digest([(d, label) for d, _, label in inputs.train]),
        "documents": _digest([d for d, _ in inputs.targets]),
        "split": req.split,
    }
    if inputs.coded_by is not None:  # only when given: other baselines keep their spec hash, and are reused
        spec["coded_by"] = inputs.coded_by.spec
    return spec


def _fit_predict(
    req: BaselineRequest, family: Family, estimator: Baseline, inputs: BaselineInputs
) -> tuple[list[Prediction], float]:
    """Train (when the family does) and label the targets: the predictions and the seconds it took."""
    clock = time.perf_counter()
    try:
        if family.needs_training:
            estimator.fit([t for _, t, _ in inputs.train], [label for _, _, label in inputs.train])
        else:
            estimator.fit()
        rows: list[Prediction] = estimator.predict_rows([t for _, t in inputs.targets])
    except (OSError, ValueError, ModelError) as exc:  # a model that cannot be loaded, a bad mapping
        raise AnnotatorError(f"{req.name}: {_first_line(exc)}") from exc
    return rows, time.perf_counter() - clock


def run_baseline(project: Project, req: BaselineRequest, progress: Progress | None = None) -> BaselineOutcome:
    family = check_name(req.name)
    _check_request(req, family)
    codebook = project_codebook(project, req.codebook)
    if codebook.kind == "multilabel":
        raise InputError(
            f"codebook {codebook.name} is multilabel: baselines support nominal and ordinal codebooks"
        )
    notes: list[str] = []
    inputs = load_inputs(project, req, family, codebook)
    n_train = len(inputs.train)
    if family.needs_training and req.split in ("dev", "all"):
        notes.append(
            f"the {req.split} split includes the {n_train} training documents: their labels are in-sample, "
            "so validate this run on the test split"
        )
    estimator = build_estimator(req, codebook, project, progress)
    spec = _spec(req, estimator, codebook, inputs)
    spec_sha = _digest(spec)
    with project.transaction() as session:
        existing = session.exec(select(Run).where(col(Run.spec_sha256) == spec_sha)).first()
        if existing is not None and existing.status == "done" and not req.force:
            reused = [*notes, "these settings ran before: the stored run is reused (--force recomputes it)"]
            return _outcome(session, existing, req, n_train, True, 0.0, reused)
    started = utcnow()
    rows, seconds = _fit_predict(req, family, estimator, inputs)
    params: dict[str, Any] = {
        "baseline": req.name,
        "description": family.description,
        "estimator": spec["estimator"],
        "settings": spec["settings"],
        "encoder": spec["encoder"],
        "train": {"split": req.train_split, "gold": inputs.gold_name, "documents": n_train}
        if inputs.train
        else None,
        "spec": spec,
    }
    if family.saves_model:
        folder = project.root / "models" / f"finetune-{spec_sha[:12]}"
        estimator.save(folder)
        params["saved_to"] = str(folder.relative_to(project.root))
    with project.transaction() as session:
        run = _store_run(session, project, req, codebook, spec_sha, params, inputs, rows, seconds, started)
        return _outcome(session, run, req, n_train, False, seconds, notes)


def _store_run(
    session: Session,
    project: Project,
    req: BaselineRequest,
    codebook: Codebook,
    spec_sha: str,
    params: dict[str, Any],
    inputs: BaselineInputs,
    rows: list[Prediction],
    seconds: float,
    started: Any,
) -> Run:
    """The run row (new, or the one with this spec, its answers replaced), its asked set and its answers."""
    targets = inputs.targets
    cb_row = register_codebook(session, codebook, str(project.codebook_path(codebook.name)))
    name = coder_name(req)
    coder = get_or_create_coder(session, name, "baseline")
    run = session.exec(select(Run).where(col(Run.spec_sha256) == spec_sha)).first()
    if run is None:
        run = Run(coder_id=coder.id, kind="baseline", spec_sha256=spec_sha)  # type: ignore[arg-type]
    else:
        session.connection().execute(delete(Annotation).where(col(Annotation.run_id) == run.id))
    run.codebook_id = cb_row.id
    run.model = name  # what the baseline is, as validate, compare and the report name it
    run.params = params
    run.split = req.split
    run.sample = {"seed": req.seed, "documents": len(targets), "train_documents": len(inputs.train)}
    if inputs.coded_by is not None:
        run.sample["coded_by"] = inputs.coded_by.spec
    run.versions = software_versions(PACKAGES)
    run.started_at, run.finished_at, run.status, run.error = started, utcnow(), "done", None
    run.n_items = len(targets)
    run.n_ok = sum(r.status == "ok" for r in rows)
    run.n_invalid = len(rows) - run.n_ok
    run.n_error = 0
    session.add(run)
    session.flush()
    assert run.id is not None
    store_asked(session, run.id, (d for d, _ in targets))
    per_doc_ms = 1000 * seconds / max(len(rows), 1)
    bulk_insert(
        session,
        Annotation,
        [
            {
                "run_id": run.id,
                "document_id": d,
                "repeat": 0,
                "label": r.label,
                "probability": r.probability,
                "status": r.status,
                "raw": r.raw,
                "error": None if r.status == "ok" else "output names no codebook label",
                "latency_ms": per_doc_ms,
                "attempts": 1,
                "cached": False,
                "created_at": run.finished_at,
            }
            for (d, _), r in zip(targets, rows, strict=True)
        ],
    )
    return run


def _first_line(exc: BaseException) -> str:
    # an AnnotatorError's own message keeps its parameters (`annotator.errors.arg`) for the face to spell
    raw = exc.args[0] if isinstance(exc, AnnotatorError) and exc.args else exc
    # not splitlines() nor a bare strip(): both treat the markers' separators (\x1c-\x1f) as line ends/spaces
    first = str(raw).strip(" \t\r\n").split("\n")[0].strip(" \t\r")
    return first or type(exc).__name__


def _outcome(
    session: Session,
    run: Run,
    req: BaselineRequest,
    n_train: int,
    reused: bool,
    seconds: float,
    notes: list[str],
) -> BaselineOutcome:
    from sqlmodel import func

    labels = dict(
        session.exec(
            select(Annotation.label, func.count())
            .where(col(Annotation.run_id) == run.id, col(Annotation.status) == "ok")
            .group_by(col(Annotation.label))
        ).all()
    )
    coder = session.get(Coder, run.coder_id)
    return BaselineOutcome(
        run_id=int(run.id or 0),
        name=req.name,
        coder=coder.name if coder else "",
        reused=reused,
        n_train=n_train,
        n_items=run.n_items,
        n_ok=run.n_ok,
        n_invalid=run.n_invalid,
        seconds=round(seconds, 2),
        model=run.model,
        notes=notes,
        labels={str(k): int(v) for k, v in labels.items()},
    )
