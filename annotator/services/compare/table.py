"""The leaderboard of `annotator compare` as CSV rows: one row per run (and prompt version), intervals as
separate low/high columns, for R, Stata or a spreadsheet."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any, TextIO

from annotator.errors import InputError, arg
from annotator.services.compare.result import Compared, PromptComparison, RunEntry

# -- CSV ----------------------------------------------------------------------------------------------------

CSV_COLUMNS = [
    "prompt_group",
    "rank",
    "run_id",
    "coder",
    "kind",
    "model",
    "prompt",
    "n_items",
    "accuracy",
    "accuracy_low",
    "accuracy_high",
    "macro_f1",
    "macro_f1_low",
    "macro_f1_high",
    "weighted_f1",
    "kappa",
    "kappa_low",
    "kappa_high",
    "coverage",
    "n_valid",
    "n_invalid",
    "n_uncertain",
    "n_missing",
    "too_few",
    "alpha_vs_majority",
    "alpha_low",
    "alpha_high",
    "alpha_n_units",
    "cost_usd",
    "cost_per_valid",
    "seconds",
    "seconds_per_valid",
    "tokens_in",
    "tokens_out",
    "tokens_per_valid",
]


_CSV_PLAIN = [c for c in CSV_COLUMNS[1:] if not c.startswith(("accuracy", "macro_f1", "kappa", "alpha"))]


def csv_rows(result: Compared) -> list[dict[str, Any]]:
    """One flat row per run (in prompts mode, per run of each version), in the CSV_COLUMNS."""
    runs: list[tuple[str | None, RunEntry]] = []
    if isinstance(result, PromptComparison):
        runs = [(p["prompt"], r) for p in result.prompts for v in p["versions"] for r in v["runs"]]
    else:
        runs = [(None, r) for r in result.runs]
    rows = []
    for group, entry in runs:
        r: dict[str, Any] = dict(entry)
        row: dict[str, Any] = {"prompt_group": group}
        for key in _CSV_PLAIN:
            row[key] = r.get(key)
        for key, out in (
            ("accuracy", "accuracy"),
            ("macro_f1", "macro_f1"),
            ("kappa", "kappa"),
            ("alpha_vs_majority", "alpha"),
        ):
            e = r.get(key) or {}
            row[key] = e.get("estimate")
            row[f"{out}_low"], row[f"{out}_high"] = e.get("low"), e.get("high")
        row["alpha_n_units"] = (r.get("alpha_vs_majority") or {}).get("n_units")
        rows.append(row)
    return rows


def write_csv(result: Compared, csv_path: str | Path | TextIO) -> None:
    """Write `csv_rows` to a file path, ``-`` (standard output) or an open text stream."""

    def write(handle: TextIO) -> None:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(csv_rows(result))

    if not isinstance(csv_path, str | Path):
        write(csv_path)
        return
    if str(csv_path) == "-":
        write(sys.stdout)
        return
    try:
        with Path(csv_path).open("w", encoding="utf-8", newline="") as handle:
            write(handle)
    except OSError as exc:
        raise InputError(
            f"{arg('csv_path', str(csv_path))}: cannot write ({exc.strerror or exc}); give a writable file path, "
            f"or {arg('csv_path', '-')} for the screen"
        ) from exc
