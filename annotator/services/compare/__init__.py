"""`annotator compare`: runs side by side against a gold coder (`leaderboard`), and the result as CSV
(`table`)."""

from annotator.services.compare.leaderboard import compare
from annotator.services.compare.result import (
    Compared,
    Comparison,
    Humans,
    PairTest,
    PromptComparison,
    PromptGroup,
    RunEntry,
)
from annotator.services.compare.table import CSV_COLUMNS, csv_rows, write_csv
from annotator.stats.significance import fmt_p, holm, mcnemar_exact

__all__ = [
    "CSV_COLUMNS",
    "Compared",
    "Comparison",
    "Humans",
    "PairTest",
    "PromptComparison",
    "PromptGroup",
    "RunEntry",
    "compare",
    "csv_rows",
    "fmt_p",
    "holm",
    "mcnemar_exact",
    "write_csv",
]
