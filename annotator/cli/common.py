"""What every command group shares: the selected project, consoles, and --json output."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from annotator.project import Project


# piped or captured output gets room for its tables (rich assumes 80 columns when there is no terminal)
console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


@dataclass
class _State:
    """What one invocation of the CLI carries from parsing to its end; main() resets it before each one, so
    nothing (a --project, a command's wish to list every problem, an open project) leaks into the next
    invocation in the same process."""

    project_dir: Path | None = None
    show_problems: bool = False  # an error's whole problem list is printed (`codebook check`)
    project: Project | None = None  # the last project a command asked for (main() reads it afterwards)

    def reset(self) -> None:
        self.project_dir = None
        self.show_problems = False
        self.project = None


state = _State()


def get_project(write: bool = True) -> Project:
    """The selected project. ``write=False`` for a command that only reads: it then also works on a database
    this process cannot write (opened read-only). A command that writes gets a one-line refusal on such a
    database here, before it does anything."""
    from annotator.project import find_project

    project = find_project(state.project_dir)
    if write:
        project.check_writable()
    state.project = project
    return project


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str, ensure_ascii=False))


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> Table:
    out = Table(title=title, title_justify="left", show_edge=False, header_style="bold")
    for name in columns:
        out.add_column(
            name, justify="right" if name in {"n", "codes", "runs", "items", "id", "dev", "test"} else "left"
        )
    for row in rows:
        out.add_row(*("" if v is None else str(v) for v in row))
    return out


def run_ids(text: str | None) -> list[int] | None:
    """``--runs 7,8`` (or ``run:7,run:8``) as run ids; None when not given."""
    from annotator.errors import InputError

    if text is None:
        return None
    out = []
    for part in text.split(","):
        part = part.strip().removeprefix("run:")
        if not part:
            continue
        if not part.isdigit():
            raise InputError(
                f"--runs: {part!r} is not a run id; use e.g. --runs 7,8 (`annotator runs` lists them)"
            )
        out.append(int(part))
    return out or None
