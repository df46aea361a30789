"""Role markers in a rendered template, and the errors about the messages they make.

A ``[system]``/``[user]``/``[assistant]`` line is rendered as ``\\x00NONCE:ROLE:LINE\\x00`` (NONCE: random, per
render), and the output is cut there into messages; document text (data, never template) cannot hold the
nonce, so it can neither create a role nor end one. One place for the format and the checks, used by a full
render (`annotator.prompts.template`) and by a skeleton (`annotator.prompts.skeleton`), which must raise the
same errors in the same order.
"""

from __future__ import annotations

from annotator.errors import TemplateError


def marker(nonce: str, role: str, line: int) -> str:
    return f"\x00{nonce}:{role}:{line}\x00"


def cut(rendered: str, nonce: str) -> tuple[str, list[tuple[str, str, str]]]:
    """The text before the first marker, and each message's role, marker line and content (unstripped).

    str.split on this render's nonce: no regex to compile per render."""
    first, *marked = rendered.split(f"\x00{nonce}:")
    messages = []
    for piece in marked:
        head, _, content = piece.partition("\x00")
        role, _, line = head.partition(":")
        messages.append((role, line, content))
    return first, messages


def text_before_first_marker(source: str, line: int) -> TemplateError:
    return TemplateError(
        f"{source}:{line}: text before the first role marker — start the template with a [system] or [user] line"
    )


def empty_message(source: str, line: str, role: str) -> TemplateError:
    return TemplateError(
        f"{source}:{line}: the [{role}] message is empty — give it text or remove the marker"
    )


def no_user_message(source: str, line: int) -> TemplateError:
    return TemplateError(
        f"{source}:{line}: no [user] message was rendered — add a [user] line before {{{{ document.text }}}}"
    )
