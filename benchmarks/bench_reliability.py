"""Reliability speed: alpha on 20 x 100,000 vs krippendorff (<= 1.5x); 1,000 bootstrap replicates (< 10 s).

Nominal alpha on 20 coders x 100,000 units against the krippendorff package's time on the same matrix, and
1,000 bootstrap replicates of alpha on 3 coders x 2,000 units. Both matrices are seeded random categories
0..4 (coders agree beyond chance); the first has 30% of its codes missing. Times are the median of 3 runs in
one process.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import TypeVar

import krippendorff
import numpy as np

from annotator.stats.reliability import Alpha, bootstrap, krippendorff_alpha

T = TypeVar("T")
RATIO_TARGET = 1.5
BOOTSTRAP_TARGET_S = 10.0


def _median_time(fn: Callable[[], T], repeat: int = 3) -> tuple[float, T]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def _matrix(coders: int, units: int, missing: float, seed: int) -> np.ndarray:
    """Each coder copies a unit's true category 70% of the time and guesses otherwise."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 5, size=units)
    guess = rng.integers(0, 5, size=(coders, units))
    codes = np.where(rng.random((coders, units)) < 0.7, truth, guess).astype(float)
    codes[rng.random(codes.shape) < missing] = np.nan
    return codes


def main() -> None:
    codes = _matrix(20, 100_000, 0.30, seed=0)
    ours_s, ours = _median_time(lambda: krippendorff_alpha(codes, "nominal"))
    theirs_s, theirs = _median_time(
        lambda: krippendorff.alpha(reliability_data=codes, level_of_measurement="nominal")
    )
    ratio = ours_s / theirs_s
    print("nominal alpha, 20 coders x 100,000 units, 30% missing (median of 3):")
    print(f"  annotator     {ours_s:8.3f} s   alpha = {ours:.6f}")
    print(f"  krippendorff  {theirs_s:8.3f} s   alpha = {theirs:.6f}")
    verdict = "ok" if ratio <= RATIO_TARGET else "SLOWER THAN TARGET"
    print(f"  ratio ours/theirs {ratio:.2f} (target <= {RATIO_TARGET}) {verdict}")

    small = _matrix(3, 2_000, 0.0, seed=1)
    boot_s, res = _median_time(lambda: bootstrap(small, Alpha("nominal"), n=1000, seed=0))
    est, low, high, _ = res
    verdict = "ok" if boot_s < BOOTSTRAP_TARGET_S else "SLOWER THAN TARGET"
    print("bootstrap, 1,000 replicates of nominal alpha, 3 coders x 2,000 units (median of 3):")
    print(
        f"  {boot_s:.3f} s (target < {BOOTSTRAP_TARGET_S:.0f} s) {verdict}; alpha {est:.3f} [{low:.3f}, {high:.3f}]"
    )


if __name__ == "__main__":
    main()
