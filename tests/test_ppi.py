"""Prediction-powered inference (annotator.stats.ppi) against ppi_py on the same seeded inputs, design
weights, differences between groups, the user's errors, coverage by simulation, and gold planning."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from annotator.stats.errors import DataError
from annotator.stats.gold_planning import gold_needed_for_width, units_for_alpha_width
from annotator.stats.ppi import (
    Estimate,
    classical_logistic,
    classical_ols,
    classical_share,
    difference,
    indicator,
    measured_bias,
    naive_share,
    ppi_logistic,
    ppi_ols,
    ppi_share,
)
from annotator.stats.reliability import Alpha, bootstrap

TOL = 1e-6
# ppi_py 0.2.3 passes penalty=None to scikit-learn's LogisticRegression, deprecated in scikit-learn 1.8
pytestmark = pytest.mark.filterwarnings("ignore:'penalty' was deprecated:FutureWarning")


def _llm(y: np.ndarray, rng: np.random.Generator, sens: float = 0.95, spec: float = 0.81) -> np.ndarray:
    """An LLM with class-dependent errors, biased towards label 1 (85% accurate at a share of 0.3)."""
    return np.where(y == 1, rng.random(y.size) < sens, rng.random(y.size) < 1 - spec).astype(float)


def _regression_data(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = rng.normal(size=(n, 2))
    y = (rng.random(n) < 1 / (1 + np.exp(-(0.3 + x @ np.array([0.8, -0.5]))))).astype(float)
    return x, y, _llm(y, rng, 0.9, 0.85)


@pytest.fixture(scope="module")
def shares() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(20240501)
    y = (rng.random(300) < 0.3).astype(float)
    y_u = (rng.random(5000) < 0.3).astype(float)
    return y, _llm(y, rng), _llm(y_u, rng)


@pytest.fixture(scope="module")
def regression() -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(7)
    x, y, yhat = _regression_data(400, rng)
    xu, _, yhat_u = _regression_data(4000, rng)
    return x, y, yhat, xu, yhat_u, rng.uniform(0.5, 3.0, size=400)


def _add_one(x: np.ndarray) -> np.ndarray:
    return np.column_stack([np.ones(x.shape[0]), x])


def _bounds(result: list[Estimate]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lower, upper, estimate = (
        np.array([getattr(e, f) for e in result]) for f in ("lower", "upper", "estimate")
    )
    return lower, upper, estimate


# -- against ppi_py ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("lam", [None, 1.0, 0.4, 0.0])
@pytest.mark.parametrize("alpha", [0.05, 0.1])
def test_ppi_share_equals_ppi_py(shares, lam, alpha) -> None:
    ppi_py = pytest.importorskip("ppi_py")
    y, yhat, yhat_u = shares
    ours = ppi_share(y, yhat, yhat_u, alpha=alpha, lam=lam)
    lo, hi = ppi_py.ppi_mean_ci(y, yhat, yhat_u, alpha=alpha, lam=lam)
    point = ppi_py.ppi_mean_pointestimate(y, yhat, yhat_u, lam=lam)
    assert ours.lower == pytest.approx(float(np.squeeze(lo)), abs=TOL)
    assert ours.upper == pytest.approx(float(np.squeeze(hi)), abs=TOL)
    assert ours.estimate == pytest.approx(float(np.squeeze(point)), abs=TOL)
    assert ours.method == ("ppi++" if lam is None else "ppi") and ours.corrected
    if lam is None:
        assert ours.lam is not None and 0 < ours.lam < 1  # tuned, and the LLM is informative here


def test_classical_and_naive_share_equal_ppi_py(shares) -> None:
    ppi_py = pytest.importorskip("ppi_py")
    y, _, yhat_u = shares
    for ours, data in ((classical_share(y, alpha=0.1), y), (naive_share(yhat_u, alpha=0.1), yhat_u)):
        lo, hi = ppi_py.classical_mean_ci(data, alpha=0.1)
        assert (ours.lower, ours.upper) == pytest.approx((lo, hi), abs=TOL)
    assert not naive_share(yhat_u).corrected and naive_share(yhat_u).method == "llm_only"


@pytest.mark.slow  # ppi_py compiles its regression helpers with numba on first use (about 10 s)
@pytest.mark.parametrize("lam", [None, 1.0, 0.3, 0.0])
def test_ppi_ols_and_logistic_equal_ppi_py(regression, lam) -> None:
    ppi_py = pytest.importorskip("ppi_py")
    x, y, yhat, xu, yhat_u, _ = regression
    for ours_fn, theirs_fn in ((ppi_ols, ppi_py.ppi_ols_ci), (ppi_logistic, ppi_py.ppi_logistic_ci)):
        lo, hi, est = _bounds(ours_fn(x, y, yhat, xu, yhat_u, alpha=0.1, lam=lam))
        t_lo, t_hi = theirs_fn(_add_one(x), y, yhat, _add_one(xu), yhat_u, alpha=0.1, lam=lam)
        np.testing.assert_allclose(lo, t_lo, atol=TOL, rtol=0)
        np.testing.assert_allclose(hi, t_hi, atol=TOL, rtol=0)
        np.testing.assert_allclose(est, (t_lo + t_hi) / 2, atol=TOL, rtol=0)
    if lam is not None:  # with lam fixed ppi_py's point estimate is the interval's centre too
        point = ppi_py.ppi_ols_pointestimate(_add_one(x), y, yhat, _add_one(xu), yhat_u, lam=lam)
        np.testing.assert_allclose(_bounds(ppi_ols(x, y, yhat, xu, yhat_u, lam=lam))[2], point, atol=TOL)


def test_classical_regressions_equal_ppi_py(regression) -> None:
    ppi_py = pytest.importorskip("ppi_py")
    x, y, *_ = regression
    for ours_fn, theirs_fn in (
        (classical_ols, ppi_py.classical_ols_ci),
        (classical_logistic, ppi_py.classical_logistic_ci),
    ):
        lo, hi, _ = _bounds(ours_fn(x, y, alpha=0.1))
        t_lo, t_hi = theirs_fn(_add_one(x), y, alpha=0.1)
        np.testing.assert_allclose(np.r_[lo, hi], np.r_[t_lo, t_hi], atol=TOL, rtol=0)
        assert [e.term for e in ours_fn(x, y, names=["age", "left"])] == ["intercept", "age", "left"]


@pytest.mark.slow  # ppi_py compiles its regression helpers with numba on first use (about 10 s)
def test_weighted_regressions_equal_ppi_py_weights(regression) -> None:
    ppi_py = pytest.importorskip("ppi_py")
    x, y, yhat, xu, yhat_u, w = regression
    for ours_fn, theirs_fn in ((ppi_ols, ppi_py.ppi_ols_ci), (ppi_logistic, ppi_py.ppi_logistic_ci)):
        lo, hi, _ = _bounds(ours_fn(x, y, yhat, xu, yhat_u, alpha=0.1, weights=w))
        t_lo, t_hi = theirs_fn(_add_one(x), y, yhat, _add_one(xu), yhat_u, alpha=0.1, w=w)
        np.testing.assert_allclose(np.r_[lo, hi], np.r_[t_lo, t_hi], atol=TOL, rtol=0)
    lo, hi, _ = _bounds(classical_ols(x, y, alpha=0.1, weights=w))
    t_lo, t_hi = ppi_py.classical_ols_ci(_add_one(x), y, w=w, alpha=0.1)
    np.testing.assert_allclose(np.r_[lo, hi], np.r_[t_lo, t_hi], atol=TOL, rtol=0)


# -- design weights, differences, results -------------------------------------------------------------------


def test_equal_weights_equal_no_weights(shares, regression) -> None:
    y, yhat, yhat_u = shares
    same = np.full(y.size, 3.7)
    assert ppi_share(y, yhat, yhat_u, weights=same) == ppi_share(y, yhat, yhat_u)
    assert classical_share(y, weights=same) == classical_share(y)
    assert measured_bias(y, yhat, weights=same) == measured_bias(y, yhat)
    x, yr, yhr, xu, yhu, _ = regression
    assert ppi_ols(x, yr, yhr, xu, yhu, weights=np.ones(yr.size)) == ppi_ols(x, yr, yhr, xu, yhu)


def test_weighted_share_is_the_hajek_estimate(shares) -> None:
    y, yhat, yhat_u = shares
    w = np.where(yhat == 1, 1.0, 3.0)
    est = classical_share(y, weights=w)
    wn = w / w.mean()
    assert est.estimate == pytest.approx(np.sum(w * y) / np.sum(w))
    assert est.se == pytest.approx(math.sqrt(np.mean((wn * (y - est.estimate)) ** 2) / y.size))
    fixed = ppi_share(y, yhat, yhat_u, lam=1.0, weights=w)
    assert fixed.estimate == pytest.approx(yhat_u.mean() + np.sum(w * (y - yhat)) / np.sum(w))
    tuned = ppi_share(y, yhat, yhat_u, weights=w)
    assert fixed.method == "ppi_weighted" and tuned.method == "ppi++_weighted"
    assert tuned.lam is not None and 0 <= tuned.lam <= 1


def test_weights_correct_a_stratified_gold_sample() -> None:
    """Gold oversamples the documents the LLM calls 1 (150 + 150 of 20,000): weighted figures cover the
    true share, unweighted ones are biased."""
    rng = np.random.default_rng(11)
    y = (rng.random(20_000) < 0.3).astype(float)
    yhat = _llm(y, rng)
    truth, strata = y.mean(), [np.flatnonzero(yhat == k) for k in (0, 1)]
    hits = {"ppi_w": 0, "gold_w": 0, "gold": 0}
    for _ in range(150):
        idx = np.concatenate([rng.choice(s, 150, replace=False) for s in strata])
        w = np.concatenate([np.full(150, s.size / 150) for s in strata])
        for key, est in (
            ("ppi_w", ppi_share(y[idx], yhat[idx], yhat, weights=w)),
            ("gold_w", classical_share(y[idx], weights=w)),
            ("gold", classical_share(y[idx])),
        ):
            hits[key] += est.lower <= truth <= est.upper
    assert hits["ppi_w"] / 150 >= 0.9 and hits["gold_w"] / 150 >= 0.9
    assert hits["gold"] / 150 < 0.5


def test_difference_between_groups(shares) -> None:
    y, yhat, yhat_u = shares
    a = ppi_share(y[:150], yhat[:150], yhat_u[:2500])
    b = ppi_share(y[150:], yhat[150:], yhat_u[2500:])
    d = difference(a, b)
    se = math.sqrt(a.se**2 + b.se**2)
    assert d.estimate == pytest.approx(a.estimate - b.estimate) and d.se == pytest.approx(se)
    assert d.upper - d.estimate == pytest.approx(1.959963984540054 * se)
    assert (d.n_gold, d.n_unlabeled, d.method) == (300, 5000, "difference of ppi++")
    with pytest.raises(DataError, match="estimate both groups the same way"):
        difference(a, classical_share(y[150:]))
    with pytest.raises(DataError, match="estimate both groups the same way"):
        difference(a, ppi_share(y[150:], yhat[150:], yhat_u[2500:], alpha=0.1))


def test_measured_bias_and_result_dict(shares) -> None:
    y, yhat, _ = shares
    bias = measured_bias(y, yhat)
    assert bias.estimate == pytest.approx(np.mean(yhat - y)) and bias.estimate > 0  # biased towards 1
    assert bias.se == pytest.approx(np.std(yhat - y) / math.sqrt(y.size))
    row = Estimate(math.nan, 0.1, 0.2, math.inf, 3, 4, "ppi", 0.5, True).to_dict()
    assert row["estimate"] is None and row["se"] is None and row["lam"] == 0.5
    assert set(json.loads(json.dumps(ppi_share(*shares).to_dict()))) >= {
        "estimate", "lower", "upper", "n_gold", "n_unlabeled", "method", "lam", "corrected",
    }  # fmt: skip


def test_lam_zero_is_gold_only_and_a_constant_llm_gets_lam_zero(shares) -> None:
    y, yhat, yhat_u = shares
    zero = ppi_share(y, yhat, yhat_u, lam=0.0)
    gold = classical_share(y)
    assert (zero.estimate, zero.lower, zero.upper) == pytest.approx((gold.estimate, gold.lower, gold.upper))
    flat = ppi_share(y, np.zeros(y.size), np.zeros(yhat_u.size))
    assert flat.lam == 0.0 and flat.estimate == pytest.approx(y.mean())


# -- the user's errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: classical_share([]), r"no items \(n = 0\)"),
        (lambda: classical_share([1]), r"only 1 item \(n = 1\)"),
        (lambda: ppi_share([1, 0], [1, 0], [1]), r"yhat_unlabeled .*only 1 item"),
        (lambda: classical_share([0, 1, 2]), r"y_gold .*\[2\] is 2; every value must be 0 or 1"),
        (lambda: classical_share([0, 0, 0]), r"the label never appears among the 3 items \(n = 3\)"),
        (lambda: ppi_share([1, 1], [1, 0], [0, 1]), "the label is on every one of the 2 items"),
        (lambda: classical_share([0, 1, math.nan]), r"\[2\] is nan"),
        (lambda: ppi_share([0, 1, 1], [0, 1], [0, 1, 0]), "same items as the gold codes: 2 vs 3 values"),
        (lambda: ppi_share([0, 1, 1], [0, 1, 1.5], [0, 1, 0]), "between 0 and 1"),
        (lambda: classical_share([0, 1, 1], weights=[1, 0, 2]), "positive"),
        (lambda: classical_share([0, 1, 1], weights=[1, 2]), "2 weights for 3 items"),
        (lambda: classical_share([0, 1, 1], alpha=5), "alpha"),
        (
            lambda: indicator(["econ", "moral"], "economy"),
            r"'economy' is not one of \['econ', 'moral'\] \(2 labels\)",
        ),
        (lambda: indicator(["econ", None], "econ"), "1 of 2 labels are missing"),
        (lambda: classical_ols(np.c_[np.arange(9.0), np.arange(9.0)], np.arange(9.0)), "collinear"),
        (lambda: classical_ols(np.arange(2.0), np.arange(2.0)), "2 gold items cannot fit 2 coefficients"),
        (lambda: classical_ols(np.arange(6.0), np.arange(6.0), names=["a", "b"]), "name each of the 1"),
        (lambda: classical_ols([[1.0], [math.nan], [2.0]], [1, 2, 3]), "missing or infinite"),
        (lambda: classical_logistic(np.arange(8.0), np.r_[0, 0, 0, 0, 1, 1, 1, 1]), "separate the gold"),
    ],
)
def test_data_errors(call, message) -> None:
    with pytest.raises(DataError, match=message):
        call()


def test_indicator() -> None:
    assert indicator(["econ", "moral", "econ"], "econ").tolist() == [1.0, 0.0, 1.0]
    assert indicator(["moral"], "econ", categories=["econ", "moral"]).tolist() == [0.0]


# -- coverage ---------------------------------------------------------------------------------------------


def test_coverage_ppi_holds_llm_only_does_not() -> None:
    """20,000 documents, share 0.3, an LLM 85% accurate and biased towards 1, 200 gold samples of 300."""
    rng = np.random.default_rng(2024)
    y = (rng.random(20_000) < 0.3).astype(float)
    yhat = _llm(y, rng)
    truth, reps = y.mean(), 200
    naive = naive_share(yhat)
    covered = {"ppi": 0, "gold": 0}
    widths: dict[str, list[float]] = {"ppi": [], "gold": []}
    for _ in range(reps):
        idx = rng.choice(y.size, 300, replace=False)
        for key, est in (("ppi", ppi_share(y[idx], yhat[idx], yhat)), ("gold", classical_share(y[idx]))):
            covered[key] += est.lower <= truth <= est.upper
            widths[key].append(est.upper - est.lower)
    assert 0.90 <= covered["ppi"] / reps <= 0.98
    assert not naive.lower <= truth <= naive.upper  # the LLM alone: coverage 0 < 0.80
    assert np.mean(widths["ppi"]) < np.mean(widths["gold"])


# -- planning ---------------------------------------------------------------------------------------------


def test_planned_gold_n_gives_the_target_width() -> None:
    rng = np.random.default_rng(5)
    y = (rng.random(20_000) < 0.3).astype(float)
    yhat = _llm(y, rng)
    pilot = rng.choice(y.size, 300, replace=False)
    plan = gold_needed_for_width(y[pilot], yhat[pilot], y.size, target_width=0.06)
    p = y[pilot].mean()
    assert plan.n_gold_only == math.ceil(4 * 1.959963984540054**2 * p * (1 - p) / 0.06**2)
    assert plan.n_gold < plan.n_gold_only / 1.5 and 0 < plan.lam <= 1
    widths = []
    for _ in range(100):
        idx = rng.choice(y.size, plan.n_gold, replace=False)
        est = ppi_share(y[idx], yhat[idx], yhat)
        widths.append(est.upper - est.lower)
    assert np.mean(widths) == pytest.approx(0.06, rel=0.10)
    with pytest.raises(DataError, match=r"the label never appears among the 5 items \(n = 5\)"):
        gold_needed_for_width([0] * 5, [0, 1, 0, 1, 0], 1000, 0.05)


def _coders(units: int, rng: np.random.Generator) -> np.ndarray:
    """3 coders; each copies a unit's true category (of 3) 75% of the time and guesses otherwise."""
    truth = rng.integers(0, 3, units)
    return np.where(rng.random((3, units)) < 0.75, truth, rng.integers(0, 3, (3, units))).astype(float)


def test_planned_units_give_the_target_alpha_width() -> None:
    rng = np.random.default_rng(8)
    plan = units_for_alpha_width(_coders(120, rng), target_width=0.1, seed=3)
    assert plan.units > plan.pilot_units and plan.pilot_width > 0.1
    assert plan == units_for_alpha_width(_coders(120, np.random.default_rng(8)), target_width=0.1, seed=3)
    widths = [bootstrap(_coders(plan.units, rng), Alpha(), n=500, seed=i) for i in range(10)]
    assert np.mean([b.high - b.low for b in widths]) == pytest.approx(0.1, rel=0.15)
    with pytest.raises(DataError, match="does not vary"):
        units_for_alpha_width(np.tile(np.arange(20.0) % 3, (2, 1)), target_width=0.1)
