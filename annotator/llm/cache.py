"""The answer cache: every response keyed on what produced it (provider, model, messages, parameters, answer
schema, repeat), so an identical request is never paid for twice, whichever run asks it."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlmodel import Session, col, select

from annotator.store.models import LLMCache

LOOKUP_CHUNK = 500


def cache_key(
    model: dict[str, Any],
    messages: list[Any],
    params: dict[str, Any],
    schema_sha256: str,
    logprobs: bool,
    repeat: int,
) -> str:
    blob = json.dumps(
        [model, messages, params, schema_sha256, logprobs, repeat],
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def lookup(session: Session, keys: list[str]) -> dict[str, LLMCache]:
    found: dict[str, LLMCache] = {}
    for start in range(0, len(keys), LOOKUP_CHUNK):
        chunk = keys[start : start + LOOKUP_CHUNK]
        for row in session.exec(select(LLMCache).where(col(LLMCache.key).in_(chunk))):
            found[row.key] = row
    return found
