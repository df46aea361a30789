"""A codebook written back as YAML (canonical, readable), and the diff of two versions."""

from __future__ import annotations

import difflib
from typing import Any

import yaml

from annotator.codebook.model import Codebook


def codebook_diff(a: Codebook, b: Codebook, a_name: str = "a", b_name: str = "b") -> str:
    """A unified diff of the canonical YAML of two codebooks ('' when they are equal)."""
    lines = difflib.unified_diff(
        to_yaml(a).splitlines(keepends=True), to_yaml(b).splitlines(keepends=True), a_name, b_name
    )
    return "".join(lines)


class _Dumper(yaml.SafeDumper):
    """Block style with indented lists, and ``|`` blocks for multi-line text."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def _prune(value: Any) -> Any:
    """Drop empty lists/mappings and None so the YAML shows only what was written."""
    if isinstance(value, dict):
        pruned = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v not in (None, [], {}, "")}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def to_yaml(codebook: Codebook) -> str:
    """Canonical YAML (field order as in the model) for show, diff and export."""
    data = _prune(codebook.model_dump(mode="json"))
    return yaml.dump(
        data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100
    )
