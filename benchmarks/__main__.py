"""`make bench`: run every benchmark module and print its figures."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = [
    "benchmarks.bench_import",
    "benchmarks.bench_import_large",
    "benchmarks.bench_startup",
    "benchmarks.bench_labeling",
    "benchmarks.bench_local",
    "benchmarks.bench_reliability",
    "benchmarks.bench_coverage",
    "benchmarks.bench_embeddings",
    "benchmarks.bench_finetune",
    "benchmarks.bench_workbench",
]


def main() -> int:
    selected = sys.argv[1:] or BENCHMARKS
    for name in selected:
        module = importlib.import_module(name if name.startswith("benchmarks.") else f"benchmarks.{name}")
        print(f"== {module.__name__}: {(module.__doc__ or '').strip().splitlines()[0]}")
        module.main()
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
