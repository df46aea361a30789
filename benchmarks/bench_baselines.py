"""Baseline accuracy on the bundled Rotten Tomatoes data (10,605 sentences, critics' labels), through the tool.

Part 1, the tool as a user runs it: a project with the whole example, `annotator split --test 0.2 --seed 0
--stratify-by-coder critics`, then every offline baseline (`annotator baseline NAME`), then `annotator
validate`: test accuracy with its 95% bootstrap interval, macro-F1, and the seconds each took (encoding
included the first time an encoder sees the texts; later baselines read the embedding cache).

Part 2, the reference protocol: the same estimators on scikit-learn's stratified 80/20 split with
random_state=0, the split of the plain scripts behind DESIGN.md's figures, printed beside those figures.

Needs `annotator models pull mpnet`. About 15 minutes on 2 cores (mpnet encodes ~45 sentences/s; fine-tuning
MiniLM takes most of the rest); ANNOTATOR_BENCH_SKIP=finetune,ensemble leaves rows out.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from annotator.baselines.embeddings import Embedder, EmbeddingCentroid, EmbeddingLogReg, EmbeddingZeroShot
from annotator.baselines.lexicon import VaderLexicon
from annotator.data.datasets.hutto import load_example
from annotator.data.example import import_example
from annotator.data.splits import make_split
from annotator.project import init_project
from annotator.services.baseline import BaselineRequest, label_texts, run_baseline
from annotator.services.validation import validate
from annotator.store.registry import project_codebook

RUNS = [
    ("embed-logreg", "mpnet"),
    ("embed-centroid", "mpnet"),
    ("embed-zeroshot", "mpnet"),
    ("embed-logreg", "minilm"),
    ("embed-centroid", "minilm"),
    ("embed-zeroshot", "minilm"),
    ("tfidf", None),
    ("lexicon", None),
    ("finetune", None),
    ("ensemble", None),
]
REFERENCE = {  # DESIGN.md: plain scripts, stratified 80/20, random_state=0
    ("logreg", "mpnet"): 0.856,
    ("centroid", "mpnet"): 0.834,
    ("zeroshot", "mpnet"): 0.752,
    ("logreg", "minilm"): 0.766,
    ("centroid", "minilm"): 0.723,
    ("zeroshot", "minilm"): 0.639,
    ("vader", None): 0.614,
}


def _ci(fig: dict) -> str:
    return f"{fig['estimate']:.3f} [{fig['low']:.3f}, {fig['high']:.3f}]"


def part1(root: Path) -> Path:
    project = init_project(root / "baselines", example="sentiment")
    import_example(project, raters=3)
    make_split(project, 0.2, seed=0, stratify_by_coder="critics")
    skip = set(filter(None, os.environ.get("ANNOTATOR_BENCH_SKIP", "").split(",")))
    seconds: dict[int, float] = {}
    names: dict[int, str] = {}
    for name, encoder in RUNS:
        if name in skip:
            continue
        start = time.perf_counter()
        outcome = run_baseline(project, BaselineRequest(name, embedder=encoder, seed=0))
        seconds[outcome.run_id] = time.perf_counter() - start
        names[outcome.run_id] = outcome.coder
        print(f"  ran {outcome.coder:32s} {seconds[outcome.run_id]:7.1f} s", flush=True)
    result = validate(project, "critics", split="test", n_boot=1000, seed=0)
    print(f"\ntest split: {result.n_gold} sentences; trained on the dev split's critics labels")
    print("| baseline | test accuracy [95% CI] | macro-F1 | seconds |\n|---|---|---|---:|")
    for entry in sorted(result.runs, key=lambda e: -e["accuracy"]["estimate"]):
        rid = entry["run_id"]
        print(
            f"| {names[rid]} | {_ci(entry['accuracy'])} | {entry['macro_f1']['estimate']:.3f} | {seconds[rid]:.0f} |"
        )
    return project.root


def part2(project_root: Path) -> None:
    from annotator.project import load_project

    project = load_project(project_root)
    codebook = project_codebook(project)
    data = load_example("rotten-tomatoes")
    texts = np.array(data.documents["text"].tolist(), dtype=object)
    labels = np.array(data.critics)
    train, test = train_test_split(np.arange(len(texts)), test_size=0.2, stratify=labels, random_state=0)
    rows = []
    for encoder in ("mpnet", "minilm"):
        embedder = Embedder(encoder, project=project)  # the cache from part 1: nothing is encoded again
        models = {
            "logreg": EmbeddingLogReg(embedder),
            "centroid": EmbeddingCentroid(embedder, normalize=False),
            "zeroshot": EmbeddingZeroShot(embedder, label_texts=label_texts(codebook, "both")),
        }
        for kind, model in models.items():
            model.fit(texts[train].tolist(), labels[train].tolist())
            rows.append((kind, encoder, float(np.mean(model.predict(texts[test].tolist()) == labels[test]))))
    # the plain script scored VADER on all sentences (it trains nothing), compound >= 0 as positive
    vader = VaderLexicon(threshold=0.0).fit()
    rows.append(("vader", None, float(np.mean(vader.predict(texts.tolist()) == labels))))
    print(
        "\nreference protocol (scikit-learn split, random_state=0; centroid without renormalisation; "
        "VADER on all sentences with threshold 0; zero-shot with the codebook's label: definition):"
    )
    print("| estimator | encoder | tool | plain script | difference |\n|---|---|---:|---:|---:|")
    for kind, encoder, acc in rows:
        ref = REFERENCE[(kind, encoder)]
        print(f"| {kind} | {encoder or '-'} | {acc:.3f} | {ref:.3f} | {acc - ref:+.3f} |")


def main() -> None:
    keep = os.environ.get("ANNOTATOR_BENCH_KEEP")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(keep) if keep else Path(tmp)
        project_root = part1(root)
        part2(project_root)


if __name__ == "__main__":
    main()
