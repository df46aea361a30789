"""The whole pipeline on the bundled data, offline, in a few minutes: what `annotator quickstart` runs.

Each step is the CLI command a user would type (printed before it runs, so the quickstart teaches the
commands), run in-process on the new project. The one decision in the middle, which prompt version to
freeze, is made on the dev split only (macro-F1 against the critics' labels), as the held-out rule requires.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from annotator.errors import AnnotatorError, InputError, arg
from annotator.llm.providers import DEFAULT_MODEL

PROMPTS = ("sentiment/zero-shot.v1", "sentiment/zero-shot.v2")
BASELINES = ("embed-logreg", "tfidf", "lexicon")
MODEL = DEFAULT_MODEL
Say = Callable[[str], None]


@dataclass
class QuickstartResult:
    folder: Path
    frozen: str
    llm_test_run: int
    report: Path
    export: Path


def _marker(folder: Path) -> Path:
    return folder / ".annotator-quickstart"


def prepare_folder(folder: Path, force: bool) -> None:
    """A new folder, or (``force``) one an earlier quickstart made: never someone's own project."""
    if not folder.exists():
        return
    if not force:
        raise InputError(
            f"{folder} already exists: choose another folder, or add {arg('force')} to replace an earlier "
            "quickstart"
        )
    if not _marker(folder).is_file():
        raise InputError(
            f"{folder} exists and was not made by `annotator quickstart`: {arg('force')} only replaces a "
            "quickstart folder; choose another folder"
        )
    shutil.rmtree(folder)


def run_quickstart(
    folder: Path, n: int, sample: int, force: bool, cli: Callable[[list[str]], int], say: Say
) -> QuickstartResult:
    """Run every step; ``cli`` runs one annotator command (its output goes to the terminal)."""
    if not 100 <= n <= 10_605:
        raise InputError(f"{arg('n', n)}: use 100 to 10605 sentences (600 takes a few minutes on 2 cores)")
    if sample < 10:
        raise InputError(f"{arg('sample', sample)}: label at least 10 dev sentences per prompt version")
    prepare_folder(folder, force)
    project = ["--project", str(folder)]
    steps: list[tuple[str, list[str]]] = []
    total = 15 + len(PROMPTS) + len(BASELINES)

    def step(title: str, args: list[str], project_scoped: bool = True) -> None:
        steps.append((title, args))
        say(f"\n[{len(steps)}/{total}] {title}\n$ annotator {' '.join(args)}")
        code = cli((project if project_scoped else []) + args)
        if code != 0:
            raise AnnotatorError(
                f"quickstart stopped at step {len(steps)} ({title}): the command above failed"
            )

    step(
        "create a project with the sentiment codebook and prompts",
        ["init", str(folder), "--example", "sentiment"],
        False,
    )
    _marker(folder).write_text("made by `annotator quickstart`; `annotator quickstart --force` replaces it\n")
    step(
        f"import {n} Rotten Tomatoes sentences, 15 crowd coders and the critics' labels (gold)",
        ["import", "example", "rotten-tomatoes", "--n", str(n), "--seed", "1"],
    )
    step(
        "hold out 30% as the test split",
        ["split", "--test", "0.3", "--seed", "1", "--stratify-by-coder", "critics"],
    )
    step("fetch the offline model (once)", ["models", "pull", "smollm2"], False)
    for ref in PROMPTS:
        step(
            f"label {sample} of the dev sentences the human coders coded, with {ref}",
            [
                "run",
                "--prompt",
                ref,
                "--model",
                MODEL,
                "--split",
                "dev",
                "--coded-by",
                "humans",
                "--sample",
                str(sample),
                "--seed",
                "1",
            ],
        )
    step(
        "agreement of the crowd and the LLM runs on dev",
        ["agreement", "--split", "dev", "--bootstrap", "300"],
    )
    best = _better_prompt(folder, say)
    step(f"freeze the better prompt on dev ({best})", ["prompt", "freeze", best])
    step(
        f"label the test split with the frozen {best}",
        ["run", "--prompt", best, "--model", MODEL, "--split", "test"],
    )
    for name in BASELINES:
        step(f"baseline {name}: trained on dev, labels the test split", ["baseline", name])
    step(
        "agreement of the crowd and every run on the test split (each run on the sentences it labeled)",
        ["agreement", "--split", "test", "--bootstrap", "300"],
    )
    step(
        "validate every run on the held-out test split (each on the gold sentences it was asked)",
        ["validate", "--gold", "critics", "--split", "test"],
    )
    llm_run = _test_run(folder, best)
    exported = folder / "exports" / f"run-{llm_run}.csv"
    exported.parent.mkdir(exist_ok=True)
    step("compare runs and baselines on the test split", ["compare", "--gold", "critics"])
    step("export the LLM's test labels with provenance", ["export", str(llm_run), "--out", str(exported)])
    gold_n = max(10, n // 10)  # a third of the test split: the critics' other codes are the truth to compare
    drawn = ["--gold", "critics", "--split", "test", "--gold-sample", str(gold_n), "--seed", "1"]
    step(
        f"estimate each label's share in the test split three ways ({gold_n} critics' codes as the gold "
        "sample), and by sentence length",
        ["estimate", "--run", str(llm_run), *drawn, "--by", "length"],
    )
    step(
        "the same estimate under every run: does the finding depend on the coding choices?",
        ["estimate", "--across-runs", *drawn, "--label", "positive", "--by", "length"],
    )
    step(
        "how many critics' codes a 0.05-wide interval would need",
        [
            "plan-gold",
            "--run",
            str(llm_run),
            "--gold",
            "critics",
            "--split",
            "test",
            "--target-width",
            "0.05",
        ],
    )
    report = folder / "report.html"
    step("write the methods report", ["report", "--out", str(report)])
    return QuickstartResult(folder, best, llm_run, report, exported)


def _better_prompt(folder: Path, say: Say) -> str:
    """The prompt version with the higher macro-F1 against the critics on dev (ties: the later version)."""
    from annotator.project import load_project
    from annotator.services.validation import validate

    project = load_project(folder)
    result = validate(project, "critics", split="dev", n_boot=200, seed=0)
    scores: dict[str, float] = {}
    for entry in result.runs:
        prompt = entry["prompt"]
        if prompt is not None and prompt in PROMPTS:
            scores[prompt] = entry["macro_f1"]["estimate"] or 0.0
    project.engine.dispose()
    if not scores:
        raise AnnotatorError("quickstart: no prompt run on dev was scored")
    best = max(PROMPTS, key=lambda ref: (scores.get(ref, -1.0), PROMPTS.index(ref)))
    say(
        "dev macro-F1 against the critics: " + ", ".join(f"{ref} {scores.get(ref, 0):.3f}" for ref in PROMPTS)
    )
    return best


def _test_run(folder: Path, ref: str) -> int:
    from sqlmodel import col, select

    from annotator.project import load_project
    from annotator.store.models import PromptVersion, Run

    project = load_project(folder)
    codebook, rest = ref.split("/", 1)
    name, version = rest.rsplit(".v", 1)
    with project.transaction() as session:
        run_id = session.exec(
            select(Run.id)
            .join(PromptVersion, col(PromptVersion.id) == Run.prompt_id)
            .where(
                col(PromptVersion.codebook) == codebook,
                col(PromptVersion.name) == name,
                col(PromptVersion.version) == int(version),
                col(Run.split) == "test",
            )
            .order_by(col(Run.id).desc())
        ).first()
    project.engine.dispose()
    if run_id is None:
        raise AnnotatorError(f"quickstart: no test run of {ref} was stored")
    return int(run_id)


def latest_leaderboard(folder: Path) -> dict[str, Any]:
    """The leaderboard the compare step stored (the report reads the same row)."""
    from sqlmodel import col, select

    from annotator.project import load_project
    from annotator.store.models import Metric

    project = load_project(folder)
    with project.transaction() as session:
        row = session.exec(
            select(Metric).where(col(Metric.kind) == "compare").order_by(col(Metric.id).desc())
        ).first()
        result = dict(row.result) if row is not None else {"runs": []}
    project.engine.dispose()
    return result
