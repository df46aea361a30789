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
    ranked_entries,
    scope_notes,
    sort_key,
)
from annotator.services.compare.result import (
    PromptComparison,
    PromptDiff,
    PromptGroup,
    PromptVersion,
    RunEntry,
    Setting,
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
    setting: Setting,
    pairs: str,
    notes: list[str],
) -> PromptComparison:
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
    out: list[PromptGroup] = []
    warnings: list[str] = []
    for (book, name), versions in several.items():
        members = [i for v in sorted(versions) for i in versions[v]]
        notes += scope_notes(scorer, members, f"{book}/{name}")
        group, group_warnings = _group(project, scorer, book, name, versions, costs, bodies, setting, pairs)
        out.append(group)
        warnings += [w for w in group_warnings if w not in warnings]
    return PromptComparison(**setting, mode="prompts", prompts=out, warnings=warnings, notes=notes)


def _group(
    project: Project,
    scorer: Scorer,
    book: str,
    name: str,
    versions: dict[int, list[RunInfo]],
    costs: dict[int, dict[str, Any]],
    bodies: Bodies,
    setting: Setting,
    pairs: str,
) -> tuple[PromptGroup, list[str]]:
    """One prompt's versions: their runs ranked across the versions, the pairs, the diffs; its warnings."""
    version_out: list[PromptVersion] = []
    ranked: list[RunEntry] = []
    warned: dict[int, list[str]] = {}
    templates = []
    for v in sorted(versions):
        ref = PromptRef(book, name, v)
        body, sha, frozen = bodies[str(ref)]
        entries, warnings = ranked_entries(scorer, versions[v], costs, setting["sort"])
        ranked += entries
        warned |= warnings
        version_out.append(
            PromptVersion(version=v, prompt=str(ref), sha256=sha, frozen_at=frozen, runs=entries)
        )
        templates.append(parse_prompt(body, ref, project.prompts_dir / ref.filename))
    ranked.sort(key=sort_key(setting["sort"]))
    for rank, entry in enumerate(ranked, 1):
        entry["rank"] = rank  # across the prompt's versions
    by_id = {i.id: i for v in versions.values() for i in v}
    mode, comparisons = pairwise_tests(scorer, ranked, by_id, pairs)
    diffs = [
        PromptDiff({"from": str(a.ref), "to": str(b.ref), "diff": prompt_diff(a, b)})
        for a, b in pairwise(templates)
    ]
    group = PromptGroup(
        prompt=f"{book}/{name}",
        humans=scorer.humans_alpha(),
        versions=version_out,
        pairs=mode,
        comparisons=comparisons,
        diffs=diffs,
    )
    return group, class_warnings(ranked, warned, len(scorer.doc_ids))
