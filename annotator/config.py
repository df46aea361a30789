"""``annotator.toml``: what a project's settings may hold, checked when the project opens.

A misspelt key (``defualt_model``) would otherwise be ignored in silence and the default used instead, so an
unknown section or key, or a value of the wrong type, is refused with the file, the line and what is
allowed there.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from annotator.errors import ProjectError
from annotator.llm.providers import DEFAULT_MODEL


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProjectSection(_Strict):
    name: str | None = None
    default_model: str = DEFAULT_MODEL  # PROVIDER/MODEL used when `annotator run` has no --model


class DatabaseSection(_Strict):
    url: str | None = None  # any SQLAlchemy URL; ANNOTATOR_DB overrides it


class Price(_Strict):
    input: float = Field(ge=0)  # USD per million prompt tokens
    output: float = Field(ge=0)  # USD per million answer tokens


class ProjectConfig(_Strict):
    project: ProjectSection = Field(default_factory=ProjectSection)
    database: DatabaseSection = Field(default_factory=DatabaseSection)
    prices: dict[str, Price] = Field(default_factory=dict)  # [prices."openai/gpt-4o-mini"]


_HEADER = re.compile(r"^\s*\[\s*([^\]]+?)\s*\]\s*(#.*)?$")
_KEY = re.compile(r'^\s*("[^"]*"|[A-Za-z0-9_-]+)\s*=')


def _section_name(header: str) -> tuple[str, ...]:
    parts = re.findall(r'"([^"]*)"|([^.\s"]+)', header)
    return tuple(quoted or bare for quoted, bare in parts)


def _line_of(text: str, loc: tuple[Any, ...]) -> int | None:
    """The line of the key (or section header) at ``loc`` (section parts, then the key)."""
    section: tuple[str, ...] = ()
    path = tuple(str(p) for p in loc)
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            section = _section_name(header.group(1))
            if section == path:
                return number
            continue
        key = _KEY.match(line)
        if key and (*section, key.group(1).strip('"')) == path:
            return number
    if len(path) > 1:
        return _line_of(text, path[:-1])
    return None


def _allowed(model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    fields: dict[str, Any] = dict(model.model_fields)
    for part in loc[:-1]:
        info = fields.get(str(part))
        annotation = getattr(info, "annotation", None) if info is not None else None
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            fields = dict(annotation.model_fields)
        elif str(loc[0]) == "prices":
            fields = dict(Price.model_fields)
        else:
            return ""
    return ", ".join(fields)


def parse_config(data: dict[str, Any], text: str, path: Path) -> ProjectConfig:
    """Validate the parsed TOML; the first problem is raised as a ProjectError naming its line."""
    try:
        return ProjectConfig.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()  # a misspelt key first: the "field required" it causes is the same mistake
        error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        loc = tuple(error["loc"])
        line = _line_of(text, loc)
        where = f"{path}:{line}" if line else str(path)
        dotted = ".".join(f'"{p}"' if "/" in str(p) else str(p) for p in loc)
        if error["type"] == "extra_forbidden":
            allowed = _allowed(ProjectConfig, loc)
            known = f"; known here: {allowed}" if allowed else ""
            raise ProjectError(
                f"{where}: unknown setting {dotted}{known} (a misspelt key would be ignored; fix or remove it)"
            ) from None
        raise ProjectError(f"{where}: {dotted}: {error['msg'].lower()}; fix the value") from None
