"""Where a value stands in a YAML file: the line of the key or list item at a path such as
``("labels", 1, "definition")`` (a pydantic error location, or a lint rule's path), for messages that name
``file:line``. Used by the codebook parser and by the front matter of prompt templates."""

from __future__ import annotations

from collections.abc import Sequence

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

YamlPath = tuple[str | int, ...]


def yaml_key(node: Node) -> str:
    """A mapping key as the path names it: its text, or "?" for a key that is not a scalar."""
    return node.value if isinstance(node, ScalarNode) else "?"


def line_at(root: Node | None, path: Sequence[str | int]) -> int | None:
    """The 1-based line of the value at ``path`` in a composed YAML document: the line of its key in a
    mapping (of the last such key when a key is repeated), or of its item in a list; for a path that is not
    in the file (a missing field, say), the line of the deepest part of it that is. None without a document.
    """
    if root is None:
        return None
    loader, node, line = yaml.SafeLoader(""), root, root.start_mark.line
    for part in path:
        if isinstance(node, MappingNode) and isinstance(part, str):
            loader.flatten_mapping(node)  # resolve '<<' merge keys in place, as loading does
            pair = next((p for p in reversed(node.value) if yaml_key(p[0]) == part), None)
            if pair is None:
                break
            line, node = pair[0].start_mark.line, pair[1]
        elif isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line
        else:
            break
    return line + 1
