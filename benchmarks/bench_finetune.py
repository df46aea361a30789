"""Fine-tuning time: MiniLM on 8,000 Rotten Tomatoes sentences with the default settings (< 15 min, 2 cores).

The 8,000 sentences are a seeded sample stratified by the critics' label; the other 2,605 are labeled after
training, and the accuracy against the critics is printed beside the time (the time excludes model loading).
"""

from __future__ import annotations

import os
import time

import numpy as np

from annotator.baselines.finetune import FineTunedEncoder
from annotator.data.datasets.hutto import load_example

N_TRAIN = 8_000
TARGET_S = 15 * 60


def main() -> None:
    data = load_example("rotten-tomatoes")
    texts = data.documents["text"].tolist()
    labels = np.array(data.critics, dtype=object)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(texts))
    train, rest = order[:N_TRAIN], order[N_TRAIN:]
    epochs = int(os.environ.get("ANNOTATOR_BENCH_EPOCHS", "3"))
    model = FineTunedEncoder("minilm", epochs=epochs, seed=0)
    start = time.perf_counter()
    model.fit([texts[i] for i in train], labels[train].tolist())
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    predicted = model.predict([texts[i] for i in rest])
    predict_s = time.perf_counter() - start
    accuracy = float(np.mean(predicted == labels[rest]))
    print(f"MiniLM fine-tuned on {N_TRAIN:,} sentences, {epochs} epochs (batch 32, 64 tokens):")
    print(f"  training   {train_s / 60:6.1f} min  ({N_TRAIN * epochs / train_s:.0f} sentences/s)")
    print(f"  labeling   {predict_s:6.1f} s    ({len(rest) / predict_s:.0f} sentences/s)")
    print(f"  accuracy on the other {len(rest):,}: {accuracy:.3f}")
    verdict = "ok" if train_s <= TARGET_S else "SLOWER THAN TARGET"
    print(f"  {train_s / 60:.1f} min (target < {TARGET_S // 60} min) {verdict}")


if __name__ == "__main__":
    main()
