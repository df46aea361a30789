"""run, plan (`runs` is in runs_cmds, `models` in models_cmds)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from annotator.cli.common import console, err_console, get_project, print_json

if TYPE_CHECKING:
    from annotator.services.plan import Plan


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("plan")(plan)


PROMPT = typer.Option(None, "--prompt", help="Template CODEBOOK/NAME.vN, e.g. sentiment/zero-shot.v1.")
MODEL = typer.Option(
    None, "--model", help="PROVIDER/MODEL: local/smollm2, openai/gpt-4o-mini, groq/..., openai-compatible/..."
)
BASE_URL = typer.Option(
    None, "--base-url", help="Server address for openai-compatible models, e.g. http://localhost:8000/v1."
)
SPLIT = typer.Option("dev", "--split", help="dev, test (needs a frozen prompt) or all.")
SAMPLE = typer.Option(None, "--sample", help="A seeded random sample of N documents of the split.")
SEED = typer.Option(0, "--seed", min=0, help="Seed of the sample.")
REPEATS = typer.Option(1, "--repeats", help="Label each document K times (stability; seed + k per repeat).")
TEMPERATURE = typer.Option(None, "--temperature", help="Override the template's temperature.")
TOP_P = typer.Option(None, "--top-p", help="Override the template's top_p.")
MAX_TOKENS = typer.Option(None, "--max-tokens", help="Override the template's max_tokens.")
CONCURRENCY = typer.Option(None, "--concurrency", help="Requests in flight (default: the provider's).")
MAX_COST = typer.Option(None, "--max-cost", help="Stop before spending more than this many USD.")
TAG = typer.Option(None, "--tag", help="Name that makes an otherwise identical run a separate run.")
CODED_BY = typer.Option(
    None,
    "--coded-by",
    help="Only the documents these coders coded (valid codes, within --split): a comma list of coder names, "
    "`humans` (every human coder) or `gold` (every gold coder). Default: documents ANY of them coded (the "
    "union); --coded-by-all: documents EVERY one of them coded (the intersection). --sample draws within them.",
)
CODED_BY_ALL = typer.Option(
    False, "--coded-by-all", help="With --coded-by: documents every named coder coded (the intersection)."
)
TRUNCATE = typer.Option(
    False,
    "--truncate",
    help="Local models: cut a document whose prompt is longer than the model's context so that it fits (the "
    "answer's error column says what was cut), instead of storing it as an error without a request.",
)

BATCH = typer.Option(
    None,
    "--batch/--live",
    help="openai/ and groq/ models: send the requests through the provider's Batch API (half the price, "
    "answers within 24 hours; the terminal may be closed once it is submitted: `annotator run --resume N` "
    "collects the answers). --live: ask request by request (the default).",
)
SAME_MODEL_AS = typer.Option(
    None,
    "--same-model-as",
    help="openai-compatible/ models whose server does not describe its model (/v1/models): the address of "
    "another server known to serve the same model, so that answers cached from it are used.",
)


def _request(**kwargs: Any) -> Any:
    from annotator.llm.spec import RunError, RunRequest

    if not kwargs.get("prompt"):
        raise RunError("say which prompt with --prompt CODEBOOK/NAME.vN (`annotator prompt list` shows them)")
    if kwargs.get("coded_by_all") and kwargs.get("coded_by") is None:
        raise RunError(
            "--coded-by-all needs --coded-by NAMES (the coders every selected document was coded by)"
        )
    return RunRequest(**kwargs)


class _Progress:
    """A rich progress bar: done/total, rate, ETA, invalid and error counts, cost so far."""

    def __init__(self, enabled: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[counts]}"),
            console=err_console,
            disable=not enabled,
            transient=False,
        )
        self.task: Any = None

    def __enter__(self) -> _Progress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def __call__(self, stats: Any) -> None:
        import time

        if self.task is None:
            self.task = self.progress.add_task(
                "labeling", total=stats.total, completed=stats.before, rate="", counts=""
            )
        elapsed = max(time.perf_counter() - stats.started, 1e-6)
        self.progress.update(
            self.task,
            completed=stats.before + stats.done,
            rate=f"{stats.done / elapsed:.1f}/s",
            counts=f"ok {stats.ok}  invalid {stats.invalid}  error {stats.error}  cached {stats.cached}"
            f"  ${stats.cost:.4f}",
        )


def _show_outcome(outcome: Any, as_json: bool) -> None:
    from annotator.services.runs import show_run

    stats = outcome.stats
    if as_json:
        print_json(show_run(get_project(), outcome.run_id).to_json())
        return
    run = outcome.run
    new = stats.done
    rate = f", {new / outcome.elapsed_s:.1f}/s" if new and outcome.elapsed_s > 0 else ""
    console.print(
        f"run {outcome.run_id} ({run.model}, {run.split}): {outcome.status}. {run.n_ok + run.n_invalid + run.n_error} "
        f"of {run.n_items} stored: ok {run.n_ok}, invalid {run.n_invalid}, error {run.n_error}. "
        f"This session: {new} answers ({stats.cached} from the cache, {stats.requests} requests{rate}), "
        f"cost ${stats.cost:.4f}"
    )
    if stats.before and not new:
        console.print(f"nothing to do: run {outcome.run_id} already had every answer (no request was made)")
    if outcome.message:
        console.print(f"note: {outcome.message}")
    if run.n_error or outcome.status == "interrupted":
        console.print(f"resume with: annotator run --resume {outcome.run_id}")


def run(
    prompt: str | None = PROMPT,
    model: str | None = MODEL,
    base_url: str | None = BASE_URL,
    split: str = SPLIT,
    sample: int | None = SAMPLE,
    seed: int = SEED,
    repeats: int = REPEATS,
    temperature: float | None = TEMPERATURE,
    top_p: float | None = TOP_P,
    max_tokens: int | None = MAX_TOKENS,
    concurrency: int | None = CONCURRENCY,
    max_cost: float | None = MAX_COST,
    tag: str | None = TAG,
    coded_by: str | None = CODED_BY,
    coded_by_all: bool = CODED_BY_ALL,
    truncate: bool = TRUNCATE,
    same_model_as: str | None = SAME_MODEL_AS,
    reasks: int = typer.Option(
        1, "--reasks", help="Re-ask this many times when an answer does not validate."
    ),
    retries: int = typer.Option(
        5, "--retries", help="Retries of a request on 5xx, timeouts, dropped connections (429s: --max-wait)."
    ),
    max_wait: float | None = typer.Option(
        None,
        "--max-wait",
        min=0,
        help="Seconds an item waits through rate limits (HTTP 429, honouring Retry-After) before it is "
        "stored as an error (--resume continues); 429s do not count against --retries. Default 300 (with "
        "--resume: the run's own).",
    ),
    timeout: float | None = typer.Option(None, "--timeout", help="Seconds to wait for one answer."),
    logprobs: bool | None = typer.Option(
        None,
        "--logprobs/--no-logprobs",
        help="Ask for token log-probabilities (default: where they mean something).",
    ),
    no_cache: bool = typer.Option(
        False, "--no-cache", help="Ask the model even when the cache has the answer."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Show the plan (prompt, tokens, cost, time) and stop."
    ),
    resume: int | None = typer.Option(None, "--resume", help="Continue run N: ask only for what is missing."),
    batch: bool | None = BATCH,
    wait: bool = typer.Option(
        True, "--wait/--no-wait", help="--batch: wait for the answers (--no-wait: submit, and return)."
    ),
    poll: float = typer.Option(30.0, "--poll", min=0.01, help="--batch: seconds between questions about it."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Label documents with an LLM following a codebook and a prompt version; every answer is stored."""
    import sys

    from annotator.services import run as runner

    project = get_project()
    batching = runner.Batching(wait=wait, poll_s=poll)
    progress = _Progress(enabled=not as_json and sys.stderr.isatty())

    def notify(message: str) -> None:
        err_console.print(message, markup=False)

    if resume is not None:
        try:
            with progress:
                outcome = runner.resume(
                    project,
                    resume,
                    progress=progress,
                    notify=notify,
                    concurrency=concurrency,
                    max_cost=max_cost,
                    timeout=timeout,
                    base_url=base_url,
                    max_wait=max_wait,
                    batch=batch,
                    batching=batching,
                )
        except KeyboardInterrupt as exc:
            line = (
                exc.line
                if isinstance(exc, runner.RunInterrupted)
                else f"interrupted: every finished answer is saved; `annotator run --resume {resume}` continues"
            )
            err_console.print(line, markup=False)
            raise typer.Exit(getattr(exc, "exit_code", 130)) from None
        _show_outcome(outcome, as_json)
        if not outcome.complete:
            raise typer.Exit(1)
        return
    request = _request(
        prompt=prompt,
        model=model,
        base_url=base_url,
        split=split,
        sample=sample,
        seed=seed,
        repeats=repeats,
        temperature=temperature,
        top_p=top_p,
        max_tokens=max_tokens,
        concurrency=concurrency,
        max_cost=max_cost,
        tag=tag,
        coded_by=coded_by,
        coded_by_all=coded_by_all,
        truncate=truncate,
        same_model_as=same_model_as,
        reasks=reasks,
        retries=retries,
        **({} if max_wait is None else {"max_wait": max_wait}),
        timeout=timeout,
        cache=not no_cache,
        logprobs=logprobs,
        batch=bool(batch),
    )
    if dry_run:
        _show_plan(runner.plan(project, request), as_json)
        return
    try:
        with progress:
            outcome = runner.label(project, request, progress=progress, notify=notify, batching=batching)
    except KeyboardInterrupt as exc:
        line = (
            exc.line
            if isinstance(exc, runner.RunInterrupted)
            else "interrupted before the run started: nothing was asked"
        )
        err_console.print(line, markup=False)
        raise typer.Exit(getattr(exc, "exit_code", 130)) from None
    _show_outcome(outcome, as_json)
    if not outcome.complete:
        raise typer.Exit(1)


def plan(
    prompt: str | None = PROMPT,
    model: str | None = MODEL,
    base_url: str | None = BASE_URL,
    split: str = SPLIT,
    sample: int | None = SAMPLE,
    seed: int = SEED,
    repeats: int = REPEATS,
    temperature: float | None = TEMPERATURE,
    top_p: float | None = TOP_P,
    max_tokens: int | None = MAX_TOKENS,
    concurrency: int | None = CONCURRENCY,
    tag: str | None = TAG,
    coded_by: str | None = CODED_BY,
    coded_by_all: bool = CODED_BY_ALL,
    truncate: bool = TRUNCATE,
    same_model_as: str | None = SAME_MODEL_AS,
    batch: bool | None = BATCH,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """What a run would do: one rendered prompt; token, cost and time estimates from a sample of the documents;
    documents too long for a local model; the overlap with each human and gold coder. Asks no model."""
    from annotator.services import run as runner

    request = _request(
        prompt=prompt,
        model=model,
        base_url=base_url,
        split=split,
        sample=sample,
        seed=seed,
        repeats=repeats,
        temperature=temperature,
        top_p=top_p,
        max_tokens=max_tokens,
        concurrency=concurrency,
        tag=tag,
        coded_by=coded_by,
        coded_by_all=coded_by_all,
        truncate=truncate,
        same_model_as=same_model_as,
        batch=bool(batch),
    )
    _show_plan(runner.plan(get_project(write=False), request), as_json)


def _show_plan(info: Plan, as_json: bool) -> None:
    if as_json:
        print_json(info.to_json())
        return
    for message in info.messages:
        console.rule(f"[bold]{message['role']}[/bold]  (document {info.example_document})", align="left")
        console.print(message["content"], markup=False)
    console.rule()
    existing = f"; run {info.existing_run} has {info.already_done} already" if info.existing_run else ""
    out = (
        f"at most {info.tokens_out_per_item}"
        if info.max_tokens_set
        else f"{info.tokens_out_per_item} (assumed: no max_tokens set)"
    )
    if info.cost_usd is None or info.cost_usd_max is None:
        cost = "unknown (no price for this model; add it to annotator.toml)"
    elif info.price_per_million and not any(info.price_per_million):
        cost = "none (a local model)"
    else:
        cost = (
            f"≈ ${info.cost_usd:.4f} at the mean prompt, at most ${info.cost_usd_max:.4f} if every prompt "
            f"were the longest sampled{'' if info.max_tokens_set else ' (answers of the assumed length)'}"
        )
    lines = [
        f"{info.prompt} on {info.selection} with {info.model}: {info.documents} documents x "
        f"{info.repeats} repeat(s) = {info.items} answers{existing}; {info.from_cache} from the cache; "
        f"{info.to_ask} to ask.",
        f"prompt tokens per answer (≈, from {info.tokens_sampled} sampled documents): mean "
        f"{info.tokens_in_mean}, max {info.tokens_in_max} (document {info.tokens_in_max_document}); "
        f"answer tokens: {out}.",
        f"cost {cost}" + (" (batch prices: half the live price)." if info.time_basis == "batch" else "."),
        f"time: {info.time_note}."
        if info.time_basis == "batch"
        else f"time ≈ {info.time_s:g} s at concurrency {info.concurrency} ({info.time_note}).",
    ]
    context = info.context
    if context is not None:
        too_long = context["too_long"]
        if too_long:
            shown = ", ".join(f"{row['document']} ({row['tokens']} tokens)" for row in too_long[:10])
            more = f" and {len(too_long) - 10} more" if len(too_long) > 10 else ""
            fate = (
                "will be cut to fit (--truncate)"
                if context["truncate"]
                else "will be stored as errors, unasked"
            )
            lines.append(
                f"{len(too_long)} document(s) longer than the model's context ({context['tokens']} tokens, "
                f"{context['reserve']} kept for the answer; counted by its {context['counted_by']}) {fate}: "
                f"{shown}{more}."
            )
        else:
            lines.append(f"every prompt fits the model's context ({context['tokens']} tokens).")
    if info.overlap:
        lines.append("overlap with each human and gold coder (documents of this run it coded):")
        lines += [f"  {o.coder} ({o.kind}): {o.coded} of {o.of}" for o in info.overlap]
    else:
        lines.append("overlap: no human or gold coder has codes on this codebook yet.")
    lines.append(f"parameters: {info.params}")
    console.print("\n".join(lines), markup=False)
