"""Estimation coverage: gold only vs LLM only vs PPI++ on a share, 500 gold samples each of 100/300/1,000.

A population of 20,000 documents with a known share (about 0.30) of one label and an "LLM" with
class-dependent errors, biased towards that label (it finds 95% of the documents that carry it and wrongly
gives it to 19% of the others: 85% accurate, LLM share about 0.42). For each gold size, 500 simple random
gold samples are drawn from the population without replacement; each gives a 95% interval for the share by
three methods: the gold codes alone (Wald), the LLM's labels on all 20,000 documents alone (not corrected:
the same interval in every repetition), and PPI++ (`annotator.stats.ppi.ppi_share`, lam tuned, the LLM's
labels on all 20,000 documents as the unlabeled set). The table gives each method's coverage of the true
share (target 0.95) and its mean interval width. Seeded; the seed is printed.
"""

from __future__ import annotations

import time

import numpy as np

from annotator.stats.ppi import classical_share, naive_share, ppi_share

SEED = 20240607
POPULATION = 20_000
SHARE = 0.30
SENSITIVITY, SPECIFICITY = 0.95, 0.81  # P(LLM says 1 | 1), P(LLM says 0 | 0)
GOLD_SIZES = (100, 300, 1_000)
REPETITIONS = 500
ALPHA = 0.05


def _population(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y = (rng.random(POPULATION) < SHARE).astype(float)
    says_one = np.where(y == 1, SENSITIVITY, 1 - SPECIFICITY)
    return y, (rng.random(POPULATION) < says_one).astype(float)


def simulate(seed: int = SEED) -> tuple[float, float, float, dict[tuple[int, str], tuple[float, float]]]:
    """(true share, LLM share, LLM accuracy, {(gold n, method): (coverage, mean width)})."""
    rng = np.random.default_rng(seed)
    y, yhat = _population(rng)
    truth = float(y.mean())
    naive = naive_share(yhat, ALPHA)
    table: dict[tuple[int, str], tuple[float, float]] = {}
    for n in GOLD_SIZES:
        hits = {"gold only": 0, "LLM only": 0, "PPI++": 0}
        widths: dict[str, list[float]] = {key: [] for key in hits}
        for _ in range(REPETITIONS):
            idx = rng.choice(POPULATION, n, replace=False)
            for key, est in (
                ("gold only", classical_share(y[idx], ALPHA)),
                ("LLM only", naive),
                ("PPI++", ppi_share(y[idx], yhat[idx], yhat, ALPHA)),
            ):
                hits[key] += est.lower <= truth <= est.upper
                widths[key].append(est.upper - est.lower)
        for key in hits:
            table[(n, key)] = (hits[key] / REPETITIONS, float(np.mean(widths[key])))
    return truth, float(yhat.mean()), float((yhat == y).mean()), table


def main() -> None:
    start = time.perf_counter()
    truth, llm_share, accuracy, table = simulate()
    seconds = time.perf_counter() - start
    print(
        f"seed {SEED}; population {POPULATION:,}, true share {truth:.4f}; LLM share {llm_share:.4f}, "
        f"accuracy {accuracy:.3f}; {REPETITIONS} gold samples per size; 95% intervals"
    )
    print(f"  {'gold n':>6}  {'method':<10} {'coverage':>8}  {'mean width':>10}")
    for n in GOLD_SIZES:
        for method in ("gold only", "LLM only", "PPI++"):
            coverage, width = table[(n, method)]
            print(f"  {n:>6,}  {method:<10} {coverage:>8.3f}  {width:>10.4f}")
    print(f"  ({seconds:.1f} s)")


if __name__ == "__main__":
    main()
