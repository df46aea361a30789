"""How the CLI spells a parameter a service names in an error (`annotator.errors.arg`).

A service says ``n_boot=0: use at least 1 replicate``; the user typed ``--bootstrap 0``, so the CLI prints
``--bootstrap 0: use at least 1 replicate``. The flag is read from the command the user ran (its click
parameters), so a flag renamed in the CLI is renamed in every message; ``ALIASES`` holds the few service
parameters whose CLI parameter has another Python name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

# service parameter -> the CLI function's parameter (whose flag is printed), where the two names differ
ALIASES = {
    "n_boot": "bootstrap",
    "overwrite": "force",
    "explicit": "project",  # find_project(explicit=...): the root option --project
}


def _subcommands(cmd: Any) -> dict[str, Any]:
    return dict(getattr(cmd, "commands", None) or {})


def _walk(cmd: Any) -> Iterator[Any]:
    yield cmd
    for sub in _subcommands(cmd).values():
        yield from _walk(sub)


def _invoked(root: Any, argv: Sequence[str]) -> list[Any]:
    """The commands on the path the arguments name, innermost first (then the root)."""
    path = [root]
    for token in argv:
        sub = _subcommands(path[-1]).get(token)
        if sub is not None:
            path.append(sub)
    return path[::-1]


def _param(commands: list[Any], name: str) -> Any | None:
    for cmd in commands:
        for p in getattr(cmd, "params", []):
            if p.name == name:
                return p
    return None


def _spell(p: Any, text: str | None) -> str:
    if getattr(p, "param_type_name", "") == "argument":
        return text if text is not None else str(p.name).upper()
    longs = [o for o in p.opts if o.startswith("--")] or list(p.opts)
    flag = max(longs, key=len)
    return flag if text is None or getattr(p, "is_flag", False) else f"{flag} {text}"


def namer(root: Any, argv: Sequence[str]) -> Callable[[str, str | None, str | None], str]:
    """A namer for `annotator.errors.render`: each parameter as the command run with ``argv`` spells it;
    one no command has stays in its Python spelling."""
    from annotator.errors import python_arg

    invoked = _invoked(root, argv)

    def spell(name: str, text: str | None, python: str | None) -> str:
        cli_name = ALIASES.get(name, name)
        if python == "":  # `annotator.errors.named`: the flag alone
            text = None
        p = _param(invoked, cli_name)
        if p is not None:
            return _spell(p, text)
        # named by a service this command calls indirectly: another command's flag, if all spell it alike
        spelled = {
            _spell(q, text) for c in _walk(root) for q in getattr(c, "params", []) if q.name == cli_name
        }
        return spelled.pop() if len(spelled) == 1 else python_arg(name, text, python)

    return spell
