"""The command line: parse, call one library function, render. No logic lives here.

User mistakes (AnnotatorError, and the statistics' DataError) print one line on stderr and exit with status 2;
bugs stay tracebacks.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import typer

from annotator.cli import (
    baseline_cmds,
    codebook_cmds,
    compare_cmds,
    data_cmds,
    estimate_cmds,
    export_cmds,
    metrics_cmds,
    models_cmds,
    project_cmds,
    prompt_cmds,
    quickstart_cmds,
    report_cmds,
    run_cmds,
    runs_cmds,
    validate_cmds,
    workbench_cmds,
)
from annotator.cli.common import err_console, state
from annotator.errors import AnnotatorError, DataError

# typer >= 0.29 vendors its own copy of click: catch both, whichever raised
try:
    from typer._click.exceptions import ClickException as _TyperClickException
except ImportError:  # pragma: no cover - older typer uses click itself
    _TyperClickException = click.ClickException  # type: ignore[misc,assignment]
_CLICK_ERRORS = (click.ClickException, _TyperClickException)
_EXIT = (click.exceptions.Exit, typer.Exit)
_ABORT = (click.exceptions.Abort, typer.Abort)

app = typer.Typer(
    name="annotator",
    help="Code texts with LLMs and validate the result against human coders (Törnberg 2024).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        from annotator import __version__

        print(f"annotator {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    project: Path | None = typer.Option(
        None, "--project", "-p", help="Project folder (default: the nearest folder with annotator.toml)."
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version."
    ),
) -> None:
    state.project_dir = project


project_cmds.register(app)
data_cmds.register(app)
app.add_typer(codebook_cmds.app, name="codebook")
app.add_typer(prompt_cmds.app, name="prompt")
run_cmds.register(app)
runs_cmds.register(app)
models_cmds.register(app)
metrics_cmds.register(app)
validate_cmds.register(app)
estimate_cmds.register(app)
baseline_cmds.register(app)
compare_cmds.register(app)
export_cmds.register(app)
report_cmds.register(app)
workbench_cmds.register(app)
quickstart_cmds.register(app, run_cli=lambda argv: main(argv))  # handed in: no import cycle


def _read_only_note() -> None:
    """After a command on a read-only database: say which figures were computed but not stored."""
    from annotator.services.database import read_only_note

    note = read_only_note(state.project)  # never opens the database here
    if note is not None:
        err_console.print(note, markup=False, highlight=False, soft_wrap=True)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit status (tests call this directly)."""
    state.reset()  # nothing of an earlier invocation in this process carries over
    try:
        return _dispatch(argv)
    finally:
        state.project = None  # hold no engine (and no open database) after the command


def _dispatch(argv: list[str] | None) -> int:
    try:
        result = app(args=argv, prog_name="annotator", standalone_mode=False)
        _read_only_note()
    except AnnotatorError as exc:
        from annotator.cli.flags import namer

        spell = namer(typer.main.get_command(app), sys.argv[1:] if argv is None else argv)
        err_console.print(f"error: {exc.message(spell)}", markup=False, highlight=False, soft_wrap=True)
        problems = getattr(exc, "problems", None)
        if problems and state.show_problems:
            for problem in problems:
                err_console.print(f"  {problem}", markup=False, highlight=False, soft_wrap=True)
        return exc.exit_code
    except DataError as exc:  # codes the statistics cannot take (stats stays free of annotator's errors)
        err_console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        return exc.exit_code
    except _EXIT as exc:
        return int(getattr(exc, "exit_code", 0) or 0)
    except _CLICK_ERRORS as exc:  # usage errors: click's own message, exit 2
        exc.show()
        return int(exc.exit_code)
    except _ABORT:
        err_console.print("aborted", markup=False)
        return 130
    except Exception as exc:  # SQLite refusing a write the checks did not foresee: one line, not a traceback
        from annotator.services.database import read_only_error

        translated = read_only_error(exc)
        if translated is None:
            raise
        err_console.print(f"error: {translated}", markup=False, highlight=False, soft_wrap=True)
        return translated.exit_code
    return result if isinstance(result, int) else 0


def run() -> None:
    """The `annotator` command. The objects made by imports live as long as the process: ``gc.freeze()`` keeps
    the collector from scanning them again and again (a cached re-run of 10,000 labels spent 0.2 s of its 1.1 s
    in collections and at exit, measured). Not in `main`, which tests call many times in one process."""
    import gc

    gc.freeze()
    code = main()
    gc.freeze()  # what the command made: the interpreter's exit need not walk it
    sys.exit(code)
