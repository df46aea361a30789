"""A prompt template: YAML front matter (parameters, few-shot examples) and a sandboxed Jinja body whose
``[system]``/``[user]``/``[assistant]`` lines start messages; rendering, with every error at ``file:line``."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, TypedDict, cast

import jinja2
import yaml
from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from annotator.codebook import Codebook
from annotator.errors import TemplateError
from annotator.prompts import markers
from annotator.prompts.refs import PromptRef, _display
from annotator.prompts.skeleton import MAX_SKELETONS, Plan, Skeleton, meta_key, plan
from annotator.yamllines import line_at

_ROLES = ("system", "user", "assistant")
_MARKERS = {f"[{role}]": role for role in _ROLES}
_VARIABLES = ("codebook", "document", "examples", "labels", "reasoning")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class PromptParams(_Strict):
    """Model parameters stored with every run; unknown keys are refused so a typo cannot pass silently."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    seed: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    stop: str | list[str] | None = None


class Example(_Strict):
    text: str = Field(min_length=1)
    label: str = Field(min_length=1)


class PromptMeta(_Strict):
    description: str = ""
    params: PromptParams = Field(default_factory=PromptParams)
    reasoning: bool = False
    examples: list[Example] = Field(default_factory=list)


class Message(TypedDict):
    role: str
    content: str


@dataclass(frozen=True)
class DocumentInput:
    """What a template sees as ``document``: the user's id, the text (verbatim) and its metadata."""

    id: str
    text: str
    meta: dict[str, Any] = field(default_factory=dict)


_ENV = ImmutableSandboxedEnvironment(
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    autoescape=False,
)


class _View:
    """What a template sees of the codebook, the examples and the document: plain data, read-only.

    It has no public attributes, so Jinja's ``x.key`` falls back to ``x["key"]``: a metadata column named
    ``values`` or ``items`` reads the column, not a dict method, and no Python object (a pydantic model's
    classmethods, say) is reachable. (The fallback also skips the sandbox's per-attribute checks, which
    made rendering slower.)
    """

    __slots__ = ("_data",)
    _data: dict[str, Any]

    def __init__(self, data: dict[str, Any]) -> None:
        object.__setattr__(self, "_data", {key: _wrap(value) for key, value in data.items()})

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Any:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __str__(self) -> str:
        return str(self._data)


def _wrap(value: Any) -> Any:
    if isinstance(value, dict):
        return _View(value)
    if isinstance(value, (list, tuple)):
        return tuple(_wrap(item) for item in value)  # read-only, like everything a template sees
    return value


_CODEBOOK_VIEWS: dict[int, tuple[Codebook, _View]] = {}


def _codebook_view(codebook: Codebook) -> _View:
    """The codebook as template data, built once per codebook object (codebooks are immutable)."""
    cached = _CODEBOOK_VIEWS.get(id(codebook))
    if cached is not None and cached[0] is codebook:
        return cached[1]
    data = codebook.model_dump(mode="json")
    data.update(allowed_labels=codebook.allowed_labels, label_names=codebook.label_names, ref=codebook.ref)
    view = _View(data)
    if len(_CODEBOOK_VIEWS) > 64:
        _CODEBOOK_VIEWS.clear()
    _CODEBOOK_VIEWS[id(codebook)] = (codebook, view)
    return view


@dataclass(frozen=True)
class PromptTemplate:
    """A parsed, compiled template. ``sha256`` is of the LF-normalised file text: any edit changes it."""

    ref: PromptRef
    path: Path
    text: str
    meta: PromptMeta
    sha256: str
    example_lines: tuple[int, ...] = field(default=(), repr=False, compare=False)
    _template: jinja2.Template | None = field(default=None, repr=False, compare=False)
    # what the template reads of the document, when it can be rendered once per run (see prompts.skeleton)
    _plan: Plan | None = field(default=None, repr=False, compare=False)

    @property
    def source(self) -> str:
        return _display(self.path)

    @property
    def params(self) -> dict[str, Any]:
        """The model parameters that were set (None values left out), as stored with a run."""
        return self.meta.params.model_dump(exclude_none=True)

    def check_examples(self, codebook: Codebook) -> None:
        """Refuse a few-shot example whose label the codebook does not allow: it would teach a wrong label."""
        allowed = codebook.allowed_labels
        for example, line in zip(self.meta.examples, self.example_lines, strict=True):
            if example.label not in allowed:
                raise TemplateError(
                    f"{self.source}:{line}: example label {example.label!r} is not a label of codebook "
                    f"{codebook.name!r} (allowed: {', '.join(allowed)}) — fix the example"
                )

    @cached_property
    def _examples_view(self) -> tuple[Any, ...]:
        return tuple(_wrap([example.model_dump() for example in self.meta.examples]))

    def render(self, codebook: Codebook, document: DocumentInput | Any) -> list[Message]:
        """Render the chat messages for one document. Document text reaches the model verbatim.

        A template that reads the document only as plain ``{{ document.text }}`` (see
        `annotator.prompts.skeleton`) is rendered once per codebook (and metadata values it reads), and each
        document's messages are filled into that: the same messages, about 16 times faster."""
        meta, doc_id, text = document.meta, document.id, document.text
        fast = self._plan is not None and type(doc_id) is str and type(text) is str
        skeleton = self._skeleton(codebook, meta) if fast else None
        if skeleton is not None:
            return cast(list[Message], skeleton.fill(doc_id, text))
        self.check_examples(codebook)
        nonce = secrets.token_hex(16)
        data = {"id": doc_id, "text": text, "meta": dict(meta or {})}
        return self._split(self._render_text(codebook, data, nonce), nonce)

    @cached_property
    def _skeletons(self) -> dict[tuple[int, tuple[str, ...]], tuple[Codebook, Skeleton]]:
        return {}

    def _skeleton(self, codebook: Codebook, meta: dict[str, Any] | None) -> Skeleton | None:
        """The skeleton for ``codebook`` and the metadata values the template reads (None: render in full)."""
        assert self._plan is not None
        values = meta_key(self._plan, meta)
        if values is None:
            return None
        key = (id(codebook), values)
        found = self._skeletons.get(key)
        if found is not None and found[0] is codebook:
            return found[1]
        if len(self._skeletons) >= MAX_SKELETONS:
            return None
        try:
            self.check_examples(codebook)
            data = dict(meta or {})
            skeleton = Skeleton.build(
                lambda slots, nonce: self._render_text(codebook, {**slots, "meta": data}, nonce),
                self.source,
                self._first_text_line,
            )
        except Exception:  # an error: the full render raises it, as it always did
            return None
        self._skeletons[key] = (codebook, skeleton)
        return skeleton

    def _render_text(self, codebook: Codebook, document: dict[str, Any], nonce: str) -> str:
        """The output for one document (as data: id, text, meta), its role markers made with ``nonce``."""
        assert self._template is not None

        def role_marker(role: str, line: int) -> str:
            return markers.marker(nonce, role, line)

        context = {
            "codebook": _codebook_view(codebook),
            "labels": codebook.allowed_labels,
            "examples": self._examples_view,
            "reasoning": self.meta.reasoning,
            "document": _wrap(document),
            "__role__": role_marker,
        }
        try:
            return self._template.render(context)
        except Exception as exc:
            line = _template_line(exc)
            if line is None:
                raise
            what = "undefined variable" if isinstance(exc, jinja2.UndefinedError) else "template error"
            raise TemplateError(
                f"{self.source}:{line}: {what}: {exc} — the template can use: {', '.join(_VARIABLES)}"
            ) from exc

    def _split(self, rendered: str, nonce: str) -> list[Message]:
        first, parts = markers.cut(rendered, nonce)
        if first.strip():
            raise markers.text_before_first_marker(self.source, self._first_text_line())
        messages: list[Message] = []
        for role, line, content in parts:
            if not content.strip():
                raise markers.empty_message(self.source, line, role)
            messages.append(Message(role=role, content=content.strip()))
        if not any(m["role"] == "user" for m in messages):
            raise markers.no_user_message(self.source, self._first_text_line())
        return messages

    def _first_text_line(self) -> int:
        """Best guess at where stray text starts: the first non-blank body line."""
        lines = self.text.split("\n")
        for number in range(_body_start(lines) + 1, len(lines) + 1):
            if lines[number - 1].strip():
                return number
        return 1


def _template_line(exc: BaseException) -> int | None:
    """The template line where a render error happened (Jinja rewrites tracebacks to template lines)."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<prompt>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _body_start(lines: list[str]) -> int:
    """Index of the first body line: after the closing ``---`` of the front matter, or 0 without one."""
    if not lines or lines[0].rstrip() != "---":
        return 0
    for i in range(1, len(lines)):
        if lines[i].rstrip() == "---":
            return i + 1
    return -1


def parse_prompt(text: str, ref: PromptRef, path: Path | str) -> PromptTemplate:
    """Parse front matter and compile the body; the store can call this on a registered body too."""
    path = Path(path)
    source = _display(path)
    text = text.replace("\r\n", "\n")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    start = _body_start(lines)
    if start < 0:
        raise TemplateError(f"{source}:1: front matter opened by '---' is not closed — add a '---' line")
    meta, example_lines = _parse_meta("\n".join(lines[1 : start - 1]) if start else "", source)
    body = list(lines)
    for i in range(start):
        body[i] = ""  # keep the line count so Jinja line numbers are file line numbers
    for i in range(start, len(lines)):
        role = _MARKERS.get(lines[i].strip())
        if role:
            body[i] = f'{{{{ __role__("{role}", {i + 1}) }}}}'
    if not any(_MARKERS.get(line.strip()) == "user" for line in lines[start:]):
        raise TemplateError(f"{source}:{start + 1}: no [user] line — add one before {{{{ document.text }}}}")
    try:
        tree = _ENV.parse("\n".join(body), name=str(ref), filename="<prompt>")
        code = _ENV.compile(tree, name=str(ref), filename="<prompt>")
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(
            f"{source}:{exc.lineno}: template syntax error: {exc.message} — fix the template"
        ) from exc
    template = _ENV.template_class.from_code(_ENV, code, _ENV.make_globals(None))
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return PromptTemplate(ref, path, text, meta, digest, example_lines, template, plan(tree))


def _parse_meta(front: str, source: str) -> tuple[PromptMeta, tuple[int, ...]]:
    """Validate the front matter; lines are file lines (the YAML starts on line 2)."""
    try:
        node = yaml.compose(front, Loader=yaml.SafeLoader)
        data = yaml.safe_load(front)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 2 if exc.problem_mark else 1
        raise TemplateError(f"{source}:{line}: front matter is not valid YAML: {exc.problem}") from exc
    except yaml.YAMLError as exc:  # e.g. a control character (ReaderError carries no mark)
        raise TemplateError(f"{source}: front matter is not valid YAML: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise TemplateError(f"{source}:2: front matter must be a mapping (description, params, ...)")
    try:
        meta = PromptMeta.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        line = _front_line(node, tuple(error["loc"]))
        where = ".".join(str(part) for part in error["loc"]) or "front matter"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise TemplateError(
            f"{source}:{line}: front matter {where}: {error['msg']}{more} — fix the front matter"
        ) from exc
    lines = tuple(_front_line(node, ("examples", i, "label")) for i in range(len(meta.examples)))
    return meta, lines


def _front_line(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int:
    """The file line of the front matter value at a pydantic error location (the YAML starts on line 2)."""
    return (line_at(node, loc) or 1) + 1
