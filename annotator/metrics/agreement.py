"""`annotator agreement`: inter-coder reliability of the stored codes, humans and LLM runs alike.

Reads the codes of one codebook on one split into a coders x units matrix (`load_codes`) and reports, with
seeded unit-bootstrap intervals (see `annotator.metrics.reliability` for why units are resampled):

- human-human: Krippendorff's alpha, percent agreement, Fleiss' kappa, Gwet's AC1 and the mean pairwise
  Cohen's kappa among the human coders (plus any gold coder named with ``coders``: the reference group);
- each LLM or baseline run, and each repeat of it: (a) alpha of the humans plus the run, (b) Cohen's kappa
  between the run and the human majority label (plurality; tied units are left out and counted), (c) the
  mean of the run's pairwise kappas with each human, beside the humans' own mean pairwise kappa;
- within-run stability: alpha over the repeats of a run, when two or more are present;
- a pairwise kappa matrix of all coders;
- comparisons of runs (and repeats) with one another, when two or more are present: for each pair (A, B),
  A's mean pairwise kappa with each human minus B's, on the units both coded, with a paired bootstrap
  interval, the share of replicates <= 0 and a verdict (``compare`` limits this to one pair).

Every statistic of one call is computed on the same bootstrap draws of units, so intervals and the paired
difference "run vs humans minus human vs human" are consistent with one another.

A comparison's verdict: "A agrees more with the humans than B" when the interval of A minus B lies above
zero, "A agrees less with the humans than B" when it lies below, "no clear difference" otherwise.

The yardstick (Törnberg 2024) compares like with like: one coder against one coder. The run's mean pairwise
kappa with the humans (c) is set beside the humans' mean pairwise kappa. The rule:

- "above the human level" when the run's interval lies wholly above the human interval (low > human high);
- "reaches the human level" when the run's interval reaches the human point estimate (high >= human estimate);
- "below the human level" otherwise.

Kappas are unweighted for nominal data, linearly weighted for ``--level ordinal`` and quadratically weighted
for interval and ratio (distances between category positions in codebook order).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from annotator.errors import InputError
from annotator.metrics.reliability import (
    LEVELS,
    Alpha,
    alpha_report,
    cohen_kappa,
    fleiss_kappa,
    gwet_ac1,
    percent_agreement,
)
from annotator.project import Project
from annotator.registry import stored_codebook
from annotator.store.models import Annotation, CodebookVersion, Coder, Document, Metric, Run

Array = NDArray[np.float64]
SPLITS = ("dev", "test", "all")
REFERENCE_KINDS = ("human", "gold")
RUN_KINDS = ("llm", "baseline")
CI = 0.95
YARDSTICK_RULE = (
    "the run's mean pairwise kappa with the humans against the humans' mean pairwise kappa: 'above' when the "
    "run's interval lies above the human interval, 'reaches' when the run's upper bound reaches the human "
    "point estimate, 'below' otherwise"
)


INVALID_CATEGORY = "(invalid)"  # the category invalid answers become with --invalid-as-category


@dataclass
class CoderInfo:
    name: str
    kind: str  # human, gold, llm or baseline
    run_id: int | None = None  # LLM and baseline runs (humans may span several import runs)
    repeat: int | None = None
    model: str | None = None
    n_codes: int = 0  # valid codes in the matrix
    n_invalid: int = 0  # invalid or error answers (missing)
    n_uncertain: int = 0  # uncertain answers (missing, or a category)


@dataclass
class CodeMatrix:
    """Coders x units category indices (NaN: missing), with what the rows, columns and values are."""

    codes: Array
    coders: list[CoderInfo]
    units: list[int]  # document ids
    categories: list[str]
    codebook: str
    codebook_versions: list[int]
    split: str
    uncertain_label: str | None
    uncertain_as_category: bool
    values: list[float] = field(default_factory=list)
    invalid_as_category: bool = False  # each category's position on the codebook's scale

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.coders]

    @property
    def uncertain_note(self) -> str:
        if self.uncertain_label is None:
            return "the codebook has no uncertain label"
        how = "category" if self.uncertain_as_category else "missing"
        invalid = "a category" if self.invalid_as_category else "missing"
        return f"uncertain ({self.uncertain_label!r}) treated as {how}; invalid answers treated as {invalid}"


def _coder_key(name: str) -> str:
    return name.strip()


def codes_query(*columns: Any) -> Any:
    """A select of ``columns`` over every annotation joined to its run, coder, codebook version and document."""
    return (
        sa_select(*columns)
        .join(Run, col(Run.id) == col(Annotation.run_id))
        .join(Coder, col(Coder.id) == col(Run.coder_id))
        .join(CodebookVersion, col(CodebookVersion.id) == col(Run.codebook_id))
        .join(Document, col(Document.id) == col(Annotation.document_id))
    )


def load_codes(
    session: Session,
    codebook_name: str,
    split: str,
    coders: list[str] | None = None,
    uncertain_as_category: bool = False,
    invalid_as_category: bool = False,
) -> CodeMatrix:
    """The codes of a codebook's coders on a split: humans by name, runs as ``run:N`` (repeat r > 0:
    ``run:N#r``), gold coders only when named. Invalid and error answers are missing; the uncertain label is
    missing unless ``uncertain_as_category``. Units nobody coded (after that) are left out."""
    if split not in SPLITS:
        raise InputError(f"--split {split!r}: use dev, test or all")
    versions = session.exec(select(CodebookVersion).where(col(CodebookVersion.name) == codebook_name)).all()
    if not versions:
        known = sorted(set(session.exec(select(CodebookVersion.name)).all()))
        raise InputError(
            f"no codes under codebook {codebook_name!r} (codebooks with codes: {', '.join(known) or 'none'})"
        )
    versions = sorted(versions, key=lambda v: v.version)
    books = [stored_codebook(session, v.name, v.version) for v in versions]
    latest = books[-1]
    if latest.kind == "multilabel":
        raise InputError(
            f"codebook {latest.ref} is multilabel: agreement needs one label per text (nominal or ordinal)"
        )
    uncertain_names = {b.uncertain.name for b in books if b.uncertain is not None}
    uncertain_label = latest.uncertain.name if latest.uncertain else next(iter(uncertain_names), None)
    categories: list[str] = []
    for book in reversed(books):  # the latest version's order first, then labels only older ones had
        categories += [n for n in book.label_names if n not in categories]
    if uncertain_as_category and uncertain_label is not None:
        categories.append(uncertain_label)
    if invalid_as_category:
        categories.append(INVALID_CATEGORY)
    values = []
    for i, name in enumerate(categories):
        v = latest.label_value(name)
        values.append(float(i) if v is None else float(v))

    query = (
        codes_query(
            col(Annotation.document_id),
            col(Annotation.repeat),
            col(Annotation.label),
            col(Annotation.status),
            col(Run.id),
            col(Run.kind),
            col(Run.model),
            col(Coder.name),
        )
        .where(col(CodebookVersion.name) == codebook_name)
        .order_by(col(Coder.id), col(Run.id), col(Annotation.repeat), col(Annotation.document_id))
    )
    if split != "all":
        query = query.where(col(Document.split) == split)
    rows = session.execute(query).all()
    if not rows:
        n_split = len(session.exec(select(Document.id).where(col(Document.split) == split)).all())
        hint = (
            "assign splits first (`annotator split --test 0.3 --seed 1`) or use --split all"
            if split != "all" and n_split == 0
            else "import codes (`annotator import codes`) or label with `annotator run`"
        )
        raise InputError(f"no codes of codebook {codebook_name!r} on split {split!r}; {hint}")

    infos: dict[str, CoderInfo] = {}
    cells: dict[tuple[str, int], tuple[int, str | None]] = {}  # (coder, doc) -> (run id, label or None)
    for doc_id, repeat, label, status, run_id, run_kind, model, coder_name in rows:
        if run_kind in REFERENCE_KINDS:
            name, info_run, info_repeat = coder_name, None, None
        else:
            name = f"run:{run_id}" if repeat == 0 else f"run:{run_id}#{repeat}"
            info_run, info_repeat = run_id, repeat
        info = infos.setdefault(name, CoderInfo(name, run_kind, info_run, info_repeat, model))
        if status != "ok" or label is None:
            info.n_invalid += 1
            # an answer that did not validate may count as a category; a failed request never does
            value = INVALID_CATEGORY if invalid_as_category and status == "invalid" else None
        elif label in uncertain_names:
            info.n_uncertain += 1
            value = label if uncertain_as_category else None
            if uncertain_as_category and uncertain_label is not None:
                value = uncertain_label  # an older version's uncertain name counts as the current one
        else:
            value = label
        previous = cells.get((name, doc_id))
        if previous is None or previous[0] <= run_id:  # a coder imported under two versions: the latest run
            cells[(name, doc_id)] = (run_id, value)

    if coders is None:
        selected = [n for n, i in infos.items() if i.kind != "gold"]
    else:
        selected = list(dict.fromkeys(_coder_key(c) for c in coders if c.strip()))
        unknown = [c for c in selected if c not in infos]
        if unknown:
            raise InputError(
                f"no codes of codebook {codebook_name!r} on split {split!r} from: {', '.join(unknown)} "
                f"(coders here: {', '.join(infos)})"
            )
        if not selected:
            raise InputError("--coders: name at least one coder, e.g. --coders alice,bob,run:7")
    chosen = [infos[n] for n in selected]
    row_of = {c.name: i for i, c in enumerate(chosen)}
    cat_index = {c: i for i, c in enumerate(categories)}
    doc_ids = sorted(
        {doc for (name, doc), (_, value) in cells.items() if name in row_of and value is not None}
    )
    unit_index = {d: j for j, d in enumerate(doc_ids)}
    codes = np.full((len(chosen), len(doc_ids)), np.nan)
    for (name, doc), (_, value) in cells.items():
        if name not in row_of or value is None:
            continue
        if value not in cat_index:
            raise InputError(
                f"coder {name!r} has label {value!r}, which no version of codebook {codebook_name!r} defines"
            )
        codes[row_of[name], unit_index[doc]] = cat_index[value]
    for info in chosen:
        info.n_codes = int(np.isfinite(codes[row_of[info.name]]).sum())
    return CodeMatrix(
        codes=codes,
        coders=chosen,
        units=doc_ids,
        categories=categories,
        codebook=codebook_name,
        codebook_versions=[v.version for v in versions],
        split=split,
        uncertain_label=uncertain_label,
        uncertain_as_category=uncertain_as_category,
        values=values,
        invalid_as_category=invalid_as_category,
    )


# -- statistics on shared bootstrap draws ------------------------------------------------------------------


def json_number(x: float) -> float | None:
    """JSON-ready: NaN becomes None (PostgreSQL's JSON and strict parsers refuse NaN)."""
    return None if x is None or not math.isfinite(x) else round(float(x), 6)


def percentile_interval(reps: Array) -> tuple[float, float]:
    """The ``CI`` percentile interval of the finite bootstrap replicates; (NaN, NaN) when there are none."""
    ok = reps[np.isfinite(reps)]
    if ok.size == 0:
        return math.nan, math.nan
    lo, hi = np.percentile(ok, [100 * (1 - CI) / 2, 100 * (1 + CI) / 2])
    return float(lo), float(hi)


def _estimate(point: float, reps: Array) -> dict[str, float | None]:
    if not math.isfinite(point):
        return {"estimate": None, "low": None, "high": None}
    lo, hi = percentile_interval(reps)
    return {"estimate": json_number(point), "low": json_number(lo), "high": json_number(hi)}


def _disagreement_weights(k: int, weights: str | None) -> Array:
    i = np.arange(k, dtype=float)
    d = np.abs(i[:, None] - i[None, :])
    if weights == "linear":
        return d
    if weights == "quadratic":
        return d**2
    return (d > 0).astype(float)


def _kappa_from_confusion(conf: Array, w: Array) -> Array:
    """Cohen's kappa of (batched) confusion matrices ... x k x k: 1 - sum(w O) / sum(w E), NaN if undefined."""
    n = conf.sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        p = conf / n[..., None, None]
        expected = p.sum(axis=-1)[..., :, None] * p.sum(axis=-2)[..., None, :]
        observed_d = (p * w).sum(axis=(-2, -1))
        expected_d = (expected * w).sum(axis=(-2, -1))
        kappa = 1.0 - observed_d / expected_d
    return np.where((n > 0) & (expected_d > 0), kappa, np.nan)


class _Stats:
    """Alpha and kappas on one codes matrix, each with replicates on the same resampled units."""

    def __init__(self, m: CodeMatrix, level: str, n_boot: int, seed: int) -> None:
        self.m = m
        self.level = level
        self.k = len(m.categories)
        n_units = m.codes.shape[1]
        idx = np.random.default_rng(seed).integers(0, max(n_units, 1), size=(n_boot, n_units))
        flat = (idx + n_units * np.arange(n_boot)[:, None]).ravel()
        self.weights = np.bincount(flat, minlength=n_boot * n_units).reshape(n_boot, n_units).astype(float)
        self.kappa_weights: Literal["linear", "quadratic"] | None = cast(
            Any, {"nominal": None, "ordinal": "linear"}.get(level, "quadratic")
        )
        self.w = _disagreement_weights(self.k, self.kappa_weights)
        self.values = None if level == "nominal" else m.values

    def alpha(self, rows: Sequence[int]) -> tuple[dict[str, Any], Array]:
        sub = self.m.codes[list(rows)]
        rep = alpha_report(sub, cast(Any, self.level), self.values)
        stat = Alpha(cast(Any, self.level), self.values, list(rows))
        reps = (
            stat.replicates(self.m.codes, self.weights)
            if math.isfinite(rep.alpha)
            else np.full(self.weights.shape[0], np.nan)
        )
        out = _estimate(rep.alpha, reps) | {
            "pairable_units": rep.pairable_units,
            "pairable_values": rep.pairable_values,
            "reason": rep.reason,
        }
        return out, reps

    def kappa(self, a: Array, b: Array) -> tuple[float, Array, int]:
        """Point kappa (scikit-learn), replicates (batched), and the number of units both coded."""
        both = np.isfinite(a) & np.isfinite(b)
        n = int(both.sum())
        point = cohen_kappa(a, b, weights=self.kappa_weights, n_categories=self.k)
        if not math.isfinite(point):
            return math.nan, np.full(self.weights.shape[0], np.nan), n
        cell = np.where(both, np.nan_to_num(a) * self.k + np.nan_to_num(b), -1).astype(np.int64)
        onehot = np.zeros((a.size, self.k * self.k))
        onehot[np.nonzero(both)[0], cell[both]] = 1.0
        conf = (self.weights @ onehot).reshape(-1, self.k, self.k)
        return point, _kappa_from_confusion(conf, self.w), n


def _mean_pairs(points: list[float], reps: list[Array], n_boot: int) -> tuple[float, Array, int]:
    ok = [i for i, p in enumerate(points) if math.isfinite(p)]
    if not ok:
        return math.nan, np.full(n_boot, np.nan), 0
    stacked = np.vstack([reps[i] for i in ok])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a replicate where every pair is NaN
        mean_reps = np.nanmean(stacked, axis=0)
    return float(np.mean([points[i] for i in ok])), mean_reps, len(ok)


def _fmt(x: float | None) -> str:
    return "NaN" if x is None else f"{x:.2f}"


def _span(e: dict[str, Any]) -> str:
    if e["estimate"] is None:
        return "NaN"
    if e["low"] is None:
        return _fmt(e["estimate"])
    return f"{_fmt(e['estimate'])} [{_fmt(e['low'])}, {_fmt(e['high'])}]"


def yardstick(
    name: str, run: dict[str, Any], human: dict[str, Any], reason: str | None = None
) -> dict[str, Any]:
    """The verdict and its one line: the run's mean pairwise kappa with the humans vs the humans' own."""
    if run["estimate"] is None or human["estimate"] is None:
        why = reason or (
            "no human-human kappa (needs two human coders with jointly coded units)"
            if human["estimate"] is None
            else "no kappa between the run and the humans (no jointly coded units, or no variation)"
        )
        return {"verdict": "undetermined", "line": f"{name} vs humans: cannot compare: {why}"}
    r_lo = run["low"] if run["low"] is not None else run["estimate"]
    r_hi = run["high"] if run["high"] is not None else run["estimate"]
    h_hi = human["high"] if human["high"] is not None else human["estimate"]
    if r_lo > h_hi:
        verdict = "above"
    elif r_hi >= human["estimate"]:
        verdict = "reaches"
    else:
        verdict = "below"
    line = f"{name} vs humans: kappa {_span(run)} vs human-human {_span(human)}: {verdict} the human level"
    return {"verdict": verdict, "line": line}


def compare_verdict(a: str, b: str, diff: dict[str, Any]) -> str:
    """The verdict on A minus B (mean pairwise kappa with the humans): its interval against zero."""
    lo = diff["low"] if diff["low"] is not None else diff["estimate"]
    hi = diff["high"] if diff["high"] is not None else diff["estimate"]
    if lo > 0:
        return f"{a} agrees more with the humans than {b}"
    if hi < 0:
        return f"{a} agrees less with the humans than {b}"
    return f"no clear difference between {a} and {b} in agreement with the humans"


def _compare_pairs(m: CodeMatrix, runs: list[int], compare: Sequence[str] | None) -> list[tuple[int, int]]:
    """Index pairs of run coders to compare: every pair, or the one named by ``compare`` (A,B)."""
    if compare is None:
        return [(i, j) for x, i in enumerate(runs) for j in runs[x + 1 :]]
    names = [_coder_key(n) for n in compare]
    available = [m.coders[i].name for i in runs]
    shown = ", ".join(available) or "none (the report has no LLM or baseline coders)"
    unknown = [n for n in names if n not in available]
    if unknown:
        raise InputError(f"--compare: unknown coder {', '.join(unknown)}; available coders: {shown}")
    if len(names) != 2 or names[0] == names[1]:
        raise InputError(f"--compare needs two different coders as A,B; available coders: {shown}")
    by_name = {m.coders[i].name: i for i in runs}
    return [(by_name[names[0]], by_name[names[1]])]


def compute_agreement(
    m: CodeMatrix,
    level: str = "nominal",
    n_boot: int = 1000,
    seed: int = 0,
    compare: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Every figure of `agreement` on a loaded matrix (no database).

    ``compare`` (two run coder names, A and B) limits the comparisons to that pair.
    """
    if level not in LEVELS:
        raise InputError(f"--level {level!r}: use one of {', '.join(LEVELS)}")
    if n_boot < 1:
        raise InputError(f"--bootstrap {n_boot}: use at least 1 replicate (1000 is the default)")
    if level != "nominal" and m.invalid_as_category:
        raise InputError(
            f"--invalid-as-category needs --level nominal: invalid answers have no place on a {level} scale"
        )
    if level != "nominal" and m.uncertain_as_category and m.uncertain_label is not None:
        raise InputError(
            f"--uncertain-as-category needs --level nominal: {m.uncertain_label!r} has no place on a {level} scale"
        )
    codes = m.codes
    ref = [i for i, c in enumerate(m.coders) if c.kind in REFERENCE_KINDS]
    runs = [i for i, c in enumerate(m.coders) if c.kind in RUN_KINDS]
    pairs = _compare_pairs(m, runs, compare)
    s = _Stats(m, level, n_boot, seed)
    notes: list[str] = [m.uncertain_note]

    # human-human
    humans: dict[str, Any] = {"coders": [m.coders[i].name for i in ref], "n_coders": len(ref)}
    h_pair_points: list[float] = []
    h_pair_reps: list[Array] = []
    if not ref:
        humans["reason"] = (
            "no human coders: import human codes (`annotator import codes`) or name them with --coders"
        )
        humans["alpha"] = {"estimate": None, "low": None, "high": None, "reason": humans["reason"]}
    else:
        humans["alpha"], _ = s.alpha(ref)
        humans["reason"] = humans["alpha"]["reason"]
    sub = codes[ref] if ref else np.empty((0, codes.shape[1]))
    humans["n_units"] = humans["alpha"].get("pairable_units", 0)
    humans["percent_agreement"] = json_number(percent_agreement(sub)) if len(ref) >= 2 else None
    humans["fleiss_kappa"] = json_number(fleiss_kappa(sub)) if len(ref) >= 2 else None
    humans["fleiss_n_units"] = int(np.isfinite(sub).all(axis=0).sum()) if len(ref) >= 2 else 0
    humans["gwet_ac1"] = json_number(gwet_ac1(sub)) if len(ref) >= 2 else None
    for x, i in enumerate(ref):
        for j in ref[x + 1 :]:
            p, r, _ = s.kappa(codes[i], codes[j])
            h_pair_points.append(p)
            h_pair_reps.append(r)
    hk, hk_reps, hk_pairs = _mean_pairs(h_pair_points, h_pair_reps, n_boot)
    humans["mean_pairwise_kappa"] = _estimate(hk, hk_reps) | {"n_pairs": hk_pairs}

    # majority label of the reference coders
    majority = np.full(codes.shape[1], np.nan)
    n_ties = 0
    if ref:
        fin = np.isfinite(sub)
        counts = np.zeros((codes.shape[1], s.k))
        for row, ok in zip(sub, fin, strict=True):
            np.add.at(counts, (np.nonzero(ok)[0], row[ok].astype(np.int64)), 1.0)
        top = counts.max(axis=1)
        tied = (counts == top[:, None]).sum(axis=1) > 1
        coded = top > 0
        majority = np.where(coded & ~tied, counts.argmax(axis=1).astype(float), np.nan)
        n_ties = int((coded & tied).sum())

    # each run and repeat
    run_out: list[dict[str, Any]] = []
    for i in runs:
        info = m.coders[i]
        entry: dict[str, Any] = {
            "coder": info.name,
            "kind": info.kind,
            "run_id": info.run_id,
            "repeat": info.repeat,
            "model": info.model,
            "n_codes": info.n_codes,
            "n_invalid": info.n_invalid,
            "n_uncertain": info.n_uncertain,
        }
        if ref:
            entry["alpha_with_humans"], _ = s.alpha([*ref, i])
        else:
            entry["alpha_with_humans"] = {
                "estimate": None,
                "low": None,
                "high": None,
                "reason": humans["reason"],
            }
        p, r, n = s.kappa(codes[i], majority)
        entry["kappa_vs_majority"] = _estimate(p, r) | {
            "n_units": n,
            "n_ties_left_out": n_ties,
            "reason": None
            if math.isfinite(p)
            else (
                humans["reason"]
                if not ref
                else "no unit coded by both the run and the human majority"
                if n == 0
                else "no variation in the labels: kappa is undefined"
            ),
        }
        pts, reps, by_human = [], [], {}
        for j in ref:
            pj, rj, nj = s.kappa(codes[i], codes[j])
            pts.append(pj)
            reps.append(rj)
            by_human[m.coders[j].name] = {"kappa": json_number(pj), "n_units": nj}
        mk, mk_reps, mk_pairs = _mean_pairs(pts, reps, n_boot)
        entry["mean_kappa_vs_humans"] = _estimate(mk, mk_reps) | {"n_pairs": mk_pairs}
        entry["kappa_by_human"] = by_human
        entry["human_mean_pairwise_kappa"] = humans["mean_pairwise_kappa"]
        diff = mk_reps - hk_reps
        diff_point = mk - hk
        entry["difference_vs_human_level"] = _estimate(diff_point, diff)
        entry["yardstick"] = yardstick(
            info.name,
            entry["mean_kappa_vs_humans"],
            humans["mean_pairwise_kappa"],
            None if ref else humans["reason"],
        )
        run_out.append(entry)

    # within-run stability across repeats
    stability: list[dict[str, Any]] = []
    by_run: dict[int, list[int]] = {}
    for i in runs:
        rid = m.coders[i].run_id
        if rid is not None:
            by_run.setdefault(rid, []).append(i)
    for rid, rows in by_run.items():
        if len(rows) < 2:
            continue
        a, _ = s.alpha(rows)
        stability.append({"run_id": rid, "coders": [m.coders[i].name for i in rows], "alpha": a})

    # runs against one another: A's mean kappa with the humans minus B's, on the units both coded
    comparisons: list[dict[str, Any]] = []
    for i, j in pairs:
        a_name, b_name = m.coders[i].name, m.coders[j].name
        both = np.isfinite(codes[i]) & np.isfinite(codes[j])
        a_codes = np.where(both, codes[i], np.nan)
        b_codes = np.where(both, codes[j], np.nan)
        means = []
        for row in (a_codes, b_codes):
            pts, reps = [], []
            for h in ref:
                ph, rh, _ = s.kappa(row, codes[h])
                pts.append(ph)
                reps.append(rh)
            means.append(_mean_pairs(pts, reps, n_boot))
        (ka, ka_reps, a_pairs), (kb, kb_reps, b_pairs) = means
        diff_reps = ka_reps - kb_reps
        delta = _estimate(ka - kb, diff_reps)
        ok = diff_reps[np.isfinite(diff_reps)]
        share = json_number(float((ok <= 0).mean())) if ok.size and delta["estimate"] is not None else None
        cmp: dict[str, Any] = {
            "a": a_name,
            "b": b_name,
            "n_units": int(both.sum()),
            "mean_kappa_a": _estimate(ka, ka_reps) | {"n_pairs": a_pairs},
            "mean_kappa_b": _estimate(kb, kb_reps) | {"n_pairs": b_pairs},
            "difference": delta,
            "share_le_zero": share,
        }
        if delta["estimate"] is None:
            why = (
                humans["reason"]
                if not ref
                else "no unit coded by both"
                if not both.any()
                else "no kappa with the humans for one of them (no jointly coded units, or no variation)"
            )
            cmp["verdict"] = "undetermined"
            cmp["line"] = f"{a_name} vs {b_name}: cannot compare: {why}"
        else:
            cmp["verdict"] = compare_verdict(a_name, b_name, delta)
            cmp["line"] = (
                f"{a_name} minus {b_name}, mean kappa with the humans on {cmp['n_units']} units both coded: "
                f"{_span(delta)}, share of replicates <= 0: {_fmt(share)}: {cmp['verdict']}"
            )
        comparisons.append(cmp)

    # pairwise kappa matrix of all coders (point estimates)
    names = m.names
    pair_k: list[list[float | None]] = [[None] * len(names) for _ in names]
    pair_n: list[list[int]] = [[0] * len(names) for _ in names]
    for i in range(len(names)):
        pair_n[i][i] = m.coders[i].n_codes
        pair_k[i][i] = 1.0 if m.coders[i].n_codes else None
        for j in range(i + 1, len(names)):
            both = np.isfinite(codes[i]) & np.isfinite(codes[j])
            kij = cohen_kappa(codes[i], codes[j], weights=s.kappa_weights, n_categories=s.k)
            pair_k[i][j] = pair_k[j][i] = json_number(kij)
            pair_n[i][j] = pair_n[j][i] = int(both.sum())

    if len(m.coders) < 2:
        notes.append("only one coder: agreement needs at least two")
    return {
        "codebook": m.codebook,
        "codebook_versions": m.codebook_versions,
        "split": m.split,
        "level": level,
        "kappa_weights": s.kappa_weights,
        "categories": m.categories,
        "uncertain": "category" if m.uncertain_as_category else "missing",
        "invalid": "category" if m.invalid_as_category else "missing",
        "uncertain_label": m.uncertain_label,
        "uncertain_note": m.uncertain_note,
        "n_boot": n_boot,
        "seed": seed,
        "ci": CI,
        "n_units": int(codes.shape[1]),
        "coders": [
            {
                "name": c.name,
                "kind": c.kind,
                "run_id": c.run_id,
                "repeat": c.repeat,
                "n_codes": c.n_codes,
                "n_invalid": c.n_invalid,
                "n_uncertain": c.n_uncertain,
            }
            for c in m.coders
        ],
        "humans": humans,
        "runs": run_out,
        "stability": stability,
        "comparisons": comparisons,
        "pairwise": {"coders": names, "kappa": pair_k, "n_units": pair_n},
        "yardstick_rule": YARDSTICK_RULE,
        "notes": notes,
    }


def default_codebook(session: Session) -> str:
    names = sorted(set(session.exec(select(CodebookVersion.name)).all()))
    if len(names) == 1:
        return names[0]
    if not names:
        raise InputError(
            "no codes yet: import codes (`annotator import codes`) or label with `annotator run`"
        )
    raise InputError(f"say which codebook with --codebook NAME (codebooks with codes: {', '.join(names)})")


def agreement(
    project: Project,
    split: str = "dev",
    coders: list[str] | None = None,
    level: str = "nominal",
    n_boot: int = 1000,
    seed: int = 0,
    uncertain_as_category: bool = False,
    codebook: str | None = None,
    compare: Sequence[str] | None = None,
    invalid_as_category: bool = False,
) -> dict[str, Any]:
    """Reliability of the stored codes (see the module docstring), stored as a metrics row of kind agreement.

    ``compare`` (two run coder names, A and B) limits the run-vs-run comparisons to that pair.

    Returns the JSON-ready result, with ``metric_id`` (the stored row).
    """
    if level not in LEVELS:
        raise InputError(f"--level {level!r}: use one of {', '.join(LEVELS)}")
    if n_boot < 1:
        raise InputError(f"--bootstrap {n_boot}: use at least 1 replicate (1000 is the default)")
    with project.transaction() as session:
        name = codebook or default_codebook(session)
        matrix = load_codes(session, name, split, coders, uncertain_as_category, invalid_as_category)
    result = compute_agreement(matrix, level, n_boot, seed, compare)
    params = {
        "codebook": name,
        "coders": coders,
        "compare": list(compare) if compare is not None else None,
        "level": level,
        "n_boot": n_boot,
        "seed": seed,
        "uncertain": result["uncertain"],
        "invalid": "category" if invalid_as_category else "missing",
        "ci": CI,
    }
    run_ids = {c.run_id for c in matrix.coders if c.run_id is not None}
    with project.transaction() as session:
        row = Metric(
            kind="agreement",
            run_id=next(iter(run_ids)) if len(run_ids) == 1 else None,
            split=split,
            params=params,
            result=result,
        )
        session.add(row)
        session.flush()
        metric_id = row.id
    return result | {"metric_id": metric_id}
