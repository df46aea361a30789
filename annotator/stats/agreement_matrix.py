"""What the agreement figures read: the code matrix (anything shaped like `annotator.store.codes.CodeMatrix`),
the settings, and the context every step of `annotator.stats.agreement` shares; and ``Figure``, the shape of
one figure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from annotator.stats.agreement_text import MARGIN
from annotator.stats.intervals import MIN_UNITS
from annotator.stats.paired import _mean_over_pairs, _Pair, _Stats

__all__ = ["CoderLike", "Context", "Figure", "MatrixLike", "Settings"]

Array = NDArray[np.float64]

# One figure (`annotator.stats.paired`): "estimate", "low", "high" (None: no number, see "reason"), "n_units",
# "undefined_share", "unreliable", "reason"; some add "pairable_values" (alpha), "n_pairs" and
# "n_pairs_left_out" (a mean over pairs) or "n_ties_left_out" (kappa vs the majority). Not a TypedDict: its
# keys depend on the statistic.
Figure = dict[str, Any]


class CoderLike(Protocol):
    """One row of the matrix: who coded it, and how many codes it holds."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def run_id(self) -> int | None: ...
    @property
    def repeat(self) -> int | None: ...
    @property
    def model(self) -> str | None: ...
    @property
    def n_codes(self) -> int: ...
    @property
    def n_invalid(self) -> int: ...
    @property
    def n_uncertain(self) -> int: ...
    @property
    def n_asked(self) -> int | None: ...


class MatrixLike(Protocol):
    """Coders x units category indices (NaN: missing), with what the rows, columns and values are."""

    @property
    def codes(self) -> Array: ...
    @property
    def coders(self) -> Sequence[CoderLike]: ...
    @property
    def categories(self) -> list[str]: ...
    @property
    def codebook(self) -> str: ...
    @property
    def codebook_versions(self) -> list[int]: ...
    @property
    def split(self) -> str: ...
    @property
    def uncertain_label(self) -> str | None: ...
    @property
    def uncertain_as_category(self) -> bool: ...
    @property
    def values(self) -> list[float]: ...
    @property
    def invalid_as_category(self) -> bool: ...
    @property
    def values_given(self) -> bool | None: ...
    @property
    def unused_gold(self) -> list[str]: ...
    @property
    def names(self) -> list[str]: ...
    @property
    def uncertain_note(self) -> str: ...
    def asked_row(self, i: int) -> NDArray[np.bool_]: ...


@dataclass(frozen=True)
class Settings:
    """How the figures are computed: the measurement level, the bootstrap, the minimum overlap, the margin."""

    level: str = "nominal"
    n_boot: int = 1000
    seed: int = 0
    min_units: int = MIN_UNITS
    margin: float = MARGIN


@dataclass(frozen=True)
class Context:
    """What every step reads: the matrix, the reference rows, the settings and the category values."""

    m: MatrixLike
    ref: list[int]
    settings: Settings
    values: list[float]
    no_humans: str | None  # why there is no human-human figure (None: two or more reference coders)

    @property
    def min_units(self) -> int:
        return self.settings.min_units

    @property
    def n_boot(self) -> int:
        return self.settings.n_boot

    def stats(self, sub: Array) -> _Stats:
        """Figures on ``sub`` (coders x units), every one on the same seeded draws of its units."""
        s = self.settings
        return _Stats(sub, len(self.m.categories), s.level, self.values, s.n_boot, s.seed, s.min_units)

    def mean_kappa_with_humans(self, s: _Stats, view: Array, row: int) -> tuple[Figure, Array]:
        """The mean of ``row``'s kappa with each of the first ``len(ref)`` rows of ``view`` (the humans)."""
        pairs = []
        for x in range(len(self.ref)):
            p, r, n = s.kappa(view[row], view[x])
            pairs.append(_Pair(p, r, n, np.isfinite(view[row]) & np.isfinite(view[x])))
        return _mean_over_pairs(pairs, self.min_units, self.n_boot, self.no_humans or "no human coder")
