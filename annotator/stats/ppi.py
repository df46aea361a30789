"""Prediction-powered inference: bias-corrected estimates from LLM labels checked against a gold sample.

Humans code a random sample of documents (the gold items: gold codes ``y``, the LLM's labels ``yhat`` on
them); the LLM labels the corpus (``yhat_u``, N labels: every document's, the gold ones included; the
estimand is the figure in that corpus). Intervals are two-sided, normal (CLT), level 1 - alpha:

- gold only (``classical_*``): valid and wide; ``naive_share``: the LLM's labels alone, NOT corrected, an
  interval that ignores the LLM's errors (``corrected=False``); ``measured_bias``: mean(yhat - y) on gold.
- PPI / PPI++ (``ppi_*``): Angelopoulos, Bates, Fannjiang, Jordan & Zrnic (2023), "Prediction-powered
  inference", Science 382:669; Angelopoulos, Duchi & Zrnic (2024), "PPI++", arXiv:2311.01453. A share::

      theta = lam * mean(yhat_u) + mean(y - lam * yhat)
      se^2  = lam^2 var(yhat_u) / N + var(y - lam * yhat) / n        (variances with divisor N, n)

  lam = 1 is PPI, lam = 0 gold only; ``lam=None`` tunes it (PPI++): lam = cov(y, yhat) / ((1 + n/N)
  var(yhat pooled with yhat_u)) clipped to [0, 1] (0 if the LLM gives one label throughout).
- Regressions (PPI++ for M-estimators): theta minimises lam L_u(theta; yhat_u) + L(theta; y) -
  lam L(theta; yhat) (squared or logistic loss); Sigma = H^-1 (n/N Cov(lam g_u) + Cov(g - lam g^)) H^-1,
  se_j = sqrt(Sigma_jj / n), g, g^, g_u the per-item loss gradients with y, yhat, yhat_u, H the Hessian
  pooled over gold and corpus. Tuned lam = tr(H^-1 C H^-1) / (2 (1 + n/N) tr(H^-1 V H^-1)), C = Cov(g, g^)
  + Cov(g^, g), V the pooled Cov(g^); as in ppi_py it is tuned at PPI's theta, then at that lam's theta.
  Gold only: OLS with HC0 errors, logistic with the sandwich (Cov(g), divisor n - 1).

Without weights every figure equals ppi_py 0.2.3's (``ppi_mean_ci``, ``ppi_ols_ci``, ``ppi_logistic_ci``,
``classical_*_ci``); tests/test_ppi.py holds them to 1e-6.

Design weights (``weights=``: w_i proportional to 1/pi_i, gold item i's inclusion probability) serve gold
samples drawn with unequal known probabilities (stratified by party or by the LLM's label, one stratum
oversampled), as DSL does (Egami, Hinck, Stewart & Wei 2023, NeurIPS). A share's gold side becomes the
Hajek mean r_w = sum w_i r_i / sum w_i of r = y - lam yhat, variance mean((w~_i (r_i - r_w))^2) / n, w~ =
w / mean(w); tuned lam = S(y, yhat) / (S(yhat, yhat) + n/N var(yhat_u)), S the w~^2-weighted covariances.
Assumed: (1) each pi_i > 0 is known, the probability the sample was drawn with; (2) gold items count as
independent draws (no finite-population correction, no credit for stratification: conservative for
stratified samples); (3) the LLM labels cover the corpus, unweighted. Equal weights give the unweighted
figures. (ppi_py's weighted mean takes the spread of w_i r_i, which moves when y is shifted.) Regressions
take ``weights`` as ppi_py's ``w``: weighted losses and gradients.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from annotator.stats.errors import DataError

Array = NDArray[np.float64]
SEPARATED = "the logistic fit does not converge: the covariates separate the gold codes perfectly"


@dataclass(frozen=True)
class Estimate:
    """One figure with its interval. ``method``: gold_only, llm_only, llm_bias, ppi (lam given), ppi++ (lam
    tuned), + "_weighted" with design weights; "difference of <method>" for two groups. ``corrected`` is
    False only for the LLM's labels as they are. ``term``: the coefficient's name (regressions)."""

    estimate: float
    lower: float
    upper: float
    se: float
    n_gold: int
    n_unlabeled: int
    method: str
    lam: float | None
    corrected: bool
    alpha: float = 0.05
    term: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: NaN and infinities become None."""
        return {
            k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in asdict(self).items()
        }


def _z(alpha: float) -> float:
    if not 0 < alpha < 1:
        raise DataError(f"alpha (the error level) must be between 0 and 1, e.g. 0.05 for 95%; got {alpha}")
    from scipy.stats import norm

    return float(norm.ppf(1 - alpha / 2))


def _vector(
    values: ArrayLike, name: str, kind: Literal["binary", "unit", "real"], like: Array | None = None
) -> Array:
    """A finite 1-D float array (as long as ``like``); "binary": 0/1 codes, "unit": in [0, 1] (probabilities)."""
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise DataError(f"{name} must be one value per document (1-D), got shape {arr.shape}")
    if like is not None and arr.size != like.size:
        raise DataError(
            f"{name} must describe the same items as the gold codes: {arr.size} vs {like.size} values"
        )
    if arr.size < 2:
        what = "no items" if arr.size == 0 else f"only {arr.size} item"
        raise DataError(f"{name} has {what} (n = {arr.size}); the figure needs at least 2")
    bad = ~np.isfinite(arr)
    if kind == "binary":
        bad |= (arr != 0) & (arr != 1)
    elif kind == "unit":
        bad |= (arr < 0) | (arr > 1)
    if bad.any():
        i = int(np.argmax(bad))
        want = {"binary": "0 or 1 (1 = has the label)", "unit": "between 0 and 1", "real": "a number"}[kind]
        raise DataError(f"{name}[{i}] is {arr[i]:g}; every value must be {want} (missing codes: leave out)")
    if kind == "binary" and arr.min() == arr.max():
        seen = "never appears among" if arr[0] == 0 else "is on every one of"
        raise DataError(
            f"{name}: the label {seen} the {arr.size} items (n = {arr.size}); the figure needs "
            "items with and without it: code more documents (or oversample, with weights)"
        )
    return arr


def _weights(weights: ArrayLike | None, n: int) -> Array | None:
    """Design weights scaled to mean 1; None when absent or all equal (a simple random sample)."""
    if weights is None:
        return None
    w = np.asarray(weights, dtype=float)
    if w.shape != (n,):
        raise DataError(f"weights must give one weight per gold item: {w.size} weights for {n} items")
    if not np.all(np.isfinite(w) & (w > 0)):
        raise DataError("weights must be positive numbers (1 / the item's inclusion probability)")
    return None if np.allclose(w, w[0], rtol=1e-12, atol=0) else w / w.mean()


def indicator(labels: Sequence[str | None], label: str, categories: Sequence[str] | None = None) -> Array:
    """1.0 where a document's label is ``label``, else 0.0: the binary indicator whose share is estimated.

    ``label`` must be one of ``categories`` (default: the labels present), so a misspelt label is an error,
    not a share of 0. A missing label (None) is an error: leave uncoded gold items out, and map the LLM's
    invalid answers to a label first (PPI stays valid either way: the gold items measure that error too).
    """
    known = set(categories) if categories is not None else {lab for lab in labels if lab is not None}
    if label not in known:
        raise DataError(
            f"label {label!r} is not one of {sorted(known)} ({len(labels)} labels); check its spelling"
        )
    if (missing := sum(lab is None for lab in labels)) > 0:
        raise DataError(f"{missing} of {len(labels)} labels are missing; leave those documents out")
    return np.array([lab == label for lab in labels], dtype=float)


def _mean_se(values: Array, w: Array | None) -> tuple[float, float]:
    """The (Hajek-weighted) mean and its standard error (divisor n, as ppi_py)."""
    if w is None:
        return float(values.mean()), float(values.std() / math.sqrt(values.size))
    mean = float(np.mean(w * values))
    return mean, float(math.sqrt(np.mean((w * (values - mean)) ** 2) / values.size))


def _result(
    point: float,
    se: float,
    alpha: float,
    n_gold: int,
    n_unlabeled: int,
    method: str,
    lam: float | None = None,
    corrected: bool = True,
    term: str | None = None,
) -> Estimate:
    z = _z(alpha)
    return Estimate(
        point, point - z * se, point + z * se, se, n_gold, n_unlabeled, method, lam, corrected, alpha, term
    )


def _suffix(w: Array | None) -> str:
    return "" if w is None else "_weighted"


def classical_share(y_gold: ArrayLike, alpha: float = 0.05, weights: ArrayLike | None = None) -> Estimate:
    """The share from the gold codes alone: mean(y) -/+ z sd(y) / sqrt(n) (Wald, sd with divisor n), as
    ppi_py's ``classical_mean_ci``; ``weights``: the Hajek mean and its linearised variance (module
    docstring). No Wilson interval here (Wald is what PPI and ppi_py are compared with); for a gold
    proportion near 0 or 1 at small n, ``annotator.stats.intervals.wilson`` gives one."""
    y = _vector(y_gold, "y_gold (gold codes)", "binary")
    w = _weights(weights, y.size)
    point, se = _mean_se(y, w)
    return _result(point, se, alpha, y.size, 0, "gold_only" + _suffix(w))


def naive_share(yhat_all: ArrayLike, alpha: float = 0.05) -> Estimate:
    """The share in the LLM's labels, taken as they are: NOT bias-corrected. Its interval
    mean -/+ z sd / sqrt(N) only counts sampling noise, never the LLM's errors (``corrected=False``): with a
    biased LLM it misses the true share however many documents there are."""
    yhat = _vector(yhat_all, "yhat_all (LLM labels)", "unit")
    point, se = _mean_se(yhat, None)
    return _result(point, se, alpha, 0, yhat.size, "llm_only", corrected=False)


def measured_bias(
    y_gold: ArrayLike, yhat_gold: ArrayLike, alpha: float = 0.05, weights: ArrayLike | None = None
) -> Estimate:
    """The LLM's bias on the gold items, mean(yhat - y), with its Wald interval: how far the LLM's share
    would be off (positive: the LLM overstates the label). ``weights`` as in `classical_share`."""
    y = _vector(y_gold, "y_gold (gold codes)", "binary")
    yhat = _vector(yhat_gold, "yhat_gold (LLM labels on the gold items)", "unit", y)
    w = _weights(weights, y.size)
    point, se = _mean_se(yhat - y, w)
    return _result(point, se, alpha, y.size, 0, "llm_bias" + _suffix(w))


def _share_lambda(y: Array, yhat: Array, yhat_u: Array, w: Array | None) -> float:
    n, big_n = y.size, yhat_u.size
    if w is None:  # ppi_py's _calc_lam_glm for the mean: covariance /n, pooled variance /(n + N - 1)
        cov = float(np.mean((y - y.mean()) * (yhat - yhat.mean())))
        var = float(np.var(np.concatenate([yhat, yhat_u]), ddof=1)) * (1 + n / big_n)
    else:
        yc, hc = y - np.mean(w * y), yhat - np.mean(w * yhat)
        cov = float(np.mean(w**2 * yc * hc))
        var = float(np.mean(w**2 * hc**2)) + n / big_n * float(np.var(yhat_u))
    return float(np.clip(cov / var, 0.0, 1.0)) if var > 0 else 0.0


def ppi_share(
    y_gold: ArrayLike,
    yhat_gold: ArrayLike,
    yhat_unlabeled: ArrayLike,
    alpha: float = 0.05,
    lam: float | None = None,
    weights: ArrayLike | None = None,
) -> Estimate:
    """The share, bias-corrected by PPI++ (formulas in the module docstring). ``lam=None`` tunes lam (PPI++,
    clipped to [0, 1]); ``lam=1`` is plain PPI. The point and interval equal ppi_py's
    ``ppi_mean_pointestimate`` / ``ppi_mean_ci`` (two-sided) without weights. ``yhat`` may be the LLM's
    labels (0/1) or its probabilities of the label."""
    y = _vector(y_gold, "y_gold (gold codes)", "binary")
    yhat = _vector(yhat_gold, "yhat_gold (LLM labels on the gold items)", "unit", y)
    yhat_u = _vector(yhat_unlabeled, "yhat_unlabeled (LLM labels on the corpus)", "unit")
    w = _weights(weights, y.size)
    tuned = lam is None
    lam = _share_lambda(y, yhat, yhat_u, w) if lam is None else float(lam)
    rect, rect_se = _mean_se(y - lam * yhat, w)
    point = lam * float(yhat_u.mean()) + rect
    se = math.sqrt((lam * float(yhat_u.std())) ** 2 / yhat_u.size + rect_se**2)
    return _result(point, se, alpha, y.size, yhat_u.size, ("ppi++" if tuned else "ppi") + _suffix(w), lam)


def difference(a: Estimate, b: Estimate) -> Estimate:
    """a - b for two independent groups (e.g. party A's share minus party B's), each estimated by the same
    method at the same alpha: se = sqrt(se_a^2 + se_b^2), a normal interval (Wald, whatever each group's
    interval was). Independent: the groups' documents are disjoint and each group's gold items were drawn
    within it (a sample stratified by group; a simple random sample split by group also qualifies)."""
    if a.method != b.method or a.alpha != b.alpha:
        raise DataError(
            f"estimate both groups the same way: {a.method} at alpha {a.alpha} vs {b.method} at {b.alpha}"
        )
    method, se, ok = f"difference of {a.method}", math.hypot(a.se, b.se), a.corrected and b.corrected
    n_gold, n_u = a.n_gold + b.n_gold, a.n_unlabeled + b.n_unlabeled
    return _result(a.estimate - b.estimate, se, a.alpha, n_gold, n_u, method, corrected=ok)


def _design(x: ArrayLike, name: str, rows: int, add_intercept: bool) -> Array:
    arr = np.asarray(x, dtype=float)
    arr = arr[:, None] if arr.ndim == 1 else arr
    if arr.ndim != 2 or arr.shape[0] != rows:
        raise DataError(f"{name} must have one row per document ({rows}), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise DataError(f"{name} holds missing or infinite values; drop or fill those documents")
    return np.column_stack([np.ones(rows), arr]) if add_intercept else arr


def _terms(names: Sequence[str] | None, d: int, add_intercept: bool) -> list[str]:
    given = list(names) if names is not None else [f"x{j}" for j in range(1, d + 1 - add_intercept)]
    terms = ["intercept", *given] if add_intercept else given
    if len(terms) != d:
        raise DataError(f"names must name each of the {d - add_intercept} covariates, got {len(given)}")
    return terms


def _inv(h: Array, why: str = "the covariates are collinear (a column repeats or combines others)") -> Array:
    try:
        return np.linalg.inv(h).astype(np.float64)
    except np.linalg.LinAlgError:
        raise DataError(why) from None


def _stats(theta: Array, data: tuple[Array, ...], logistic: bool, pooled: bool) -> tuple[Array, ...]:
    """Per-item loss gradients on gold (with y and yhat) and unlabeled items, and the inverse Hessian."""
    from scipy.special import expit

    x, y, yhat, xu, yhat_u, w = data
    n, big_n = y.size, yhat_u.size
    mu, mu_u = (expit(x @ theta), expit(xu @ theta)) if logistic else (x @ theta, xu @ theta)
    curv, curv_u = (mu * (1 - mu), mu_u * (1 - mu_u)) if logistic else (np.ones(n), np.ones(big_n))
    g, g_hat = (w * (mu - y))[:, None] * x, (w * (mu - yhat))[:, None] * x
    g_u = (mu_u - yhat_u)[:, None] * xu if pooled else np.zeros_like(xu)
    hess = (x.T * (w * curv)) @ x
    hess = (hess + (xu.T * curv_u) @ xu) / (n + big_n) if pooled else hess / n
    return g, g_hat, g_u, _inv(hess)


def _glm_lambda(g: Array, g_hat: Array, g_u: Array, inv_h: Array) -> float:
    """ppi_py's _calc_lam_glm (coord None, clip): the lam minimising the trace of the asymptotic covariance."""
    n, big_n, d = g.shape[0], g_u.shape[0], g.shape[1]
    gc, hc = g - g.mean(axis=0), g_hat - g_hat.mean(axis=0)
    cov = (gc.T @ hc + hc.T @ gc) / n
    var = np.cov(np.concatenate([g_hat, g_u]).T).reshape(d, d)
    denom = 2 * (1 + n / big_n) * np.trace(inv_h @ var @ inv_h)
    return float(np.clip(np.trace(inv_h @ cov @ inv_h) / denom, 0, 1)) if denom > 0 else 0.0


def _ols_point(data: tuple[Array, ...], lam: float) -> Array:
    x, y, yhat, xu, yhat_u, w = data
    sw = np.sqrt(w)[:, None]
    imputed = np.linalg.lstsq(xu, lam * yhat_u, rcond=None)[0]
    return imputed + np.linalg.lstsq(x * sw, (y - lam * yhat) * sw[:, 0], rcond=None)[0]


def _logistic_point(data: tuple[Array, ...], lam: float) -> Array:
    """Minimise the rectified logistic loss (convex for lam in [0, 1]) by damped Newton steps."""
    from scipy.special import expit

    x, y, yhat, xu, yhat_u, w = data
    n, big_n = y.size, yhat_u.size

    def loss(t: Array) -> float:
        eta, eta_u = x @ t, xu @ t
        gold = np.mean(w * ((1 - lam) * np.logaddexp(0, eta) - (y - lam * yhat) * eta))
        return float(gold + lam * np.mean(np.logaddexp(0, eta_u) - yhat_u * eta_u))

    theta = np.zeros(x.shape[1])
    for _ in range(100):
        mu, mu_u = expit(x @ theta), expit(xu @ theta)
        grad = x.T @ (w * ((1 - lam) * mu + lam * yhat - y)) / n + lam * xu.T @ (mu_u - yhat_u) / big_n
        s, s_u = w * (1 - lam) * mu * (1 - mu), lam * mu_u * (1 - mu_u)
        hess = (x.T * s) @ x / n + (xu.T * s_u) @ xu / big_n
        step, t, now = _inv(hess, SEPARATED) @ grad, 1.0, loss(theta)
        while loss(theta - t * step) > now + 1e-15 * max(1.0, abs(now)) and t > 1e-10:
            t /= 2
        theta = theta - t * step
        if np.max(np.abs(t * step)) < 1e-13 * max(1.0, float(np.max(np.abs(theta)))):
            break
    if not np.all(np.isfinite(theta)) or np.max(np.abs(theta)) > 30:
        raise DataError(SEPARATED)
    return theta


def _regression(data: tuple[Array, ...], lam: float | None, logistic: bool) -> tuple[Array, Array, float]:
    """ppi_py's ppi_{ols,logistic}_ci: lam tuned at PPI's theta, again at that lam's theta; the interval."""
    point = _logistic_point if logistic else _ols_point
    if lam is None:
        for _ in range(2):
            lam = _glm_lambda(*_stats(point(data, 1.0 if lam is None else lam), data, logistic, True))
    assert lam is not None
    theta = point(data, lam)
    g, g_hat, g_u, inv_h = _stats(theta, data, logistic, lam != 0)
    n, big_n, d = g.shape[0], g_u.shape[0], g.shape[1]
    var = np.cov((g - lam * g_hat).T).reshape(d, d) + n / big_n * np.cov((lam * g_u).T).reshape(d, d)
    return theta, np.sqrt(np.diag(inv_h @ var @ inv_h) / n), lam


def _fit(arrays: tuple, alpha: float, lam: float | None, logistic: bool, opts: tuple) -> list[Estimate]:
    weights, names, add_intercept = opts
    y = _vector(arrays[1], "y_gold (gold codes)", "binary" if logistic else "real")
    x = _design(arrays[0], "X_gold", y.size, add_intercept)
    classical = arrays[2] is None
    yhat = y if classical else _vector(arrays[2], "yhat_gold (LLM labels on the gold items)", "unit", y)
    yhat_u = yhat if classical else _vector(arrays[4], "yhat_unlabeled (LLM labels on the corpus)", "unit")
    xu = x if classical else _design(arrays[3], "X_unlabeled", yhat_u.size, add_intercept)
    if xu.shape[1] != x.shape[1] or y.size <= x.shape[1] or np.linalg.matrix_rank(x) < x.shape[1]:
        cols = f"{x.shape[1]} coefficients ({xu.shape[1]} columns in X_unlabeled)"
        raise DataError(f"{y.size} gold items cannot fit {cols}: too few items, or collinear columns")
    w = _weights(weights, y.size)
    data = (x, y, yhat, xu, yhat_u, np.ones(y.size) if w is None else w)
    if classical and not logistic:  # HC0, as ppi_py's classical_ols_ci (statsmodels' HC0_se)
        theta, bread = _ols_point(data, 0.0), _inv((x.T * data[5]) @ x)
        score = (data[5] * (y - x @ theta))[:, None] * x
        se, lam_used = np.sqrt(np.diag(bread @ score.T @ score @ bread)), None
    else:
        theta, se, lam_used = _regression(data, 0.0 if classical else lam, logistic)
    method = ("gold_only" if classical else "ppi++" if lam is None else "ppi") + _suffix(w)
    n_u, terms = 0 if classical else yhat_u.size, _terms(names, x.shape[1], add_intercept)
    return [
        _result(float(t), float(s), alpha, y.size, n_u, method, None if classical else lam_used, term=term)
        for t, s, term in zip(theta, se, terms, strict=True)
    ]


def ppi_ols(
    X_gold: ArrayLike,
    y_gold: ArrayLike,
    yhat_gold: ArrayLike,
    X_unlabeled: ArrayLike,
    yhat_unlabeled: ArrayLike,
    alpha: float = 0.05,
    lam: float | None = None,
    *,
    weights: ArrayLike | None = None,
    names: Sequence[str] | None = None,
    add_intercept: bool = True,
) -> list[Estimate]:
    """OLS coefficients of y on X by PPI++ (one `Estimate` per term; intercept first when ``add_intercept``);
    equal to ppi_py's ``ppi_ols_ci`` (and the interval's centre) on the same X. y may be any number."""
    arrays = (X_gold, y_gold, yhat_gold, X_unlabeled, yhat_unlabeled)
    return _fit(arrays, alpha, lam, False, (weights, names, add_intercept))


def ppi_logistic(
    X_gold: ArrayLike,
    y_gold: ArrayLike,
    yhat_gold: ArrayLike,
    X_unlabeled: ArrayLike,
    yhat_unlabeled: ArrayLike,
    alpha: float = 0.05,
    lam: float | None = None,
    *,
    weights: ArrayLike | None = None,
    names: Sequence[str] | None = None,
    add_intercept: bool = True,
) -> list[Estimate]:
    """Logistic-regression coefficients (log-odds of the label) by PPI++, as ppi_py's ``ppi_logistic_ci``;
    y is 0/1, yhat 0/1 or the LLM's probability."""
    arrays = (X_gold, y_gold, yhat_gold, X_unlabeled, yhat_unlabeled)
    return _fit(arrays, alpha, lam, True, (weights, names, add_intercept))


def classical_ols(
    X_gold: ArrayLike,
    y_gold: ArrayLike,
    alpha: float = 0.05,
    *,
    weights: ArrayLike | None = None,
    names: Sequence[str] | None = None,
    add_intercept: bool = True,
) -> list[Estimate]:
    """OLS on the gold items alone with HC0 (robust) standard errors, as ppi_py's ``classical_ols_ci``."""
    return _fit((X_gold, y_gold, None, None, None), alpha, 0.0, False, (weights, names, add_intercept))


def classical_logistic(
    X_gold: ArrayLike,
    y_gold: ArrayLike,
    alpha: float = 0.05,
    *,
    weights: ArrayLike | None = None,
    names: Sequence[str] | None = None,
    add_intercept: bool = True,
) -> list[Estimate]:
    """Logistic regression on the gold items alone (sandwich interval), as ppi_py's ``classical_logistic_ci``."""
    return _fit((X_gold, y_gold, None, None, None), alpha, 0.0, True, (weights, names, add_intercept))
