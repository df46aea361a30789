"""`annotator agreement`: inter-coder reliability of the stored codes, humans and LLM runs alike.

Reads the codes of one codebook on one split into a coders x units matrix (`load_codes`) and reports, with
seeded unit-bootstrap intervals (see `annotator.stats.reliability` for why units are resampled):

- human-human: Krippendorff's alpha, percent agreement, Fleiss' kappa, Gwet's AC1 and the mean pairwise
  Cohen's kappa among the human coders (plus any gold coder named with ``coders``: the reference group);
- each LLM or baseline run, and each repeat of it, on the units the run coded (its asked set, where it gave
  a valid answer; a unit outside its asked set counts neither for nor against it):
  (a) alpha and kappa between the run and the human majority label (plurality; tied units are left out and
  counted), (b) the mean of the run's pairwise alpha and kappa with each human, (c) the pooled alpha of the
  humans with the run added, beside the humans-only alpha on the same units and their difference, and
  (d) the yardstick: a paired test of the run against the humans on the same units.
- within-run stability: alpha over the repeats of a run, when two or more are present;
- a pairwise kappa matrix of all coders;
- comparisons of runs (and repeats) with one another, on the units both coded: A's mean pairwise kappa with
  each human minus B's, with a paired bootstrap interval, the share of replicates <= 0 and a verdict.

Why not the pooled alpha of the humans plus the run. It measures the humans as much as the run: beside 15
agreeing crowd coders a run answering one label for every text, or a chance-level run, still gets alpha
0.67-0.84, because nearly every pair in the coincidence matrix is a human-human pair. A run's agreement with
the humans is therefore (a) and (b), which pair the run with the humans only; the pooled figure is shown
only as "the reliability of the humans with the run added", next to the humans-only figure.

Every figure carries its n (units, and pairable values for alpha). Below ``min_units`` units (default 30)
a figure is "too few units (n)" instead of a number; a mean over pairs leaves out pairs below it. Bootstrap
replicates in which a statistic is undefined are counted (``undefined_share``); above 5% the interval is
flagged ``unreliable``. Within one run's figures every statistic uses the same bootstrap draws of that
run's units, so the paired differences are consistent.

The yardstick (Törnberg 2024 compares one coder with one coder): on the units the run coded, the run's mean
kappa with each human minus the humans' mean pairwise kappa on the same units, with its paired bootstrap
interval, against a non-inferiority margin (default 0.05): "at the human level" when the interval's lower
bound lies above -margin, "below the human level" when its upper bound lies below -margin, "inconclusive"
otherwise (or with too few units, or an unreliable interval).

Kappas are unweighted for nominal data, linearly weighted for ``--level ordinal`` and quadratically weighted
for interval and ratio (distances between category positions in codebook order). Ordered levels need an
ordinal codebook; ratio needs a ``value:`` on every label (alpha's ratio metric divides by the sum of the
values, so label positions 0..k-1 would give a different, wrong figure).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from annotator.errors import InputError
from annotator.project import Project
from annotator.stats.intervals import CI, MIN_UNITS, json_number, percentile_interval, too_few
from annotator.stats.paired import (
    _blank,
    _difference,
    _fmt,
    _mean_over_pairs,
    _Pair,
    _span,
    _Stats,
    compare_verdict,
    yardstick_verdict,
)
from annotator.stats.reliability import (
    LEVELS,
    cohen_kappa,
    fleiss_kappa,
    gwet_ac1,
    majority,
    percent_agreement,
)
from annotator.store.codes import (
    INVALID_CATEGORY,
    REFERENCE_KINDS,
    RUN_KINDS,
    SPLITS,
    CodeMatrix,
    CoderInfo,
    _coder_key,
    codes_query,
    default_codebook,
    load_codes,
)
from annotator.store.models import Metric

__all__ = [
    "CI",
    "INVALID_CATEGORY",
    "MIN_UNITS",
    "REFERENCE_KINDS",
    "RUN_KINDS",
    "SPLITS",
    "CodeMatrix",
    "CoderInfo",
    "codes_query",
    "default_codebook",
    "json_number",
    "load_codes",
    "percentile_interval",
]

Array = NDArray[np.float64]
MARGIN = 0.05  # default non-inferiority margin of the yardstick (kappa points)
VERDICTS = ("at the human level", "below the human level", "inconclusive", "undetermined")


def yardstick_rule(margin: float = MARGIN, min_units: int = MIN_UNITS) -> str:
    """The yardstick's rule in one sentence, as printed and stored."""
    return (
        "yardstick: on the units the run coded, the run's mean kappa with each human minus the humans' mean "
        f"pairwise kappa on the same units, with its paired {CI:.0%} bootstrap interval: 'at the human level' "
        f"when the interval lies above -{margin:g}, 'below the human level' when it lies below -{margin:g}, "
        f"'inconclusive' otherwise or on fewer than {min_units} units"
    )


YARDSTICK_RULE = yardstick_rule()


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


def _check_level(m: CodeMatrix, level: str) -> None:
    """Refuse a level the codebook's labels cannot carry (one line, naming the codebook and what to do)."""
    if level not in LEVELS:
        raise InputError(f"--level {level!r}: use one of {', '.join(LEVELS)}")
    if level == "nominal":
        return
    if m.scale is not None and m.scale != "ordinal":
        raise InputError(
            f"--level {level}: codebook {m.codebook!r} is kind: {m.scale}, so its labels have no order; use "
            "--level nominal, or make the codebook kind: ordinal (a new version) to use an ordered level"
        )
    if m.invalid_as_category:
        raise InputError(
            f"--invalid-as-category needs --level nominal: invalid answers have no place on a {level} scale"
        )
    if m.uncertain_as_category and m.uncertain_label is not None:
        raise InputError(
            f"--uncertain-as-category needs --level nominal: {m.uncertain_label!r} has no place on a {level} scale"
        )
    if level == "ratio" and m.values_given is False:
        raise InputError(
            f"--level ratio needs a numeric `value:` on every label of codebook {m.codebook!r} (ratio alpha "
            "compares the labels' numbers, and positions 0..k-1 would give a wrong figure); add them in a new "
            "version, or use --level ordinal"
        )


def _no_humans_reason(m: CodeMatrix, ref: list[int]) -> str | None:
    """Why there is no human-human figure, with what to do; None with two or more reference coders."""
    if len(ref) >= 2:
        return None
    gold = m.unused_gold
    if not ref:
        if gold:
            names = ", ".join(gold)
            return (
                f"no human coder here besides the gold coder {names}, which is used only when named: add it "
                f"with --coders {gold[0]},... (and import a second human coder for human-human figures)"
            )
        return "no human coders: import human codes (`annotator import codes`) or name them with --coders"
    only = m.coders[ref[0]]
    hint = (
        "import a second human coder"
        if only.kind == "human" and not gold
        else f"name another reference coder with --coders (e.g. {', '.join(gold)})"
        if gold
        else "import a human coder"
    )
    return f"only one reference coder ({only.name}, {only.kind}): human-human figures need two; {hint}"


def compute_agreement(
    m: CodeMatrix,
    level: str = "nominal",
    n_boot: int = 1000,
    seed: int = 0,
    compare: Sequence[str] | None = None,
    min_units: int = MIN_UNITS,
    margin: float = MARGIN,
) -> dict[str, Any]:
    """Every figure of `agreement` on a loaded matrix (no database).

    ``compare`` (two run coder names, A and B) limits the comparisons to that pair; ``min_units`` is the
    overlap below which a figure is "too few units (n)"; ``margin`` is the yardstick's non-inferiority margin.
    """
    _check_level(m, level)
    if n_boot < 1:
        raise InputError(f"--bootstrap {n_boot}: use at least 1 replicate (1000 is the default)")
    if min_units < 1:
        raise InputError(f"--min-units {min_units}: use 1 or more ({MIN_UNITS} is the default)")
    if not 0 <= margin < 1:
        raise InputError(f"--margin {margin}: use a kappa difference from 0 to 1 ({MARGIN} is the default)")
    codes = m.codes
    k = len(m.categories)
    values = m.values if len(m.values) == k else [float(i) for i in range(k)]
    ref = [i for i, c in enumerate(m.coders) if c.kind in REFERENCE_KINDS]
    runs = [i for i, c in enumerate(m.coders) if c.kind in RUN_KINDS]
    pairs = _compare_pairs(m, runs, compare)

    def stats(sub: Array) -> _Stats:
        return _Stats(sub, k, level, values, n_boot, seed, min_units)

    s = stats(codes)
    notes: list[str] = [m.uncertain_note]
    if not m.invalid_as_category:
        notes.append(
            "invalid answers are left out (missing): a run's figures use the units where it gave a valid "
            "answer, and n_invalid is reported beside them; --invalid-as-category counts them as a category"
        )
    no_humans = _no_humans_reason(m, ref)

    # human-human, on every unit of the matrix
    sub = codes[ref] if ref else np.empty((0, codes.shape[1]))
    humans: dict[str, Any] = {"coders": [m.coders[i].name for i in ref], "n_coders": len(ref)}
    if no_humans is not None:
        humans["alpha"] = _blank(0, no_humans) | {"pairable_values": 0}
    else:
        humans["alpha"], _ = s.alpha(ref)
    humans["reason"] = no_humans or humans["alpha"]["reason"]
    n_pairable = humans["alpha"]["n_units"]
    humans["n_units"] = n_pairable
    enough = no_humans is None and n_pairable >= min_units
    humans["percent_agreement"] = json_number(percent_agreement(sub)) if enough else None
    humans["fleiss_n_units"] = int(np.isfinite(sub).all(axis=0).sum()) if len(ref) >= 2 else 0
    humans["fleiss_kappa"] = (
        json_number(fleiss_kappa(sub)) if enough and humans["fleiss_n_units"] >= min_units else None
    )
    humans["gwet_ac1"] = json_number(gwet_ac1(sub)) if enough else None
    h_pairs = []
    for x, i in enumerate(ref):
        for j in ref[x + 1 :]:
            p, r, n = s.kappa(codes[i], codes[j])
            h_pairs.append(_Pair(p, r, n, np.isfinite(codes[i]) & np.isfinite(codes[j])))
    humans["mean_pairwise_kappa"], _ = _mean_over_pairs(
        h_pairs, min_units, n_boot, no_humans or "no pair of human coders"
    )

    # each run and repeat, on the units it coded
    rule = yardstick_rule(margin, min_units)
    run_out = [_run_entry(m, i, ref, stats, min_units, margin, no_humans, rule, n_boot) for i in runs]

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

    comparisons = [_comparison(m, i, j, ref, stats, min_units, no_humans, n_boot) for i, j in pairs]

    # pairwise kappa matrix of all coders (point estimates, each on the units both coded)
    names = m.names
    pair_k: list[list[float | None]] = [[None] * len(names) for _ in names]
    pair_n: list[list[int]] = [[0] * len(names) for _ in names]
    for i in range(len(names)):
        pair_n[i][i] = m.coders[i].n_codes
        pair_k[i][i] = 1.0 if m.coders[i].n_codes else None
        for j in range(i + 1, len(names)):
            n_ij = int((np.isfinite(codes[i]) & np.isfinite(codes[j])).sum())
            kij = cohen_kappa(codes[i], codes[j], weights=s.kappa_weights, n_categories=k)
            pair_k[i][j] = pair_k[j][i] = json_number(kij) if n_ij >= min_units else None
            pair_n[i][j] = pair_n[j][i] = n_ij

    if len(m.coders) < 2:
        notes.append("only one coder: agreement needs at least two")
    if level == "interval" and m.values_given is False:
        notes.append("interval alpha uses equally spaced label positions 0..k-1 (no label has a `value:`)")
    return {
        "codebook": m.codebook,
        "codebook_versions": m.codebook_versions,
        "split": m.split,
        "level": level,
        "values": None if level == "nominal" else dict(zip(m.categories, values, strict=True)),
        "values_given": m.values_given,
        "kappa_weights": s.kappa_weights,
        "categories": m.categories,
        "uncertain": "category" if m.uncertain_as_category else "missing",
        "invalid": "category" if m.invalid_as_category else "missing",
        "uncertain_label": m.uncertain_label,
        "uncertain_note": m.uncertain_note,
        "n_boot": n_boot,
        "seed": seed,
        "ci": CI,
        "min_units": min_units,
        "margin": margin,
        "n_units": int(codes.shape[1]),
        "coders": [
            {
                "name": c.name,
                "kind": c.kind,
                "run_id": c.run_id,
                "repeat": c.repeat,
                "n_asked": c.n_asked,
                "n_codes": c.n_codes,
                "n_invalid": c.n_invalid,
                "n_uncertain": c.n_uncertain,
            }
            for c in m.coders
        ],
        "unused_gold": m.unused_gold,
        "humans": humans,
        "runs": run_out,
        "stability": stability,
        "comparisons": comparisons,
        "pairwise": {"coders": names, "kappa": pair_k, "n_units": pair_n},
        "yardstick_rule": rule,
        "notes": notes,
    }


def _run_entry(
    m: CodeMatrix,
    i: int,
    ref: list[int],
    stats: Any,
    min_units: int,
    margin: float,
    no_humans: str | None,
    rule: str,
    n_boot: int,
) -> dict[str, Any]:
    """A run's figures against the humans, on the units it was asked and answered (validly)."""
    info = m.coders[i]
    codes = m.codes
    cols = np.nonzero(m.asked_row(i) & np.isfinite(codes[i]))[0]
    h = len(ref)
    k = len(m.categories)
    maj, n_ties = majority(codes[ref][:, cols], k) if ref else (np.full(cols.size, np.nan), 0)
    view = np.vstack([codes[ref][:, cols], codes[i][cols][None, :], maj[None, :]])
    s: _Stats = stats(view)
    run, mj = h, h + 1
    entry: dict[str, Any] = {
        "coder": info.name,
        "kind": info.kind,
        "run_id": info.run_id,
        "repeat": info.repeat,
        "model": info.model,
        "n_asked": int(m.asked_row(i).sum()),
        "n_codes": info.n_codes,
        "n_invalid": info.n_invalid,
        "n_uncertain": info.n_uncertain,
        "n_units": int(cols.size),
    }
    no_ref = no_humans if not ref else None
    if no_ref is not None:
        blank = _blank(0, no_ref)
        entry["alpha_vs_majority"] = blank | {"pairable_values": 0}
        entry["kappa_vs_majority"] = blank | {"n_ties_left_out": 0}
    else:
        a_mj, _ = s.alpha([run, mj])
        entry["alpha_vs_majority"] = a_mj
        k_mj, _ = s.kappa_figure(
            view[run], view[mj], "no variation in the labels of the run and the majority: kappa is undefined"
        )
        entry["kappa_vs_majority"] = k_mj | {"n_ties_left_out": n_ties}
        if (
            a_mj["estimate"] is None
            and a_mj["n_units"] == 0
            and a_mj["reason"]
            and "pairable" in a_mj["reason"]
        ):
            a_mj["reason"] = "no unit coded by both the run and the human majority"

    # (b) the run's pairwise alpha and kappa with each human
    a_pairs, k_pairs, by_human = [], [], {}
    for x, j in enumerate(ref):
        a_fig, a_point, a_reps = s.alpha_full([run, x])
        kp, kr, kn = s.kappa(view[run], view[x])
        covered = np.isfinite(view[run]) & np.isfinite(view[x])
        a_pairs.append(_Pair(a_point, a_reps, a_fig["n_units"], covered))
        k_pairs.append(_Pair(kp, kr, kn, covered))
        by_human[m.coders[j].name] = {
            "alpha": a_fig["estimate"],
            "kappa": json_number(kp) if kn >= min_units else None,
            "n_units": kn,
            "reason": None if kn >= min_units else too_few(kn, min_units),
        }
    none_reason = no_humans or "no human coder"
    mean_a, _ = _mean_over_pairs(a_pairs, min_units, n_boot, none_reason)
    mean_k, mk_reps = _mean_over_pairs(k_pairs, min_units, n_boot, none_reason)
    entry["mean_alpha_vs_humans"] = mean_a
    entry["mean_kappa_vs_humans"] = mean_k
    entry["by_human"] = by_human

    # (c) the pooled figure, labelled for what it is, beside the humans alone on the same units
    if no_ref is not None:
        entry["pooled_alpha"] = {
            "label": "reliability of the humans with the run added",
            "with_run": _blank(0, no_ref),
            "humans_only": _blank(0, no_ref),
            "difference": _blank(0, no_ref),
            "n_units": int(cols.size),
        }
    else:
        with_run, w_reps = s.alpha([*range(h), run])
        humans_only, h_reps = s.alpha(list(range(h)))
        entry["pooled_alpha"] = {
            "label": "reliability of the humans with the run added",
            "with_run": with_run,
            "humans_only": humans_only,
            "difference": _difference(
                with_run,
                w_reps,
                humans_only,
                h_reps,
                min(with_run["n_units"], humans_only["n_units"]),
                min_units,
            ),
            "n_units": int(cols.size),
        }

    # (d) the yardstick: a paired test on the same units
    hh = [
        _Pair(*s.kappa(view[x], view[y]), np.isfinite(view[x]) & np.isfinite(view[y]))
        for x in range(h)
        for y in range(x + 1, h)
    ]
    human_k, hk_reps = _mean_over_pairs(hh, min_units, n_boot, no_humans or "no pair of human coders")
    n_used = mean_k["n_units"] if mean_k["estimate"] is not None else int(cols.size)
    diff = _difference(mean_k, mk_reps, human_k, hk_reps, n_used, min_units)
    if no_humans is not None:
        verdict, why = "undetermined", no_humans
    elif mean_k["estimate"] is None or human_k["estimate"] is None:
        why = mean_k["reason"] if mean_k["estimate"] is None else human_k["reason"]
        verdict = "inconclusive" if why and "too few" in why else "undetermined"
    else:
        verdict, why = yardstick_verdict(diff, margin), None
    name = info.name
    if verdict == "undetermined":
        line = f"{name} vs humans: cannot compare: {why}"
    elif why is not None:
        line = f"{name} vs humans: inconclusive ({n_used} units): {why}"
    else:
        shown = verdict if verdict != "inconclusive" else f"inconclusive ({n_used} units)"
        line = (
            f"{name} vs humans on the {n_used} units it coded: {shown}: mean kappa with each human "
            f"{_span(mean_k)} vs human-human {_span(human_k)}, difference {_span(diff)} (margin {margin:g})"
        )
    entry["yardstick"] = {
        "verdict": verdict,
        "margin": margin,
        "n_units": n_used,
        "difference": diff,
        "run_kappa": mean_k,
        "human_kappa": human_k,
        "reason": why,
        "rule": rule,
        "line": line,
    }
    return entry


def _comparison(
    m: CodeMatrix,
    i: int,
    j: int,
    ref: list[int],
    stats: Any,
    min_units: int,
    no_humans: str | None,
    n_boot: int,
) -> dict[str, Any]:
    """Run A against run B on the units both coded: A's mean kappa with each human minus B's, paired."""
    codes = m.codes
    a_name, b_name = m.coders[i].name, m.coders[j].name
    cols = np.nonzero(np.isfinite(codes[i]) & np.isfinite(codes[j]))[0]
    h = len(ref)
    view = np.vstack([codes[ref][:, cols], codes[i][cols][None, :], codes[j][cols][None, :]])
    s: _Stats = stats(view)
    means = []
    for row in (h, h + 1):
        pairs = []
        for x in range(h):
            p, r, n = s.kappa(view[row], view[x])
            pairs.append(_Pair(p, r, n, np.isfinite(view[row]) & np.isfinite(view[x])))
        means.append(_mean_over_pairs(pairs, min_units, n_boot, no_humans or "no human coder"))
    (fa, ra), (fb, rb) = means
    n = int(cols.size)
    delta = _difference(fa, ra, fb, rb, n, min_units)
    if n < min_units:
        delta = _blank(n, too_few(n, min_units))
    ok = (ra - rb)[np.isfinite(ra - rb)]
    share = json_number(float((ok <= 0).mean())) if ok.size and delta["estimate"] is not None else None
    cmp: dict[str, Any] = {
        "a": a_name,
        "b": b_name,
        "n_units": n,
        "mean_kappa_a": fa,
        "mean_kappa_b": fb,
        "difference": delta,
        "share_le_zero": share,
    }
    if delta["estimate"] is None:
        why = (
            no_humans
            if not ref
            else "no unit coded by both"
            if n == 0
            else delta["reason"] or "no kappa with the humans for one of them"
        )
        cmp["verdict"] = "undetermined"
        cmp["line"] = f"{a_name} vs {b_name}: cannot compare: {why}"
    else:
        cmp["verdict"] = compare_verdict(a_name, b_name, delta)
        cmp["line"] = (
            f"{a_name} minus {b_name}, mean kappa with the humans on {n} units both coded: "
            f"{_span(delta)}, share of replicates <= 0: {_fmt(share)}: {cmp['verdict']}"
        )
    return cmp


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
    min_units: int = MIN_UNITS,
    margin: float = MARGIN,
) -> dict[str, Any]:
    """Reliability of the stored codes (see the module docstring), stored as a metrics row of kind agreement.

    ``compare`` (two run coder names, A and B) limits the run-vs-run comparisons to that pair; ``min_units``
    is the overlap below which a figure is "too few units (n)"; ``margin`` is the yardstick's margin.

    Returns the JSON-ready result, with ``metric_id`` (the stored row).
    """
    if level not in LEVELS:
        raise InputError(f"--level {level!r}: use one of {', '.join(LEVELS)}")
    if n_boot < 1:
        raise InputError(f"--bootstrap {n_boot}: use at least 1 replicate (1000 is the default)")
    with project.transaction() as session:
        name = codebook or default_codebook(session)
        matrix = load_codes(session, name, split, coders, uncertain_as_category, invalid_as_category)
    result = compute_agreement(matrix, level, n_boot, seed, compare, min_units=min_units, margin=margin)
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
        "min_units": min_units,
        "margin": margin,
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
