"""The words of `annotator agreement`: the yardstick's rule, each verdict's one-line summary, and why a
figure is missing (pure strings; the figures are `annotator.stats.agreement`'s)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol, get_args

from annotator.stats.intervals import CI, MIN_UNITS
from annotator.stats.paired import _fmt, _span

MARGIN = 0.05  # default non-inferiority margin of the yardstick (kappa points)
Verdict = Literal["at the human level", "below the human level", "inconclusive", "undetermined"]
VERDICTS: tuple[Verdict, ...] = get_args(Verdict)  # the yardstick's verdicts


class _Named(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...


def yardstick_rule(margin: float = MARGIN, min_units: int = MIN_UNITS) -> str:
    """The yardstick's rule in one sentence, as printed and stored."""
    return (
        "yardstick: on the units the run coded, the run's mean kappa with each human minus the humans' mean "
        f"pairwise kappa on the same units, with its paired {CI:.0%} bootstrap interval: 'at the human level' "
        f"when the interval lies above -{margin:g}, 'below the human level' when it lies below -{margin:g}, "
        f"'inconclusive' otherwise or on fewer than {min_units} units"
    )


YARDSTICK_RULE = yardstick_rule()


def no_humans_reason(coders: Sequence[_Named], ref: list[int], unused_gold: list[str]) -> str | None:
    """Why there is no human-human figure, with what to do; None with two or more reference coders."""
    if len(ref) >= 2:
        return None
    gold = unused_gold
    if not ref:
        if gold:
            names = ", ".join(gold)
            return (
                f"no human coder here besides the gold coder {names}, which is used only when named: add it "
                f"with --coders {gold[0]},... (and import a second human coder for human-human figures)"
            )
        return "no human coders: import human codes (`annotator import codes`) or name them with --coders"
    only = coders[ref[0]]
    hint = (
        "import a second human coder"
        if only.kind == "human" and not gold
        else f"name another reference coder with --coders (e.g. {', '.join(gold)})"
        if gold
        else "import a human coder"
    )
    return f"only one reference coder ({only.name}, {only.kind}): human-human figures need two; {hint}"


def yardstick_line(
    name: str,
    verdict: str,
    why: str | None,
    n_used: int,
    run_kappa: dict[str, Any],
    human_kappa: dict[str, Any],
    diff: dict[str, Any],
    margin: float,
) -> str:
    """The yardstick's verdict on one run in one line."""
    if verdict == "undetermined":
        return f"{name} vs humans: cannot compare: {why}"
    if why is not None:
        return f"{name} vs humans: inconclusive ({n_used} units): {why}"
    shown = verdict if verdict != "inconclusive" else f"inconclusive ({n_used} units)"
    return (
        f"{name} vs humans on the {n_used} units it coded: {shown}: mean kappa with each human "
        f"{_span(run_kappa)} vs human-human {_span(human_kappa)}, difference {_span(diff)} (margin {margin:g})"
    )


def cannot_compare_line(a: str, b: str, why: str | None) -> str:
    return f"{a} vs {b}: cannot compare: {why}"


def comparison_line(a: str, b: str, n: int, delta: dict[str, Any], share: float | None, verdict: str) -> str:
    """Run A against run B in one line: the difference, the share of replicates <= 0 and the verdict."""
    return (
        f"{a} minus {b}, mean kappa with the humans on {n} units both coded: "
        f"{_span(delta)}, share of replicates <= 0: {_fmt(share)}: {verdict}"
    )
