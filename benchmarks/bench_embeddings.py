"""Embedding speed: annotator's cached encoder vs raw sentence-transformers encode (>= 90%); cached pass >= 20x.

The same 3,000 Rotten Tomatoes sentences and batch size (64) for both, MiniLM on the CPU. The raw baseline is
``SentenceTransformer.encode`` with normalised embeddings; annotator's first pass encodes and writes every
vector to a fresh project database; its second pass reads them back. Each time is the median of 3 runs after
one warm-up encode, so model loading is not counted.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from annotator.baselines.embeddings import Embedder
from annotator.data.datasets.hutto import load_example
from annotator.project import init_project

N = 3_000
BATCH = 64
THROUGHPUT_TARGET = 0.90
CACHED_TARGET = 20.0


def main() -> None:
    texts = load_example("rotten-tomatoes", n=N, seed=0).documents["text"].tolist()
    probe = Embedder("minilm", batch_size=BATCH)
    model = probe._load()
    model.encode(texts[:256], batch_size=BATCH)  # warm-up

    raw_times, ours_times, cached_times = [], [], []
    for attempt in range(3):
        start = time.perf_counter()
        raw = model.encode(texts, batch_size=BATCH, normalize_embeddings=True, convert_to_numpy=True)
        raw_times.append(time.perf_counter() - start)
        with tempfile.TemporaryDirectory() as tmp:
            project = init_project(Path(tmp) / f"bench{attempt}")
            first = Embedder("minilm", project=project, batch_size=BATCH)
            start = time.perf_counter()
            ours = first.encode(texts)
            ours_times.append(time.perf_counter() - start)
            second = Embedder("minilm", project=project, batch_size=BATCH)
            start = time.perf_counter()
            again = second.encode(texts)
            cached_times.append(time.perf_counter() - start)
            assert second.stats["encoded"] == 0 and np.array_equal(ours, again)
            project.engine.dispose()
    assert np.allclose(raw, ours, atol=1e-4)
    raw_s, ours_s, cached_s = (statistics.median(t) for t in (raw_times, ours_times, cached_times))
    share = raw_s / ours_s
    speedup = ours_s / cached_s
    print(f"MiniLM, {N:,} sentences, batch {BATCH} (median of 3):")
    print(f"  raw sentence-transformers encode  {raw_s:7.2f} s  {N / raw_s:7.0f} sentences/s")
    print(f"  annotator, first pass (+ cache)   {ours_s:7.2f} s  {N / ours_s:7.0f} sentences/s")
    print(f"  annotator, cached pass            {cached_s:7.3f} s  {N / cached_s:7.0f} sentences/s")
    verdict = "ok" if share >= THROUGHPUT_TARGET else "BELOW TARGET"
    print(f"  throughput vs raw {share:.0%} (target >= {THROUGHPUT_TARGET:.0%}) {verdict}")
    verdict = "ok" if speedup >= CACHED_TARGET else "BELOW TARGET"
    print(f"  cached pass {speedup:.0f}x faster than the first (target >= {CACHED_TARGET:.0f}x) {verdict}")


if __name__ == "__main__":
    main()
