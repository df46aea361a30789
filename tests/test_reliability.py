"""Reliability coefficients against published worked examples, the krippendorff package, and hand computations."""

from __future__ import annotations

from typing import Literal

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from annotator.errors import DataError as InputError
from annotator.stats.reliability import (
    Alpha,
    Level,
    alpha_report,
    bootstrap,
    category_order,
    cohen_kappa,
    fleiss_kappa,
    gwet_ac1,
    krippendorff_alpha,
    paired_bootstrap_difference,
    percent_agreement,
    to_matrix,
)

NA = np.nan

# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", section C: 4 observers x 12 units with
# missing values, codes 1..5. Stored here as indices 0..4 with the values 1..5 passed separately.
KRIPP_2011 = (
    np.array(
        [
            [1, 2, 3, 3, 2, 1, 4, 1, 2, NA, NA, NA],
            [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NA, 3],
            [NA, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NA],
            [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NA],
        ]
    )
    - 1
)
VALUES_1_5 = [1.0, 2.0, 3.0, 4.0, 5.0]

# Fleiss (1971), Table 1: 30 patients, 6 psychiatrists each, 5 diagnoses (depression, personality disorder,
# schizophrenia, neurosis, other); cells are how many of the 6 chose each diagnosis. The paper: kappa = .430.
FLEISS_1971 = [
    [0, 0, 0, 6, 0], [0, 3, 0, 0, 3], [0, 1, 4, 0, 1], [0, 0, 0, 0, 6], [0, 3, 0, 3, 0],
    [2, 0, 4, 0, 0], [0, 0, 4, 0, 2], [2, 0, 3, 1, 0], [2, 0, 0, 4, 0], [0, 0, 0, 0, 6],
    [1, 0, 0, 5, 0], [1, 1, 0, 4, 0], [0, 3, 3, 0, 0], [1, 0, 0, 5, 0], [0, 2, 0, 3, 1],
    [0, 0, 5, 0, 1], [3, 0, 0, 1, 2], [5, 1, 0, 0, 0], [0, 2, 0, 4, 0], [1, 0, 2, 0, 3],
    [0, 0, 0, 0, 6], [0, 1, 0, 5, 0], [0, 2, 0, 1, 3], [2, 0, 0, 4, 0], [1, 0, 0, 4, 1],
    [0, 5, 0, 1, 0], [4, 0, 0, 0, 2], [0, 2, 0, 4, 0], [1, 0, 5, 0, 0], [0, 0, 0, 0, 6],
]  # fmt: skip

# Gwet (2014), Handbook of Inter-Rater Reliability, 4th ed.: 5 observers x 15 units scored 0..3 (the data set
# his irrCAC package ships as cac.raw5obser; its AC1 is 0.497 there, percent agreement 0.616).
GWET_5_OBSERVERS = np.array(
    [
        [1, 1, 2, NA, 0, 0, 1, 1, 2, 2, NA, 0, 1, 3, 1],
        [1, 1, 3, 0, 0, 0, 0, NA, 2, 1, 1, 0, 2, 3, 1],
        [2, 0, 3, 0, 0, 0, 2, 2, 2, 1, 0, 0, 2, 2, 1],
        [NA, 1, 3, NA, NA, NA, NA, 0, NA, 1, 0, 0, 2, 2, NA],
        [2, NA, NA, 0, 0, 0, 1, NA, 2, NA, NA, NA, NA, 3, 1],
    ]
)


def _from_table(table: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Two coders' codes from a contingency table (rows: coder a's category, columns: coder b's)."""
    a, b = [], []
    for i, row in enumerate(table):
        for j, count in enumerate(row):
            a += [i] * count
            b += [j] * count
    return np.array(a, dtype=float), np.array(b, dtype=float)


def _random_codes(rng: np.random.Generator, coders: int, units: int, k: int, missing: float) -> np.ndarray:
    codes = rng.integers(0, k, size=(coders, units)).astype(float)
    # some agreement, so alpha is not just noise around 0
    codes[1] = np.where(rng.random(units) < 0.6, codes[0], codes[1])
    codes[rng.random(codes.shape) < missing] = np.nan
    return codes


# -- Krippendorff's alpha ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "expected"), [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797)]
)
def test_alpha_krippendorff_2011_worked_example(level: Level, expected: float) -> None:
    assert round(krippendorff_alpha(KRIPP_2011, level, VALUES_1_5), 3) == expected


def test_alpha_report_counts_pairable_units_and_values() -> None:
    report = alpha_report(KRIPP_2011)
    # unit 12 has a single value and drops out; the paper's coincidence matrix sums to n = 40
    assert (report.pairable_units, report.pairable_values, report.reason) == (11, 40, None)


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_alpha_equals_krippendorff_package(level: Level, seed: int) -> None:
    rng = np.random.default_rng(seed)
    k = int(rng.integers(3, 7))
    codes = _random_codes(rng, int(rng.integers(2, 6)), int(rng.integers(20, 200)), k, missing=0.3)
    values = np.sort(rng.uniform(0.5, 10.0, size=k))  # distinct, positive (ratio), unevenly spaced
    numeric = np.where(np.isnan(codes), np.nan, values[np.nan_to_num(codes).astype(int)])
    theirs = krippendorff.alpha(reliability_data=numeric, level_of_measurement=level)
    assert krippendorff_alpha(codes, level, list(values)) == pytest.approx(theirs, abs=1e-10)


def test_ordinal_alpha_uses_only_the_order_of_values() -> None:
    a = krippendorff_alpha(KRIPP_2011, "ordinal", [1, 2, 3, 4, 5])
    assert krippendorff_alpha(KRIPP_2011, "ordinal", [1, 2, 30, 31, 500]) == pytest.approx(a)
    # interval does depend on the spacing, so that call must differ
    assert krippendorff_alpha(KRIPP_2011, "interval", [1, 2, 30, 31, 500]) != pytest.approx(
        krippendorff_alpha(KRIPP_2011, "interval", [1, 2, 3, 4, 5])
    )


def test_alpha_perfect_agreement_with_missing_is_one() -> None:
    codes = np.array([[0, 1, 2, NA, 1], [0, 1, 2, 2, NA], [NA, 1, 2, 2, 1]])
    assert krippendorff_alpha(codes) == pytest.approx(1.0)


def test_alpha_edge_cases_give_nan_with_reason() -> None:
    one_coder = alpha_report(np.array([[0, 1, 1, 0]]))
    assert np.isnan(one_coder.alpha) and "one coder" in (one_coder.reason or "")
    no_pairs = alpha_report(np.array([[0, NA, 1], [NA, 1, NA]]))
    assert np.isnan(no_pairs.alpha) and "pairable" in (no_pairs.reason or "")
    identical = alpha_report(np.array([[2, 2, 2, NA], [2, 2, NA, 2]]))
    assert np.isnan(identical.alpha) and "no variation" in (identical.reason or "")
    assert (identical.pairable_units, identical.pairable_values) == (2, 4)
    # the reference package refuses the same data outright
    with pytest.raises(ValueError):
        krippendorff.alpha(np.array([[2, 2, 2, NA], [2, 2, NA, 2]]), level_of_measurement="nominal")


def test_alpha_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="category indices"):
        krippendorff_alpha(np.array([[0.5, 1.0], [1.0, 1.0]]))
    with pytest.raises(ValueError, match="category indices"):
        krippendorff_alpha(np.array([[-1.0, 1.0], [1.0, 1.0]]))
    with pytest.raises(ValueError, match="level"):
        krippendorff_alpha(KRIPP_2011, "circular")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="outside"):
        krippendorff_alpha(KRIPP_2011, "interval", [1.0, 2.0])


# -- kappas, AC1, percent agreement ---------------------------------------------------------------------------


def test_fleiss_1971_worked_example() -> None:
    codes = np.array([np.repeat(np.arange(5), row) for row in FLEISS_1971]).T.astype(float)
    assert codes.shape == (6, 30)
    assert round(fleiss_kappa(codes), 3) == 0.430


def test_fleiss_uses_only_units_coded_by_every_coder() -> None:
    codes = np.array([[0, 1, 1, 0, 2], [0, 1, 0, 0, 2], [0, 1, 1, 1, 2]], dtype=float)
    extra = np.hstack([codes, [[0.0], [NA], [2.0]]])
    assert fleiss_kappa(extra) == pytest.approx(fleiss_kappa(codes))
    assert np.isnan(fleiss_kappa(np.array([[0, NA], [NA, 1]])))
    assert np.isnan(fleiss_kappa(np.array([[1.0, 1.0], [1.0, 1.0]])))


def test_cohen_kappa_two_by_two_example() -> None:
    # Wikipedia, "Cohen's kappa", simple example: 50 grant proposals, both yes 20, both no 15, a-yes/b-no 5,
    # a-no/b-yes 10: p_o = 0.70, p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.50, kappa = 0.40.
    a, b = _from_table([[20, 5], [10, 15]])
    assert round(cohen_kappa(a, b), 3) == 0.400


@pytest.mark.parametrize(("weights", "expected"), [(None, 0.796), ("linear", 0.843), ("quadratic", 0.892)])
def test_cohen_kappa_gwet_abstractors_example(
    weights: Literal["linear", "quadratic"] | None, expected: float
) -> None:
    # Gwet (2014), Handbook, 100 pregnant women classified by two abstractors (ectopic / abnormal / normal
    # intrauterine); Gwet's irrCAC gives kappa 0.796, linear-weighted 0.843, quadratic-weighted 0.892.
    a, b = _from_table([[13, 0, 0], [0, 20, 7], [0, 4, 56]])
    assert round(cohen_kappa(a, b, weights=weights), 3) == expected


def test_cohen_kappa_uses_units_both_coded_and_true_category_distances() -> None:
    a = np.array([0, 1, 2, 2, NA, 0, 1])
    b = np.array([0, 2, 2, 1, 1, NA, 1])
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score([0, 1, 2, 2, 1], [0, 2, 2, 1, 1]))
    # only categories 0 and 2 used: the linear distance between them is 2 steps, not 1
    x, y = [0, 2, 2, 0, 2], [0, 2, 0, 0, 2]
    ours = cohen_kappa(x, y, weights="linear", n_categories=3)
    assert ours == pytest.approx(cohen_kappa_score(x, y, labels=[0, 1, 2], weights="linear"))
    assert np.isnan(cohen_kappa([0, NA], [NA, 1]))
    assert np.isnan(cohen_kappa([1, 1, 1], [1, 1, 1]))


def test_gwet_ac1_handbook_examples() -> None:
    # Gwet (2014, p. 120) 4 raters x 12 units (the Krippendorff data; irrCAC: p_a 0.818, AC1 0.775) and the
    # 5-observer data set (irrCAC: AC1 0.497).
    assert round(gwet_ac1(KRIPP_2011), 3) == 0.775
    assert round(gwet_ac1(GWET_5_OBSERVERS), 3) == 0.497


def test_gwet_ac1_hand_computation() -> None:
    # units: (0,0,0) (0,0,1) (1,1,-) (0,-,-)
    # p_a over units with >= 2 raters: (1 + 1/3 + 1) / 3 = 7/9
    # pi over all rated units: pi_0 = (1 + 2/3 + 0 + 1) / 4 = 2/3, pi_1 = 1/3
    # p_e = (2/3 * 1/3 + 1/3 * 2/3) / (q - 1) = 4/9 for q = 2 -> AC1 = (7/9 - 4/9) / (5/9) = 0.6
    codes = np.array([[0, 0, 1, 0], [0, 0, 1, NA], [0, 1, NA, NA]])
    assert gwet_ac1(codes) == pytest.approx(0.6)
    # with a 3-category codebook, p_e = (4/9) / 2 = 2/9 -> AC1 = (5/9) / (7/9) = 5/7
    assert gwet_ac1(codes, n_categories=3) == pytest.approx(5 / 7)
    assert np.isnan(gwet_ac1(np.array([[0, 0], [0, 0]])))  # one category seen, q unknown
    assert gwet_ac1(np.array([[0, 0], [0, 0]]), n_categories=2) == pytest.approx(1.0)


def test_percent_agreement() -> None:
    assert round(percent_agreement(KRIPP_2011), 3) == 0.818  # Gwet's p_a on the same data
    assert round(percent_agreement(GWET_5_OBSERVERS), 3) == 0.616
    assert percent_agreement(np.array([[0, 1, 2, 1], [0, 1, 1, NA]])) == pytest.approx(2 / 3)
    assert np.isnan(percent_agreement(np.array([[0, NA], [NA, 1]])))


# -- to_matrix ------------------------------------------------------------------------------------------------


def test_to_matrix_builds_codes_and_keeps_names() -> None:
    records = [("bob", "d2", "neg"), ("alice", "d1", "pos"), ("alice", "d2", "neg"), ("bob", "d3", "pos")]
    matrix, coders, units, cats = to_matrix(records)
    assert coders == ["bob", "alice"] and units == ["d2", "d1", "d3"] and cats == ["neg", "pos"]
    np.testing.assert_array_equal(matrix, [[0, NA, 1], [0, 1, NA]])
    matrix, coders, units, cats = to_matrix(
        records, coders=["alice"], units=["d1", "d2"], categories=["pos", "neu", "neg"]
    )
    np.testing.assert_array_equal(matrix, [[0, 2]])


def test_to_matrix_orders_numeric_labels_by_value() -> None:
    """An ordinal scale coded '1'..'10' must not be scrambled into the string order '1', '10', '2', '9'."""
    records = [("a", u, lab) for u, lab in enumerate(["10", "2", "9", "1", "2"])]
    _, _, _, cats = to_matrix(records)
    assert cats == ["1", "2", "9", "10"]
    assert category_order(["-1", "0.5", "10", "b", "a", "2"]) == ["-1", "0.5", "2", "10", "a", "b"]
    # ordinal alpha on the numeric order equals alpha on the values themselves
    coders = [[1, 2, 9, 10, 2], [1, 2, 10, 10, 1], [2, 2, 9, 9, 1]]
    recs = [(c, u, str(v)) for c, row in enumerate(coders) for u, v in enumerate(row)]
    matrix, _, _, cats = to_matrix(recs)
    numeric = np.array(coders, dtype=float)
    theirs = krippendorff.alpha(reliability_data=numeric, level_of_measurement="ordinal")
    assert krippendorff_alpha(matrix, "ordinal", [float(c) for c in cats]) == pytest.approx(theirs)


def test_to_matrix_refuses_unknown_labels_and_double_codes() -> None:
    with pytest.raises(InputError, match="'maybe'"):
        to_matrix([("a", 1, "maybe")], categories=["pos", "neg"])
    with pytest.raises(InputError, match="more than once"):
        to_matrix([("a", 1, "pos"), ("a", 1, "neg")])


# -- bootstrap ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
def test_alpha_fast_path_equals_recomputing_each_replicate(level: Level) -> None:
    codes = _random_codes(np.random.default_rng(7), 3, 60, 4, missing=0.2)
    stat = Alpha(level, values=[1.0, 2.0, 4.0, 8.0])
    fast = bootstrap(codes, stat, n=50, seed=3)
    slow = bootstrap(codes, lambda m: stat(m), n=50, seed=3)
    np.testing.assert_allclose(fast.replicates, slow.replicates, atol=1e-12)
    assert fast.estimate == slow.estimate == krippendorff_alpha(codes, level, [1.0, 2.0, 4.0, 8.0])


def test_bootstrap_is_seeded_and_brackets_the_estimate() -> None:
    codes = _random_codes(np.random.default_rng(11), 3, 300, 3, missing=0.1)
    a = bootstrap(codes, Alpha(), n=200, seed=5)
    assert np.array_equal(a.replicates, bootstrap(codes, Alpha(), n=200, seed=5).replicates)
    assert not np.array_equal(a.replicates, bootstrap(codes, Alpha(), n=200, seed=6).replicates)
    assert a.low < a.estimate < a.high
    assert a.replicates.shape == (200,)
    narrow = bootstrap(codes, Alpha(), n=200, seed=5, ci=0.5)
    assert a.low < narrow.low < narrow.high < a.high
    # more units -> a narrower interval
    wide = bootstrap(codes[:, :60], Alpha(), n=200, seed=5)
    assert (wide.high - wide.low) > (a.high - a.low)


def test_bootstrap_any_statistic_and_nan_replicates() -> None:
    codes = _random_codes(np.random.default_rng(2), 2, 100, 3, missing=0.0)
    res = bootstrap(codes, lambda m: cohen_kappa(m[0], m[1]), n=100, seed=0)
    assert res.estimate == pytest.approx(cohen_kappa_score(codes[0], codes[1]))
    assert res.low <= res.estimate <= res.high
    # one disagreeing unit among many identical ones: some replicates have no variation (NaN), not the interval
    flat = np.zeros((2, 8))
    flat[1, 0] = 1
    res = bootstrap(flat, Alpha(), n=200, seed=0)
    assert np.isnan(res.replicates).any() and np.isfinite(res.low) and np.isfinite(res.high)


def test_paired_difference() -> None:
    rng = np.random.default_rng(4)
    truth = rng.integers(0, 3, 400).astype(float)
    noisy = lambda p: np.where(rng.random(400) < p, rng.integers(0, 3, 400), truth)  # noqa: E731
    codes = np.vstack([noisy(0.1), noisy(0.1), noisy(0.15), noisy(0.6)])  # two humans, good run, poor run
    good, poor = Alpha(rows=[0, 1, 2]), Alpha(rows=[0, 1, 3])
    res = paired_bootstrap_difference(codes, good, poor, n=300, seed=1)
    assert res.difference == pytest.approx(good(codes) - poor(codes))
    assert 0 < res.low < res.difference < res.high and res.share_le_zero == 0.0
    reverse = paired_bootstrap_difference(codes, poor, good, n=300, seed=1)
    assert reverse.share_le_zero == 1.0
    np.testing.assert_allclose(reverse.replicates, -res.replicates)
    same = paired_bootstrap_difference(codes, good, lambda m: good(m), n=50, seed=1)
    assert np.allclose(same.replicates, 0) and same.share_le_zero == 1.0
