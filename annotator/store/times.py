"""Times as the database keeps them: aware UTC. Apart from the models so that a reader that does without
them (store/overview.py, for `annotator status`) reads times the same way."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(t: datetime | None) -> datetime | None:
    """``t`` as an aware UTC time (a naive time, as SQLite returns it, is taken to be UTC); None stays None."""
    if t is None:
        return None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
