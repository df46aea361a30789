"""`annotator compare --prompts`: for each prompt name of the codebook with two or more versions that have
runs on the split, each version's runs with their figures, pairwise tests between the prompt's runs and a
unified diff of the registered template between consecutive versions."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from sqlmodel import Session

from annotator.errors import InputError
from annotator.project import Project
from annotator.prompts import PromptRef, parse_prompt, parse_ref, prompt_diff
from annotator.services.compare.ranking import (
    class_warnings,
    pairwise_tests,
    run_entry,
    scope_notes,
    sort_key,
)
from annotator.services.compare.scoring import Scorer
from annotator.services.validation import RunInfo
from annotator.store.models import as_utc
from annotator.store.registry import find_prompt_version

Bodies = dict[str, tuple[str, str, str | None]]  # prompt ref -> (template, sha256, frozen at)


def prompt_bodies(session: Session, infos: list[RunInfo]) -> Bodies:
    """The registered template of each run's prompt, with its hash and when it was frozen."""
    bodies: Bodies = {}
    for info in infos:
        if info.prompt is not None and info.prompt not in bodies:
            version = find_prompt_version(session, parse_ref(info.prompt))
            assert version is not None  # a run's prompt is registered before it starts
            frozen = as_utc(version.frozen_at)
            bodies[info.prompt] = (version.body, version.sha256, frozen.isoformat() if frozen else None)
    return bodies


def prompt_versions(
    project: Project,
    scorer: Scorer,
    infos: list[RunInfo],
    costs: dict[int, dict[str, Any]],
    bodies: Bodies,
    sort: str,
    pairs: str,
    notes: list[str],
) -> dict[str, Any]:
    """Each prompt's versions side by side: their runs ranked across the versions, pairwise tests between
    them and the template diffs; refused when no prompt has two or more versions with runs."""
    groups: dict[tuple[str, str], dict[int, list[RunInfo]]] = {}
    for info in infos:
        if info.prompt is None:
            continue
        ref = parse_ref(info.prompt)
        groups.setdefault((ref.codebook, ref.name), {}).setdefault(ref.version, []).append(info)
    several = {k: v for k, v in sorted(groups.items()) if len(v) >= 2}
    if not several:
        shown = ", ".join(f"{c}/{n} (v{', v'.join(map(str, sorted(v)))})" for (c, n), v in groups.items())
        raise InputError(
            f"no prompt of codebook {scorer.data['codebook']!r} has two or more versions with runs on the "
            f"{scorer.split} split (prompts with runs: {shown or 'none'}); label with another version "
            f"(`annotator prompt new`, then `annotator run --split {scorer.split}`)"
        )
    by_id = {i.id: i for i in infos}
    humans = scorer.humans_alpha()
    out: list[dict[str, Any]] = []
    warnings: list[str] = []
    for (book, name), versions in several.items():
        members = [i for v in sorted(versions) for i in versions[v]]
        notes += scope_notes(scorer, members, f"{book}/{name}")
        key = sort_key(sort)
        version_out: list[dict[str, Any]] = []
        ranked: list[dict[str, Any]] = []
        templates = []
        for v in sorted(versions):
            ref = PromptRef(book, name, v)
            body, sha, frozen = bodies[str(ref)]
            entries = [run_entry(i, scorer.score(i, scorer.items(i)), costs[i.id]) for i in versions[v]]
            entries.sort(key=key)
            ranked += entries
            version_out.append(
                {"version": v, "prompt": str(ref), "sha256": sha, "frozen_at": frozen, "runs": entries}
            )
            templates.append(parse_prompt(body, ref, project.prompts_dir / ref.filename))
        ranked.sort(key=key)
        for rank, entry in enumerate(ranked, 1):
            entry["rank"] = rank  # across the prompt's versions
        mode, comparisons = pairwise_tests(scorer, ranked, by_id, pairs)
        warnings += [w for w in class_warnings(ranked, len(scorer.doc_ids)) if w not in warnings]
        diffs = [
            {"from": str(a.ref), "to": str(b.ref), "diff": prompt_diff(a, b)} for a, b in pairwise(templates)
        ]
        out.append(
            {
                "prompt": f"{book}/{name}",
                "humans": humans,
                "versions": version_out,
                "pairs": mode,
                "comparisons": comparisons,
                "diffs": diffs,
            }
        )
    return {"mode": "prompts", "prompts": out, "warnings": warnings}
