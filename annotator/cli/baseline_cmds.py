"""baseline: train and run a baseline coder beside the LLM."""

from __future__ import annotations

from typing import Any

import typer

from annotator.cli.common import console, err_console, get_project, print_json, table
from annotator.errors import InputError

NAMES_HELP = (
    "embed-logreg, embed-centroid, embed-zeroshot, tfidf, lexicon, text2text, classifier, finetune or ensemble "
    "(`annotator baseline --list` describes them)."
)


def register(app: typer.Typer) -> None:
    app.command("baseline")(baseline)


def _label_map(text: str | None) -> dict[str, str | None] | None:
    if text is None:
        return None
    out: dict[str, str | None] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise InputError(
                f"--label-map: {part.strip()!r} is not MODEL_LABEL=CODEBOOK_LABEL; e.g. NEG=negative,POS=positive,NEU=-"
            )
        out[key.strip()] = None if value.strip() == "-" else value.strip()
    return out


class _Progress:
    """A progress bar per phase (encoding, training, labeling) on a terminal; silent otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Any = None
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn("{task.description:>10}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=err_console,
                transient=False,
            )
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def __call__(self, phase: str, done: int, total: int) -> None:
        if self.bar is None:
            return
        if phase not in self.tasks:
            self.tasks[phase] = self.bar.add_task(phase, total=total)
        self.bar.update(self.tasks[phase], completed=done, total=total)


def baseline(
    name: str = typer.Argument("", help=NAMES_HELP, show_default=False),
    split: str = typer.Option("test", "--split", help="Documents to label: test, dev or all."),
    train_split: str = typer.Option(
        "dev", "--train-split", help="Documents to train on (dev only: test is held out)."
    ),
    gold: str | None = typer.Option(
        None, "--gold", help="Coder whose labels to train on (default: the only gold coder)."
    ),
    embedder: str | None = typer.Option(
        None,
        "--embedder",
        help="embed-*: minilm (default, offline), mpnet, a model folder or a Hugging Face id; "
        "ensemble: a comma list (default mpnet,minilm).",
    ),
    model: str | None = typer.Option(
        None,
        "--model",
        help="text2text / classifier: a Hugging Face id or folder; finetune: the encoder (minilm).",
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed (stored with the run)."),
    codebook: str | None = typer.Option(
        None, "--codebook", help="Codebook name, when the project has several."
    ),
    classifier: str = typer.Option("logreg", "--classifier", help="tfidf: logreg or svm."),
    label_text: str = typer.Option(
        "both",
        "--label-text",
        help="embed-zeroshot: compare with each label's name, its definition, or both ('name: definition').",
    ),
    label_map: str | None = typer.Option(
        None,
        "--label-map",
        help="classifier: model labels to codebook labels, e.g. NEG=negative,POS=positive,NEU=-",
    ),
    prompt: str | None = typer.Option(
        None,
        "--prompt",
        help="text2text: the prompt, with {text} where the document goes (default from the codebook).",
    ),
    threshold: float = typer.Option(
        0.05,
        "--threshold",
        help="lexicon: VADER's neutral band, |compound| < threshold is neutral (0: none, every text is "
        "positive or negative).",
    ),
    epochs: int = typer.Option(3, "--epochs", min=1, help="finetune: passes over the training documents."),
    coded_by: str | None = typer.Option(
        None,
        "--coded-by",
        help="Label only the --split documents these coders coded: a comma list of coder names, `humans` "
        "(every human coder) or `gold` (every gold coder). Default: documents ANY of them coded (the union); "
        "--coded-by-all: documents EVERY one of them coded. The training documents do not change.",
    ),
    coded_by_all: bool = typer.Option(
        False, "--coded-by-all", help="With --coded-by: documents every named coder coded (the intersection)."
    ),
    force: bool = typer.Option(
        False, "--force", help="Recompute a baseline that already ran with these settings."
    ),
    list_them: bool = typer.Option(False, "--list", help="Describe the baselines and exit."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Train and run a baseline coder; its run is read by agreement, validate, compare and export like an LLM run.

    Baselines that learn train on the gold labels of the dev split only, and label the test split by default.
    """
    from annotator.services.baseline import BASELINES, BaselineRequest, check_name, run_baseline

    if list_them or not name:
        rows = [[n, "yes" if f.needs_training else "no", f.description] for n, f in BASELINES.items()]
        if as_json:
            print_json([dict(zip(("name", "trains", "description"), r, strict=True)) for r in rows])
        else:
            console.print(table(None, ["baseline", "trains", "what"], rows))
        if not name and not list_them:
            raise InputError(
                "name a baseline, e.g. `annotator baseline embed-logreg` (the table above lists them)"
            )
        return
    check_name(name)
    options: dict[str, Any] = {
        "classifier": classifier,
        "label_text": label_text,
        "epochs": epochs,
        "threshold": threshold,
    }
    if label_map is not None:
        options["label_map"] = _label_map(label_map)
    if prompt is not None:
        options["prompt"] = prompt
    request = BaselineRequest(
        name=name,
        train_split=train_split,
        split=split,
        gold=gold,
        embedder=embedder,
        model=model,
        seed=seed,
        codebook=codebook,
        options=options,
        force=force,
        coded_by=coded_by,
        coded_by_all=coded_by_all,
    )
    project = get_project()
    with _Progress(err_console.is_terminal and not as_json) as progress:
        outcome = run_baseline(project, request, progress)
    if as_json:
        print_json(outcome.as_dict())
        return
    verb = "reused" if outcome.reused else f"done in {outcome.seconds:.1f} s"
    console.print(
        f"run {outcome.run_id} ({outcome.coder}): {verb}; {outcome.n_ok} labeled, {outcome.n_invalid} invalid "
        f"of {outcome.n_items} {split} documents"
        + (f" coded by {'all' if coded_by_all else 'any'} of {coded_by}" if coded_by else "")
        + (f"; trained on {outcome.n_train} dev documents" if outcome.n_train else ""),
        markup=False,
    )
    if outcome.labels:
        console.print(
            "labels: " + ", ".join(f"{k} {v}" for k, v in sorted(outcome.labels.items())), markup=False
        )
    for note in outcome.notes:
        console.print(f"note: {note}", markup=False)
    console.print(f"next: `annotator validate --runs {outcome.run_id}`", markup=False)
