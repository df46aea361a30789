"""Reading a codebook file: line-aware YAML, every problem with its line (lint included), one error listing them all."""

from __future__ import annotations

import difflib
import functools
import math
import os
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from yaml.nodes import MappingNode, Node, SequenceNode

from annotator.codebook.model import Codebook, Label, LabelExamples, UncertainLabel
from annotator.errors import CodebookError
from annotator.textfiles import DecodeFailure, read_text
from annotator.yamllines import YamlPath, line_at, yaml_key


@dataclass(frozen=True)
class Problem:
    """One problem in a codebook file: where it is and what is wrong."""

    source: str  # file path as given
    line: int | None  # 1-based; None when the problem has no place in the file
    field: str  # dotted path, e.g. "labels[1].definition"; "" for the whole file
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


Path_ = YamlPath


_MISSING = {
    ("Codebook", "name"): "the codebook needs a name (lowercase, e.g. sentiment)",
    ("Codebook", "version"): "the codebook needs a version number (1, then 2 after a change, ...)",
    ("Codebook", "description"): "the codebook needs a description of the concept being coded",
    ("Codebook", "labels"): "the codebook needs a list of labels (at least 2)",
    ("Label", "name"): "every label needs a name",
    ("Label", "definition"): "every label needs a definition",
    ("UncertainLabel", "definition"): "the uncertain label needs a definition (when may a coder use it?)",
}


_PATTERN = {
    "Codebook": "must be lowercase letters, digits, '_' or '-' (e.g. 'sentiment' or 'stance-v2')",
    "Label": "a label name must be one line without ';' (';' separates labels in multi-label codes)",
}


_PATTERN["UncertainLabel"] = _PATTERN["Label"]


def _fmt_path(path: Path_) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def _describe(value: object) -> str:
    kinds = {dict: "a mapping", list: "a list", str: "text", bool: "true/false", type(None): "an empty value"}
    return kinds.get(type(value), "a number" if isinstance(value, int | float) else type(value).__name__)


def _model_at(path: Path_) -> type[BaseModel] | None:
    """The model that validates the mapping at ``path`` (for its field names)."""
    match path:
        case ():
            return Codebook
        case ("labels", int()):
            return Label
        case ("labels", int(), "examples"):
            return LabelExamples
        case ("uncertain",):
            return UncertainLabel
    return None


def _friendly(err: Any) -> str:
    """A pydantic error as a sentence that says what to write instead."""
    loc, kind, value, ctx = tuple(err["loc"]), err["type"], err.get("input"), err.get("ctx") or {}
    model, field = _model_at(loc[:-1]), loc[-1] if loc else ""
    model_name = model.__name__ if model else ""
    if kind == "missing":
        return "missing: " + _MISSING.get((model_name, str(field)), f"required field '{field}'")
    if kind == "extra_forbidden":
        allowed = list(model.model_fields) if model else []
        hint = difflib.get_close_matches(str(field), allowed, n=1)
        return f"unknown field '{field}' (allowed: {', '.join(allowed)})" + (
            f"; did you mean '{hint[0]}'?" if hint else ""
        )
    if kind == "literal_error" and model:
        options = ", ".join(map(str, typing.get_args(model.model_fields[str(field)].annotation)))
        return f"{value!r} is not allowed: use one of {options}"
    if kind == "string_pattern_mismatch":
        return f"{_PATTERN.get(model_name, 'has a character that is not allowed')}, got {value!r}"
    if kind == "string_type":
        quote = " (put it in quotes)" if isinstance(value, bool | int | float) else ""
        return f"must be text, got {_describe(value)}{quote}"
    if kind in ("list_type", "too_short") and field == "labels" and model_name == "Codebook":
        return f"needs a list of at least 2 labels (one '- name: ...' entry each), got {_describe(value)}"
    messages = {
        "int_parsing": f"must be a whole number (e.g. 1), got {value!r}",
        "int_from_float": f"must be a whole number (e.g. 1), got {value!r}",
        "float_parsing": f"must be a number, got {value!r}",
        "string_too_short": "must not be empty",
        "string_too_long": f"too long: at most {ctx.get('max_length')} characters",
        "greater_than_equal": f"must be {ctx.get('ge')} or more, got {value!r}",
        "list_type": f"must be a list (one '- item' per line), got {_describe(value)}",
        "too_short": f"needs at least {ctx.get('min_length')} entries",
        "model_type": f"must be a mapping ('key: value' lines), got {_describe(value)}",
    }
    return messages.get(kind, err["msg"])


def _to_python(node: Node, path: Path_, found: list[tuple[Path_, str]], stack: set) -> Any:
    """Build plain Python data from a YAML node (lines are looked up in the node afterwards: `line_at`)."""
    if id(node) in stack:
        found.append((path, "a YAML alias refers to itself: remove the loop"))
        return None
    loader, stack = yaml.SafeLoader(""), stack | {id(node)}
    if isinstance(node, MappingNode):
        loader.flatten_mapping(node)  # resolve '<<' merge keys
        out: dict[str, Any] = {}
        seen: dict[str, int] = {}  # key -> line of its last occurrence so far
        for key_node, value_node in node.value:
            key = yaml_key(key_node)
            if key in out:
                found.append(((*path, key), f"duplicate key (first at line {seen[key]}): remove one"))
            seen[key] = key_node.start_mark.line + 1
            out[key] = _to_python(value_node, (*path, key), found, stack)
        return out
    if isinstance(node, SequenceNode):
        return [_to_python(item, (*path, i), found, stack) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _lint(data: dict[str, Any]) -> list[tuple[Path_, str]]:
    """Semantic errors the schema cannot see. Works on the raw data, so it runs beside schema errors."""
    found: list[tuple[Path_, str]] = []
    labels = data["labels"] if isinstance(data.get("labels"), list) else []
    labels = [label if isinstance(label, dict) else {} for label in labels]
    seen: dict[str, int] = {}
    for i, label in enumerate(labels):
        name = label.get("name")
        if isinstance(name, str) and name.strip() and seen.setdefault(name.strip().lower(), i) != i:
            first = seen[name.strip().lower()]
            msg = f"duplicate label {name.strip()!r}: labels[{first}] has the same name (case is ignored)"
            found.append((("labels", i, "name"), f"{msg}; rename or merge them"))
        examples = label["examples"] if isinstance(label.get("examples"), dict) else {}
        lists: list[tuple[Path_, Any]] = [(("labels", i, f), label.get(f)) for f in ("include", "exclude")]
        lists += [(("labels", i, "examples", f), examples.get(f)) for f in ("positive", "negative")]
        for path, items in lists:
            for j, item in enumerate(items if isinstance(items, list) else []):
                if isinstance(item, str) and not item.strip():
                    found.append(((*path, j), "empty entry: write the text or remove the line"))
    uncertain = data["uncertain"] if isinstance(data.get("uncertain"), dict) else {}
    uname = uncertain.get("name", "uncertain")
    if uncertain and isinstance(uname, str) and uname.strip().lower() in seen:
        where: Path_ = ("uncertain", "name") if "name" in uncertain else ("uncertain",)
        clash = f"labels[{seen[uname.strip().lower()]}]"
        found.append(
            (where, f"the uncertain label {uname.strip()!r} has the same name as {clash}: rename one")
        )
    kind, at = data.get("kind", "nominal"), lambda i: ("labels", i, "value")
    given = [i for i, label in enumerate(labels) if label.get("value") is not None]
    found += [
        (at(i), "must be a finite number, not .nan or .inf")
        for i in given
        if isinstance(labels[i]["value"], float) and not math.isfinite(labels[i]["value"])
    ]
    if kind in ("nominal", "multilabel"):
        found += [(at(i), "'value' is only for kind: ordinal; remove it or set kind: ordinal") for i in given]
    elif kind == "ordinal" and given and len(given) < len(labels):
        msg = f"missing: give every label a value or none (labels[{given[0]}] has one)"
        found += [(at(i), msg) for i in range(len(labels)) if i not in given]
    elif kind == "ordinal" and given:
        for i in range(1, len(labels)):
            prev, cur = labels[i - 1]["value"], labels[i]["value"]
            if _is_number(prev) and _is_number(cur) and cur <= prev:
                msg = f"values must increase down the list (the order of the scale): {cur} is not more than"
                found.append((at(i), f"{msg} {prev} (labels[{i - 1}])"))
    return found


def _collect(text: str, source: str) -> tuple[Codebook | None, list[Problem]]:
    """Parse and validate; return the codebook (None when any problem) and every problem, by line."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        raw: list[tuple[Path_, str]] = []
        data = _to_python(root, (), raw, set()) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = " ".join(str(x) for x in (exc.context, exc.problem) if x)
        where = f" (column {mark.column + 1})" if mark else ""
        hint = "; check the indentation, and quote text that holds ': ' or ' #'" if mark else ""
        msg = f"invalid YAML: {what}{where}" + (
            hint if isinstance(exc, yaml.scanner.ScannerError | yaml.parser.ParserError) else ""
        )
        return None, [Problem(source, mark.line + 1 if mark else None, "", msg)]
    except yaml.YAMLError as exc:
        return None, [Problem(source, None, "", f"invalid YAML: {exc}")]
    if data is None:
        msg = "the file is empty: a codebook needs name, version, description and labels"
        return None, [Problem(source, None, "", msg)]
    if not isinstance(data, dict):
        msg = f"a codebook must be a mapping (name: ..., version: ..., labels: ...), not {_describe(data)}"
        return None, [Problem(source, line_at(root, ()), "", msg)]
    raw += _lint(data)
    codebook = None
    try:
        codebook = Codebook.model_validate(data)
    except ValidationError as exc:
        raw += [(tuple(err["loc"]), _friendly(err)) for err in exc.errors()]
    problems = [Problem(source, line_at(root, path), _fmt_path(path), msg) for path, msg in raw]
    problems.sort(key=lambda p: (p.line is None, p.line or 0))
    return (codebook if not problems else None), problems


def parse_codebook(text: str, source: str = "<codebook>") -> Codebook:
    """Parse and validate YAML text; raise CodebookError listing every problem (with lines)."""
    codebook, problems = _collect(text, source)
    if codebook is None:
        more = len(problems) - 1
        tail = f" (and {more} more problem{'s' * (more > 1)}: run `annotator codebook check {source}`)"
        raise CodebookError(str(problems[0]) + (tail if more else ""), problems=problems)
    return codebook


def _not_utf8(source: str, failure: DecodeFailure) -> CodebookError:
    msg = (
        f"not UTF-8: byte 0x{failure.byte:02x} at offset {failure.offset} (line {failure.line}) cannot be "
        "decoded; save the file as UTF-8 (most editors offer it under Save As > Encoding)"
    )
    return CodebookError(f"codebook file {source} is {msg}", [Problem(source, failure.line, "", msg)])


def _read(path: str | Path) -> str:
    """The file's text (UTF-8, a BOM allowed); CodebookError for a missing or undecodable file."""
    source = str(path)
    try:
        return read_text(path, lambda failure: _not_utf8(source, failure))
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            msg = "create it or check the path (`annotator codebook list` shows the project's codebooks)"
            message, problem = f"codebook file not found: {source} — {msg}", f"file not found — {msg}"
        else:
            problem = f"cannot read the codebook file: {exc.strerror}; give the path of a readable .yaml file"
            message = f"{source}: {problem}"
        raise CodebookError(message, [Problem(source, None, "", problem)]) from None


def load_codebook(path: str | Path) -> Codebook:
    """Read a codebook file (UTF-8); missing or unreadable files raise CodebookError naming the path.

    A file read before and unchanged since (same size and modification time, to the nanosecond) is not parsed
    again: the workbench reads the codebook for every code it stores, and parsing the example codebook's YAML
    took 21 of the 31 ms a code cost (measured, 200 codes). The codebook is a frozen model, so sharing it is safe.
    """
    try:
        info = os.stat(path)
    except OSError:
        return parse_codebook(_read(path), str(path))  # _read raises the one-line message
    return _load_unchanged(str(path), info.st_mtime_ns, info.st_size)


@functools.lru_cache(maxsize=64)
def _load_unchanged(path: str, mtime_ns: int, size: int) -> Codebook:
    return parse_codebook(_read(path), path)


def check_codebook(path: str | Path) -> list[Problem]:
    """Every problem in a codebook file: YAML syntax, schema, and lint rules. Empty list when clean."""
    try:
        text = _read(path)
    except CodebookError as exc:
        return list(exc.problems)
    return _collect(text, str(path))[1]
