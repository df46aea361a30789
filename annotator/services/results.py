"""Typed results and the schema version of stored ones.

``Result`` is the base of the services' typed results (``annotator.services.plan.Plan``,
``annotator.services.status.Status``): frozen dataclasses whose ``to_json()`` is the JSON the CLI prints.

Every result stored as a metrics row (agreement, validation, compare) carries ``"schema": N`` in its result,
N the shape this version writes (``SCHEMAS``). A reader checks it with ``schema_of``: rows written before
the key existed read as schema 0 (``LEGACY``), and a row of another schema is not read as a current one.
Change a kind's number whenever its stored shape changes in a way a reader must know about.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

SCHEMA_KEY = "schema"
LEGACY = 0  # rows stored before results carried a schema
AGREEMENT_SCHEMA = 1  # every run figure on the units it coded (the coverage rule), with min_units
VALIDATION_SCHEMA = 1  # each run scored on the gold items it was asked ("scope": "asked")
COMPARE_SCHEMA = 1  # the leaderboard under the coverage rule, alpha vs the human majority per run
SCHEMAS = {
    "agreement": AGREEMENT_SCHEMA,
    "validation": VALIDATION_SCHEMA,
    "compare": COMPARE_SCHEMA,
    "compare_prompts": COMPARE_SCHEMA,
    "estimate": 1,  # annotator estimate: three-way shares on the run's asked set, with the design assumed
    "estimate_runs": 1,  # annotator estimate --across-runs
}


@dataclass(frozen=True)
class Result:
    """A service's typed result; ``to_json()`` gives its JSON-ready dict (fields in declaration order)."""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def stamped(kind: str, result: dict[str, Any]) -> dict[str, Any]:
    """The result as stored in a metrics row of ``kind``: with the schema this version writes."""
    return result | {SCHEMA_KEY: SCHEMAS[kind]}


def schema_of(result: dict[str, Any] | None) -> Any:
    """A stored result's schema: ``LEGACY`` (0) when it has none, else the stored value as it is."""
    return (result or {}).get(SCHEMA_KEY, LEGACY)


def readable(kind: str, result: dict[str, Any] | None) -> bool:
    """Whether this version reads a stored result of ``kind``: the current schema, or a legacy row (whose
    reader then applies the checks it applied before results carried a schema)."""
    schema = schema_of(result)
    return type(schema) is int and schema in (LEGACY, SCHEMAS.get(kind))
