"""Run a baseline as a coder: train on the train split's gold labels, label the target split, and store the
result as a run of kind ``baseline``, read by agreement, validate, compare and export like any LLM run.

The same settings on the same documents give the same spec hash, and the stored run is reused (``force``
recomputes it in place). Everything is computed first and written in one transaction: an interrupted or
failed baseline leaves nothing behind. Training on the test split is refused: it is held out.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session, col, select

from annotator.baselines.base import Baseline, Prediction
from annotator.codebook import Codebook
from annotator.data.corpus import get_or_create_coder
from annotator.data.selection import CodedBy, select_coded
from annotator.data.selection import resolve as resolve_coded_by
from annotator.errors import AnnotatorError, InputError
from annotator.llm.local import ModelError
from annotator.llm.runstore import software_versions
from annotator.project import Project
from annotator.store.asked import store_asked
from annotator.store.db import bulk_insert
from annotator.store.models import Annotation, Coder, Document, Run, utcnow
from annotator.store.registry import project_codebook, register_codebook

Progress = Callable[[str, int, int], None]  # (phase, done, total)
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


@dataclass(frozen=True)
class Family:
    needs_training: bool
    uses_embedder: bool
    description: str


BASELINES: dict[str, Family] = {
    "embed-logreg": Family(True, True, "sentence embeddings + logistic regression"),
    "embed-centroid": Family(True, True, "cosine similarity to each class's mean embedding"),
    "embed-zeroshot": Family(False, True, "cosine similarity to label descriptions from the codebook"),
    "tfidf": Family(True, False, "TF-IDF word n-grams + logistic regression (or --classifier svm)"),
    "lexicon": Family(False, False, "VADER sentiment lexicon (sentiment codebooks)"),
    "text2text": Family(False, False, "a T5 / flan-T5 model prompted with the codebook's labels (--model)"),
    "classifier": Family(False, False, "a Hugging Face text-classification model (--model, --label-map)"),
    "finetune": Family(True, False, "fine-tune an encoder (default MiniLM) with a classification head"),
    "ensemble": Family(
        True,
        True,
        "stacked: embed-logreg on mpnet and MiniLM + TF-IDF, combined on out-of-fold probabilities",
    ),
}
DEFAULT_ENCODERS = {"ensemble": "mpnet,minilm"}


@dataclass
class BaselineRequest:
    name: str
    train_split: str = "dev"
    split: str = "test"
    gold: str | None = None
    embedder: str | None = None  # embed-*: minilm; ensemble: mpnet,minilm
    model: str | None = None  # text2text / classifier: a hub id or folder; finetune: the base encoder
    seed: int = 0
    codebook: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    force: bool = False
    # label only the target documents these coders coded ("alice,bob", "humans", "gold"); training is unchanged
    coded_by: str | list[str] | None = None
    coded_by_all: bool = False  # the documents every one of them coded (default: any of them)


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


def check_name(name: str) -> Family:
    if name in BASELINES:
        return BASELINES[name]
    close = difflib.get_close_matches(name, list(BASELINES), n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise InputError(f"unknown baseline {name!r}{hint}; baselines: {', '.join(BASELINES)}")


def _gold_coder(session: Session, name: str | None) -> Coder:
    if name is not None:
        coder = session.exec(select(Coder).where(col(Coder.name) == name)).first()
        if coder is None or coder.kind not in ("gold", "human"):
            gold_names = session.exec(select(Coder.name).where(col(Coder.kind) == "gold")).all()
            why = "no coder" if coder is None else f"a {coder.kind} coder, not gold or human"
            raise InputError(
                f"--gold {name!r}: {why} (gold coders: {', '.join(gold_names) or 'none'}); the training labels must "
                "come from a gold or human coder"
            )
        return coder
    golds = list(session.exec(select(Coder).where(col(Coder.kind) == "gold")).all())
    if len(golds) != 1:
        names = ", ".join(c.name for c in golds)
        raise InputError(
            "say whose labels to train on with --gold NAME (gold coders: "
            f"{names or 'none: import one with `annotator import codes --kind gold` or `annotator gold build`'})"
        )
    return golds[0]


def _gold_labels(session: Session, coder: Coder, codebook: Codebook) -> dict[int, str]:
    rows = session.exec(
        select(Annotation.document_id, Annotation.label)
        .join(Run, col(Run.id) == Annotation.run_id)
        .where(col(Run.coder_id) == coder.id, col(Annotation.status) == "ok", col(Annotation.repeat) == 0)
        .order_by(col(Annotation.run_id))
    ).all()
    allowed = set(codebook.allowed_labels)
    return {doc: label for doc, label in rows if label in allowed}  # the latest import wins


def _documents(
    session: Session, split: str, coded_by: CodedBy | None = None, codebook: str | None = None
) -> list[tuple[int, str]]:
    """(id, text) of the split's documents in id order; only those ``coded_by`` coded, when given."""
    query = select(Document.id, Document.text).order_by(col(Document.id))
    if split != "all":
        query = query.where(col(Document.split) == split)
    rows = [(int(i or 0), t) for i, t in session.exec(query).all()]
    if coded_by is None or not rows:
        return rows
    where = f"the {split} split" if split != "all" else "the project"
    _, chosen = select_coded(
        session, coded_by.names, coded_by.mode, [d for d, _ in rows], codebook=codebook, where=where
    )
    return [(d, t) for d, t in rows if d in chosen]


def _coded_by(session: Session, req: BaselineRequest) -> CodedBy | None:
    """The request's --coded-by, checked (unknown names are refused before anything runs)."""
    if req.coded_by is None:
        if req.coded_by_all:
            raise InputError("--coded-by-all needs --coded-by NAMES")
        return None
    return resolve_coded_by(session, req.coded_by, "all" if req.coded_by_all else "any")[0]


def label_texts(codebook: Codebook, style: str) -> dict[str, str]:
    """What each label's embedding is compared with, in zero-shot: its name, its definition, or both."""
    if style not in ("name", "definition", "both"):
        raise InputError(f"--label-text {style!r}: use name, definition or both")
    out = {}
    for label in codebook.labels:
        if style == "name":
            out[label.name] = label.name
        elif style == "definition":
            out[label.name] = label.definition
        else:
            out[label.name] = f"{label.name}: {label.definition}"
    return out


def _lexicon_labels(codebook: Codebook) -> dict[str, str | None]:
    lookup = {name.lower(): name for name in codebook.allowed_labels}
    mapping = {v: lookup.get(v) for v in ("negative", "positive")}
    if mapping["negative"] is None or mapping["positive"] is None:
        raise InputError(
            f"the lexicon baseline codes sentiment: codebook {codebook.name} needs labels named negative and "
            f"positive (it has {', '.join(codebook.allowed_labels)})"
        )
    neutral = lookup.get("neutral") or (codebook.uncertain.name if codebook.uncertain else None)
    return mapping | {"neutral": neutral}


def build_estimator(
    req: BaselineRequest, codebook: Codebook, project: Project | None, progress: Progress | None
) -> Baseline:
    """The estimator a request names, configured from the codebook and the options."""
    opts = dict(req.options)
    say = progress or (lambda _phase, _done, _total: None)

    def encoding(done: int, total: int) -> None:
        say("encoding", done, total)

    def labeling(done: int, total: int) -> None:
        say("labeling", done, total)

    if req.name == "ensemble":
        from annotator.baselines.embeddings import Embedder
        from annotator.baselines.ensemble import StackedEnsemble

        names = [n.strip() for n in _encoders(req).split(",") if n.strip()]
        encoders = [Embedder(n, project=project, progress=encoding) for n in names]
        return StackedEnsemble(encoders, tfidf=bool(opts.get("tfidf", True)), seed=req.seed)
    if req.name.startswith("embed-"):
        from annotator.baselines.embeddings import (
            Embedder,
            EmbeddingCentroid,
            EmbeddingLogReg,
            EmbeddingZeroShot,
        )

        embedder = Embedder(_encoders(req), project=project, progress=encoding)
        if req.name == "embed-logreg":
            return EmbeddingLogReg(embedder, C=float(opts.get("C", 1.0)), seed=req.seed)
        if req.name == "embed-centroid":
            return EmbeddingCentroid(embedder)
        return EmbeddingZeroShot(embedder, label_texts=label_texts(codebook, opts.get("label_text", "both")))
    if req.name == "tfidf":
        from annotator.baselines.tfidf import CLASSIFIERS, TfidfClassifier

        classifier = opts.get("classifier", "logreg")
        if classifier not in CLASSIFIERS:
            raise InputError(f"--classifier {classifier!r}: use {' or '.join(CLASSIFIERS)}")
        return TfidfClassifier(classifier=classifier, seed=req.seed)
    if req.name == "lexicon":
        from annotator.baselines.lexicon import VaderLexicon

        threshold = float(opts.get("threshold", 0.05))
        if not 0 <= threshold < 1:
            raise InputError(f"--threshold {threshold}: use a number from 0 (no neutral band) to below 1")
        return VaderLexicon(labels=_lexicon_labels(codebook), threshold=threshold)
    if req.name == "text2text":
        from annotator.baselines.text2text import Text2Text, default_prompt

        labels = codebook.label_names
        prompt = opts.get("prompt") or default_prompt(codebook.name, labels)
        if "{text}" not in prompt:
            raise InputError("--prompt must contain {text}, where each document's text goes")
        return Text2Text(_need_model(req), prompt=prompt, labels=labels, seed=req.seed, progress=labeling)
    if req.name == "classifier":
        from annotator.baselines.classifier import HFClassifier

        return HFClassifier(
            _need_model(req),
            labels=codebook.allowed_labels,
            label_map=opts.get("label_map"),
            progress=labeling,
        )
    from annotator.baselines.finetune import FineTunedEncoder

    return FineTunedEncoder(
        base=req.model or "minilm",
        epochs=int(opts.get("epochs", 3)),
        learning_rate=float(opts.get("learning_rate", 5e-5)),
        seed=req.seed,
        progress=say,
    )


def _encoders(req: BaselineRequest) -> str:
    return req.embedder or DEFAULT_ENCODERS.get(req.name, "minilm")


def _need_model(req: BaselineRequest) -> str:
    if not req.model:
        example = (
            "google/flan-t5-small"
            if req.name == "text2text"
            else "cardiffnlp/twitter-roberta-base-sentiment-latest"
        )
        raise InputError(
            f"the {req.name} baseline needs --model: a Hugging Face id or model folder, e.g. {example}"
        )
    return req.model


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


def _coder_name(req: BaselineRequest, family: Family) -> str:
    if req.name == "ensemble":
        return "ensemble/" + "+".join(n.strip() for n in _encoders(req).split(",")) + "+tfidf"
    if family.uses_embedder:
        return f"{req.name}/{_encoders(req)}"
    if req.name in ("text2text", "classifier"):
        return f"{req.name}/{req.model}"
    if req.name == "finetune":
        return f"finetune/{req.model or 'minilm'}"
    if req.name == "tfidf":
        return f"tfidf/{req.options.get('classifier', 'logreg')}"
    return f"{req.name}/vader"


def run_baseline(project: Project, req: BaselineRequest, progress: Progress | None = None) -> BaselineOutcome:
    family = check_name(req.name)
    for option, value in (("--split", req.split), ("--train-split", req.train_split)):
        if value not in SPLITS:
            raise InputError(f"{option} {value!r}: use dev, test or all")
    if family.needs_training and req.train_split != "dev":
        raise InputError(
            f"--train-split {req.train_split}: a baseline trains on the dev split only; the test split is held "
            "out for validation, and training on it would make its figures meaningless"
        )
    codebook = project_codebook(project, req.codebook)
    if codebook.kind == "multilabel":
        raise InputError(
            f"codebook {codebook.name} is multilabel: baselines support nominal and ordinal codebooks"
        )
    notes: list[str] = []
    with project.transaction() as session:
        if session.exec(select(Document.id).where(col(Document.split).is_not(None)).limit(1)).first() is None:
            raise InputError("no document is in a split yet: run `annotator split` first")
        coded_by = _coded_by(session, req)
        if not _documents(session, req.split):
            raise InputError(f"the {req.split} split has no documents")
        targets = _documents(session, req.split, coded_by, codebook.name)
        train: list[tuple[int, str, str]] = []
        gold_name = None
        if family.needs_training:
            gold = _gold_coder(session, req.gold)
            gold_name = gold.name
            labels = _gold_labels(session, gold, codebook)
            train = [(d, t, labels[d]) for d, t in _documents(session, "dev") if d in labels]
            classes = sorted({label for _, _, label in train})
            if len(classes) < 2:
                raise InputError(
                    f"gold coder {gold.name} labels {len(train)} dev documents with {len(classes)} label(s): training "
                    "needs at least two labels with examples; code more dev documents"
                )
    if family.needs_training and req.split in ("dev", "all"):
        notes.append(
            f"the {req.split} split includes the {len(train)} training documents: their labels are in-sample, "
            "so validate this run on the test split"
        )
    estimator = build_estimator(req, codebook, project, progress)
    spec = {
        "baseline": req.name,
        "estimator": type(estimator).__name__,
        "settings": estimator.describe(),
        "encoder": _encoder_identity(estimator),
        "seed": req.seed,
        "codebook": {"name": codebook.name, "version": codebook.version, "sha256": codebook.sha256},
        "gold": gold_name,
        "train": _digest([(d, label) for d, _, label in train]),
        "documents": _digest([d for d, _ in targets]),
        "split": req.split,
    }
    if coded_by is not None:  # only when given: other baselines keep their spec hash, and are reused
        spec["coded_by"] = coded_by.spec
    spec_sha = _digest(spec)
    with project.transaction() as session:
        existing = session.exec(select(Run).where(col(Run.spec_sha256) == spec_sha)).first()
        if existing is not None and existing.status == "done" and not req.force:
            return _outcome(
                session,
                existing,
                req,
                len(train),
                True,
                0.0,
                [*notes, "these settings ran before: the stored run is reused (--force recomputes it)"],
            )
    started = utcnow()
    clock = time.perf_counter()
    try:
        if family.needs_training:
            estimator.fit([t for _, t, _ in train], [label for _, _, label in train])
        else:
            estimator.fit()
        rows: list[Prediction] = estimator.predict_rows([t for _, t in targets])
    except (OSError, ValueError, ModelError) as exc:  # a model that cannot be loaded, a bad mapping
        raise AnnotatorError(f"{req.name}: {_first_line(exc)}") from exc
    seconds = time.perf_counter() - clock
    params: dict[str, Any] = {
        "baseline": req.name,
        "description": family.description,
        "estimator": spec["estimator"],
        "settings": spec["settings"],
        "encoder": spec["encoder"],
        "train": {"split": req.train_split, "gold": gold_name, "documents": len(train)} if train else None,
        "spec": spec,
    }
    if req.name == "finetune":
        folder = project.root / "models" / f"finetune-{spec_sha[:12]}"
        estimator.save(folder)
        params["saved_to"] = str(folder.relative_to(project.root))
    with project.transaction() as session:
        cb_row = register_codebook(session, codebook, str(project.codebook_path(codebook.name)))
        coder_name = _coder_name(req, family)
        coder = get_or_create_coder(session, coder_name, "baseline")
        run = session.exec(select(Run).where(col(Run.spec_sha256) == spec_sha)).first()
        if run is None:
            run = Run(coder_id=coder.id, kind="baseline", spec_sha256=spec_sha)  # type: ignore[arg-type]
        else:
            session.connection().execute(delete(Annotation).where(col(Annotation.run_id) == run.id))
        run.codebook_id = cb_row.id
        run.model = coder_name  # what the baseline is, as validate, compare and the report name it
        run.params = params
        run.split = req.split
        run.sample = {"seed": req.seed, "documents": len(targets), "train_documents": len(train)}
        if coded_by is not None:
            run.sample["coded_by"] = coded_by.spec
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
        return _outcome(session, run, req, len(train), False, seconds, notes)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


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
