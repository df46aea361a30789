"""The baseline families, in one registry: what each one is, whether it trains, how its estimator is built
from a request and the codebook, and the coder name its runs are stored under (see `annotator.baselines` for
the estimators themselves; `annotator.services.baseline` runs and stores them)."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from annotator.baselines.base import Baseline
from annotator.codebook import Codebook
from annotator.errors import InputError, arg
from annotator.project import Project

if TYPE_CHECKING:
    from annotator.baselines.embeddings import Embedder

Progress = Callable[[str, int, int], None]  # (phase, done, total)
DEFAULT_ENCODER = "minilm"


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


@dataclass(frozen=True)
class _Build:
    """What a family's builder reads: the request, its codebook, the project (caches) and progress."""

    req: BaselineRequest
    codebook: Codebook
    project: Project | None
    say: Progress

    @property
    def opts(self) -> dict[str, Any]:
        return self.req.options

    def encoding(self, done: int, total: int) -> None:
        self.say("encoding", done, total)

    def labeling(self, done: int, total: int) -> None:
        self.say("labeling", done, total)


@dataclass(frozen=True)
class Family:
    """One baseline family: its registry row."""

    needs_training: bool  # trains on the dev split's gold labels
    uses_embedder: bool  # takes --embedder (sentence encoders)
    description: str
    build: Callable[[_Build], Baseline] = field(repr=False, compare=False)  # the estimator, unfitted
    coder: Callable[[BaselineRequest], str] = field(repr=False, compare=False)  # the coder name of its runs
    default_encoder: str = DEFAULT_ENCODER  # the --embedder when none is given (embedder families)
    model_example: str | None = None  # families needing --model: an example id for the error message
    saves_model: bool = False  # the trained model is saved under the project's models/ folder


def check_name(name: str) -> Family:
    if name in BASELINES:
        return BASELINES[name]
    close = difflib.get_close_matches(name, list(BASELINES), n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise InputError(f"unknown baseline {name!r}{hint}; baselines: {', '.join(BASELINES)}")


def build_estimator(
    req: BaselineRequest, codebook: Codebook, project: Project | None, progress: Progress | None
) -> Baseline:
    """The estimator a request names, configured from the codebook and the options."""
    say = progress or (lambda _phase, _done, _total: None)
    return check_name(req.name).build(_Build(req, codebook, project, say))


def coder_name(req: BaselineRequest) -> str:
    """The coder a request's runs are stored under: the family and what distinguishes its settings."""
    return check_name(req.name).coder(req)


def _encoders(req: BaselineRequest) -> str:
    family = BASELINES.get(req.name)
    return req.embedder or (family.default_encoder if family is not None else DEFAULT_ENCODER)


def _need_model(req: BaselineRequest) -> str:
    if not req.model:
        example = BASELINES[req.name].model_example
        raise InputError(
            f"the {req.name} baseline needs a model: a Hugging Face id or model folder, e.g. {arg('model', example)}"
        )
    return req.model


def label_texts(codebook: Codebook, style: str) -> dict[str, str]:
    """What each label's embedding is compared with, in zero-shot: its name, its definition, or both."""
    if style not in ("name", "definition", "both"):
        raise InputError(f"{arg('label_text', style)}: use name, definition or both")
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


# -- builders, one per family -------------------------------------------------------------------------------


def _embedder(b: _Build) -> Embedder:
    from annotator.baselines.embeddings import Embedder

    return Embedder(_encoders(b.req), project=b.project, progress=b.encoding)


def _build_embed_logreg(b: _Build) -> Baseline:
    from annotator.baselines.embeddings import EmbeddingLogReg

    return EmbeddingLogReg(_embedder(b), C=float(b.opts.get("C", 1.0)), seed=b.req.seed)


def _build_embed_centroid(b: _Build) -> Baseline:
    from annotator.baselines.embeddings import EmbeddingCentroid

    return EmbeddingCentroid(_embedder(b))


def _build_embed_zeroshot(b: _Build) -> Baseline:
    from annotator.baselines.embeddings import EmbeddingZeroShot

    embedder = _embedder(b)
    return EmbeddingZeroShot(embedder, label_texts=label_texts(b.codebook, b.opts.get("label_text", "both")))


def _build_tfidf(b: _Build) -> Baseline:
    from annotator.baselines.tfidf import CLASSIFIERS, TfidfClassifier

    classifier = b.opts.get("classifier", "logreg")
    if classifier not in CLASSIFIERS:
        raise InputError(f"{arg('classifier', classifier)}: use {' or '.join(CLASSIFIERS)}")
    return TfidfClassifier(classifier=classifier, seed=b.req.seed)


def _build_lexicon(b: _Build) -> Baseline:
    from annotator.baselines.lexicon import VaderLexicon

    threshold = float(b.opts.get("threshold", 0.05))
    if not 0 <= threshold < 1:
        raise InputError(f"{arg('threshold', threshold)}: use a number from 0 (no neutral band) to below 1")
    return VaderLexicon(labels=_lexicon_labels(b.codebook), threshold=threshold)


def _build_text2text(b: _Build) -> Baseline:
    from annotator.baselines.text2text import Text2Text, default_prompt

    labels = b.codebook.label_names
    prompt = b.opts.get("prompt") or default_prompt(b.codebook.name, labels)
    if "{text}" not in prompt:
        raise InputError(f"{arg('prompt', prompt)}: must contain {{text}}, where each document's text goes")
    return Text2Text(_need_model(b.req), prompt=prompt, labels=labels, seed=b.req.seed, progress=b.labeling)


def _build_classifier(b: _Build) -> Baseline:
    from annotator.baselines.classifier import HFClassifier

    return HFClassifier(
        _need_model(b.req),
        labels=b.codebook.allowed_labels,
        label_map=b.opts.get("label_map"),
        progress=b.labeling,
    )


def _build_finetune(b: _Build) -> Baseline:
    from annotator.baselines.finetune import FineTunedEncoder

    return FineTunedEncoder(
        base=b.req.model or "minilm",
        epochs=int(b.opts.get("epochs", 3)),
        learning_rate=float(b.opts.get("learning_rate", 5e-5)),
        seed=b.req.seed,
        progress=b.say,
    )


def _build_ensemble(b: _Build) -> Baseline:
    from annotator.baselines.embeddings import Embedder
    from annotator.baselines.ensemble import StackedEnsemble

    names = [n.strip() for n in _encoders(b.req).split(",") if n.strip()]
    encoders = [Embedder(n, project=b.project, progress=b.encoding) for n in names]
    return StackedEnsemble(encoders, tfidf=bool(b.opts.get("tfidf", True)), seed=b.req.seed)


# -- coder names --------------------------------------------------------------------------------------------


def _coder_with_encoder(req: BaselineRequest) -> str:
    return f"{req.name}/{_encoders(req)}"


def _coder_with_model(req: BaselineRequest) -> str:
    return f"{req.name}/{req.model}"


def _coder_ensemble(req: BaselineRequest) -> str:
    return "ensemble/" + "+".join(n.strip() for n in _encoders(req).split(",")) + "+tfidf"


# -- the registry -------------------------------------------------------------------------------------------

BASELINES: dict[str, Family] = {
    "embed-logreg": Family(
        True,
        True,
        "sentence embeddings + logistic regression",
        build=_build_embed_logreg,
        coder=_coder_with_encoder,
    ),
    "embed-centroid": Family(
        True,
        True,
        "cosine similarity to each class's mean embedding",
        build=_build_embed_centroid,
        coder=_coder_with_encoder,
    ),
    "embed-zeroshot": Family(
        False,
        True,
        "cosine similarity to label descriptions from the codebook",
        build=_build_embed_zeroshot,
        coder=_coder_with_encoder,
    ),
    "tfidf": Family(
        True,
        False,
        "TF-IDF word n-grams + logistic regression (or --classifier svm)",
        build=_build_tfidf,
        coder=lambda req: f"tfidf/{req.options.get('classifier', 'logreg')}",
    ),
    "lexicon": Family(
        False,
        False,
        "VADER sentiment lexicon (sentiment codebooks)",
        build=_build_lexicon,
        coder=lambda req: f"{req.name}/vader",
    ),
    "text2text": Family(
        False,
        False,
        "a T5 / flan-T5 model prompted with the codebook's labels (--model)",
        build=_build_text2text,
        coder=_coder_with_model,
        model_example="google/flan-t5-small",
    ),
    "classifier": Family(
        False,
        False,
        "a Hugging Face text-classification model (--model, --label-map)",
        build=_build_classifier,
        coder=_coder_with_model,
        model_example="cardiffnlp/twitter-roberta-base-sentiment-latest",
    ),
    "finetune": Family(
        True,
        False,
        "fine-tune an encoder (default MiniLM) with a classification head",
        build=_build_finetune,
        coder=lambda req: f"finetune/{req.model or 'minilm'}",
        saves_model=True,
    ),
    "ensemble": Family(
        True,
        True,
        "stacked: embed-logreg on mpnet and MiniLM + TF-IDF, combined on out-of-fold probabilities",
        build=_build_ensemble,
        coder=_coder_ensemble,
        default_encoder="mpnet,minilm",
    ),
}
# the families whose --embedder default is not the one encoder (kept for readers of the old name)
DEFAULT_ENCODERS = {
    n: f.default_encoder for n, f in BASELINES.items() if f.default_encoder != DEFAULT_ENCODER
}
