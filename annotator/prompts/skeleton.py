"""Rendering a template once per run instead of once per document, where that gives the same messages.

Most templates use the document only as ``{{ document.text }}`` (and ``{{ document.id }}``) written out as
they are: everything else they render (the codebook, the labels, the examples, the role markers) is the
same for every document. Such a template is rendered once with a placeholder where each of those values
goes (a *skeleton*); a document's messages are then the skeleton's pieces joined around its text, stripped
and checked as a full render would be. Jinja writes an output expression out as ``str(value)`` (autoescape
is off), so the result is the same string, character for character.

Which templates qualify is decided from the template's syntax tree (`plan`), conservatively: every use of
``document`` must be either

- ``document.text`` / ``document.id`` (or ``document["text"]``) as a whole output expression, directly in the
  template, an ``if`` or a ``for`` (not in a macro, a ``call``, ``filter`` or ``set`` block, whose output
  the template could transform), or
- ``document.meta.NAME`` (or ``document.meta["NAME"]``), anywhere: the skeleton is then made for each
  combination of those metadata values that occurs (a template that reads ``document.meta.target`` gets one
  skeleton per target).

A template that does anything else with the document (a filter on its text, a test, a loop over its
metadata), or draws random values (the ``random`` filter, ``lipsum``), or switches autoescaping, is rendered
in full for every document, as before.

Why: a sandboxed Jinja render costs about 22 µs a document with the zero-shot prompt (few-shot: 53 µs) on
this 2-core machine, and a run renders every document twice (once to check that all render before the run
is created, once to ask): a cached re-run of 10,000 labels spent about 40% of its engine time there.
Rendering through a skeleton costs 1.3 µs (few-shot: 3.2 µs).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from jinja2 import nodes

from annotator.prompts import markers

_SLOTS = ("id", "text")  # the document values a skeleton leaves open, in this order
_CONTAINERS = (nodes.Template, nodes.If, nodes.For, nodes.With, nodes.Scope)  # whose output is written as is
MAX_SKELETONS = 256  # per template and codebook: beyond this many metadata combinations, render in full

Piece = str | int  # literal text, or the index of a slot in _SLOTS


@dataclass(frozen=True)
class Plan:
    """What a template reads of the document: the metadata names its skeletons are made per."""

    meta: tuple[str, ...]


def _const_name(node: nodes.Node) -> str | None:
    """``x.NAME`` or ``x["NAME"]``: NAME; anything else: None."""
    if isinstance(node, nodes.Getattr):
        return node.attr
    if (
        isinstance(node, nodes.Getitem)
        and isinstance(node.arg, nodes.Const)
        and isinstance(node.arg.value, str)
    ):
        return node.arg.value
    return None


def plan(tree: nodes.Template) -> Plan | None:
    """The template's plan when it qualifies for a skeleton (see the module's docstring), else None."""
    meta: set[str] = set()
    ok = True

    def visit(node: nodes.Node, parents: list[nodes.Node]) -> None:
        nonlocal ok
        if not ok:
            return
        if isinstance(node, nodes.EvalContextModifier) or (
            isinstance(node, nodes.Filter) and node.name == "random"
        ):
            ok = False
            return
        if isinstance(node, nodes.Name) and node.name == "lipsum":
            ok = False
            return
        if isinstance(node, nodes.Name) and node.name == "document":
            ok = _document_use(node, parents, meta)
            return
        parents.append(node)
        for child in node.iter_child_nodes():
            visit(child, parents)
        parents.pop()

    visit(tree, [])
    return Plan(tuple(sorted(meta))) if ok else None


def _document_use(name: nodes.Name, parents: list[nodes.Node], meta: set[str]) -> bool:
    """Whether this use of ``document`` is one a skeleton reproduces (recording a metadata name it reads)."""
    if name.ctx != "load" or not parents:
        return False
    access = parents[-1]
    what = _const_name(access) if getattr(access, "node", None) is name else None
    if what == "meta" and len(parents) >= 2:
        outer = parents[-2]
        key = _const_name(outer) if getattr(outer, "node", None) is access else None
        if key is None:
            return False
        meta.add(key)
        return True
    if what not in _SLOTS or len(parents) < 2:
        return False
    output = parents[-2]
    if not isinstance(output, nodes.Output) or not any(child is access for child in output.nodes):
        return False
    return all(isinstance(parent, _CONTAINERS) for parent in parents[:-2])


_MISSING = object()
_SCALARS = (str, int, float, bool, type(None))


def _plain(value: Any, depth: int = 0) -> bool:
    """JSON data of the built-in types (what metadata read from the database is): its JSON text tells it
    apart from any other such value that renders differently (1 from 1.0 and True; key order is kept)."""
    if type(value) in _SCALARS:
        return True
    if depth > 20:
        return False
    if type(value) in (list, tuple):
        return all(_plain(v, depth + 1) for v in value)
    if type(value) is dict:
        return all(type(k) is str and _plain(v, depth + 1) for k, v in value.items())
    return False


def meta_key(plan: Plan, meta: dict[str, Any] | None) -> tuple[str, ...] | None:
    """The metadata values a skeleton is made for, as a key (None: a value that cannot be one)."""
    if not plan.meta:
        return ()
    meta = meta or {}
    key = []
    for name in plan.meta:
        value = meta.get(name, _MISSING)
        if value is _MISSING:
            key.append("")  # missing: not a JSON text, so it cannot meet a value's key
        elif _plain(value):
            key.append(json.dumps(value, ensure_ascii=False))
        else:
            return None
    return tuple(key)


@dataclass(frozen=True)
class _Message:
    role: str
    line: str
    template: str  # the content before it is stripped, as a str.format template: {0} the id, {1} the text
    constant: str | None  # the stripped content when it holds no slot


def _pieces(text: str, slots: Sequence[str]) -> tuple[Piece, ...]:
    """``text`` cut at each slot's placeholder: literal strings and slot indexes."""
    out: list[Piece] = [text]
    for index, marker in enumerate(slots):
        cut: list[Piece] = []
        for piece in out:
            if isinstance(piece, int):
                cut.append(piece)
                continue
            parts = piece.split(marker)
            for n, part in enumerate(parts):
                if n:
                    cut.append(index)
                if part:
                    cut.append(part)
        out = cut
    return tuple(out)


def _template(pieces: tuple[Piece, ...]) -> str:
    """The pieces as a str.format template (literal braces doubled): filled in C, not a Python loop."""
    return "".join(
        f"{{{p}}}" if isinstance(p, int) else p.replace("{", "{{").replace("}", "}}") for p in pieces
    )


@dataclass(frozen=True)
class Skeleton:
    """A template rendered with placeholders for the document's id and text, cut into messages."""

    head: str | None  # what came before the first role marker (must strip to nothing): a template, if any
    messages: tuple[_Message, ...]
    has_user: bool
    source: str
    first_text_line: Callable[[], int]

    @classmethod
    def build(
        cls, render: Callable[[Any, str], str], source: str, first_text_line: Callable[[], int]
    ) -> Skeleton:
        """Render once through ``render(document, nonce)`` with placeholders, and cut the output."""
        nonce = secrets.token_hex(16)
        slots = [f"\x01{nonce}:{slot}\x01" for slot in _SLOTS]
        first, parts = markers.cut(render(dict(zip(_SLOTS, slots, strict=True)), nonce), nonce)
        messages: list[_Message] = []
        for role, line, content in parts:
            pieces = _pieces(content, slots)
            constant = None if any(isinstance(p, int) for p in pieces) else content.strip()
            messages.append(_Message(role, line, _template(pieces), constant))
        return cls(
            _template(_pieces(first, slots)) if first else None,
            tuple(messages),
            any(m.role == "user" for m in messages),
            source,
            first_text_line,
        )

    def fill(self, doc_id: str, text: str) -> list[dict[str, str]]:
        """The messages for one document (its id and text: strings), with the errors a full render raises,
        in the same order."""
        if self.head is not None and self.head.format(doc_id, text).strip():
            raise markers.text_before_first_marker(self.source, self.first_text_line())
        out: list[dict[str, str]] = []
        for message in self.messages:
            content = message.constant
            if content is None:
                content = message.template.format(doc_id, text).strip()
            if not content:
                raise markers.empty_message(self.source, message.line, message.role)
            out.append({"role": message.role, "content": content})
        if not self.has_user:
            raise markers.no_user_message(self.source, self.first_text_line())
        return out
