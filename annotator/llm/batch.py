"""A run through a provider's Batch API (`annotator run --batch`): the same requests as a live run, sent as
files to OpenAI's or Groq's Batch API (half the price, answered within 24 hours), and stored exactly as a
live run stores them.

How: a batch run is the live engine with the answer cache as its only source of answers. A pass over the
run's missing items (`BatchEngine.pending`) records every item the cache answers (first asks and re-asks,
validated and stored as a live run does) and returns the request each other item needs next, by its cache
key. Those requests go to the provider as JSONL files, each line's ``custom_id`` its cache key (two documents
with the same text and parameters make one request), in files under the provider's limits (`split`).
Collecting a finished batch (`read_output`) puts each answer in the cache under its key; the next pass
records them, and sends the re-asks of answers that did not validate as the next batch. So every answer is
cached (nothing is asked twice across live and batch runs), invalid output stays invalid with its raw text,
and an answer the run's own batch paid for is recorded as this run's request, not as `cached`
(`BatchEngine.owned`). The provider I/O is in `annotator.llm.batch_api`; the loop in
`annotator.services.batch_run`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from annotator.llm.cache import CachedCompletion
from annotator.llm.labeler import CACHED_STEP, Engine, NeedsRequest
from annotator.llm.spec import Item
from annotator.redaction import redact_text

# What a provider's Batch API takes in one file: OpenAI 50,000 requests and 200 MB; Groq 50,000 and 100 MB
# (their documentation, 2025). A little under the byte limit: the provider counts the file as it stores it.
MAX_LINES = 50_000
MAX_BYTES = 95_000_000
ENDPOINT = "/v1/chat/completions"


@dataclass
class Needed:
    """A request some items need next: its body, and the items whose answer it is."""

    body: dict[str, Any]
    items: list[Item] = field(default_factory=list)


class BatchEngine(Engine):
    """The run engine without a request pool: it answers from the cache, and says what else it needs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.owned: set[str] = set()  # cache keys this run's batches asked for: answers this run paid for
        # of those, the item (document, repeat) whose request each was: documents sharing a request are cached
        self._payers: dict[str, tuple[int, int]] = {}

    def _from_cache(self, key: str, hit: Any, item: Item) -> CachedCompletion:
        completion = CachedCompletion.of(hit)
        me = (item.document_id, item.repeat)
        if key in self.owned and self._payers.setdefault(key, me) == me:  # its request, tokens and cost
            completion.attempts = 1
        return completion

    async def pending(self, items: list[Item]) -> dict[str, Needed]:
        """Record every item the cache answers; return the request each other item needs next, by cache key."""
        needed: dict[str, Needed] = {}
        for start in range(0, len(items), CACHED_STEP):
            for work in self._prepare(items[start : start + CACHED_STEP]):
                try:
                    await self._label(None, None, work)
                except NeedsRequest as need:
                    entry = needed.get(need.key)
                    self._payers.setdefault(need.key, (work.item.document_id, work.item.repeat))
                    if entry is None:
                        entry = needed[need.key] = Needed(self.r.payload(need.messages, work.params))
                    entry.items.append(work.item)
            self.flush(wait=True)
        return needed

    def fail(self, needed: Needed, error: str) -> None:
        """Store the items of a request the batch did not answer as errors (a resume sends it again)."""
        for item in needed.items:
            self.answers.record(item, "error", None, None, error, None, 1, False, (0, 0))


def lines(needed: dict[str, Needed]) -> list[bytes]:
    """One JSONL line per request: ``custom_id`` is its cache key."""
    return [
        json.dumps(
            {"custom_id": key, "method": "POST", "url": ENDPOINT, "body": want.body},
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode("utf-8")
        + b"\n"
        for key, want in needed.items()
    ]


def split(rows: list[bytes], max_lines: int | None = None, max_bytes: int | None = None) -> list[list[bytes]]:
    """The lines in files of at most ``max_lines`` lines and ``max_bytes`` bytes (default: the providers'
    limits above), in order."""
    max_lines, max_bytes = max_lines or MAX_LINES, max_bytes or MAX_BYTES
    files: list[list[bytes]] = []
    size = 0
    for row in rows:
        if len(row) > max_bytes:
            raise ValueError(f"one request is {len(row):,} bytes, more than a batch file may hold")
        if not files or len(files[-1]) >= max_lines or size + len(row) > max_bytes:
            files.append([])
            size = 0
        files[-1].append(row)
        size += len(row)
    return files


@dataclass
class Collected:
    """What a finished batch's files hold: the answers by cache key, and the requests that failed."""

    answers: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> the chat completion body
    errors: dict[str, str] = field(default_factory=dict)  # key -> why it has no answer (redacted)


def read_output(text: str, asked: set[str], secrets: list[str | None], into: Collected) -> Collected:
    """Read a batch output or error file (JSONL) into ``into``: a line answers a key this run asked for
    (any other ``custom_id`` is ignored: the file is the provider's, not trusted), with a chat completion
    (status 200) or an error, whose text is redacted."""
    for raw in text.split("\n"):  # not splitlines(): JSON strings may hold U+2028 and its kind unescaped
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
            key = line["custom_id"]
        except (ValueError, KeyError, TypeError):
            continue  # not a line of ours; the keys it should have answered end as errors below
        if key not in asked or key in into.answers:
            continue
        response = line.get("response") or {}
        body = response.get("body") if isinstance(response, dict) else None
        status = response.get("status_code") if isinstance(response, dict) else None
        if status == 200 and isinstance(body, dict) and body.get("choices"):
            into.answers[key] = body
            into.errors.pop(key, None)
            continue
        into.errors[key] = _line_error(line.get("error"), status, body, secrets)
    return into


def _line_error(error: Any, status: Any, body: Any, secrets: list[str | None]) -> str:
    detail = error if error else (body.get("error") if isinstance(body, dict) else body)
    if isinstance(detail, dict):
        detail = detail.get("message") or detail.get("code") or json.dumps(detail)[:300]
    text = redact_text(str(detail or "no answer"), secrets) or ""
    where = f"HTTP {status}: " if status else ""
    return f"the batch request failed ({where}{text[:300]})"


def completion_fields(body: dict[str, Any]) -> dict[str, Any]:
    """The cache row's fields of a chat completion body (as the live engine's `AnswerRecorder.remember`)."""
    choice = (body.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    usage = body.get("usage") or {}
    return {
        "content": message.get("content") if isinstance(message.get("content"), str) else "",
        "logprobs": (choice.get("logprobs") or {}).get("content"),
        "tokens_in": int(usage.get("prompt_tokens") or 0),
        "tokens_out": int(usage.get("completion_tokens") or 0),
        "model": body.get("model") if isinstance(body.get("model"), str) else None,
    }
