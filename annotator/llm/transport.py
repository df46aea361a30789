"""Chat-completion requests over one pooled aiohttp session, with retries and adaptive concurrency.

Why not the openai SDK (with instructor) here: on a 2-core machine the SDK's async client and instructor
cost about 5 ms of CPU per label (measured), which caps a labeler near half of what a 32-wide pool at 100 ms
latency allows. A plain pooled HTTP client costs well under 1 ms. The protocol is the same one every provider
speaks, and the answer is still validated against a pydantic model built from the codebook (response.py).

Retries: 429 and 5xx (honouring Retry-After), timeouts and dropped connections, with exponential backoff
and jitter. While 429s come, the number of requests in flight halves (down to 1) and grows back by one per
window of successes. 401/403/404 stop the run: every other item would fail the same way.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp

from annotator.errors import AnnotatorError
from annotator.redaction import redact_text

RETRY_STATUSES = {408, 409, 425, 429, 500, 502, 503, 504}


class RunAborted(AnnotatorError):
    """A failure that every request would meet (bad key, unknown model, wrong URL): the run stops."""


class RetryableError(Exception):
    def __init__(self, message: str, retry_after: float | None = None, rate_limited: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.rate_limited = rate_limited


class RequestFailed(Exception):
    """This item cannot be answered (after retries, or a 4xx the server will always give it)."""

    def __init__(self, message: str, attempts: int, transient: bool = False) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.transient = transient  # network/server trouble rather than something about this item


@dataclass
class Completion:
    content: str | None
    logprobs: list[dict[str, Any]] | None
    tokens_in: int
    tokens_out: int
    latency_ms: float
    model: str | None
    attempts: int = 1


@dataclass
class Backoff:
    retries: int = 5
    base_s: float = 0.5
    cap_s: float = 30.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, 120.0) + random.uniform(0, 0.25)
        return min(self.cap_s, self.base_s * 2**attempt) * random.uniform(0.5, 1.0)


@dataclass
class AdaptiveLimit:
    """How many requests may be in flight: halved on a 429, +1 after `limit` successes in a row."""

    maximum: int
    limit: int = 0
    active: int = 0
    _successes: int = 0
    _cut_at: float = 0.0
    _cond: asyncio.Condition = field(default_factory=asyncio.Condition)

    def __post_init__(self) -> None:
        self.limit = self.limit or self.maximum

    async def __aenter__(self) -> None:
        async with self._cond:
            await self._cond.wait_for(lambda: self.active < self.limit)
            self.active += 1

    async def __aexit__(self, *exc: object) -> None:
        async with self._cond:
            self.active -= 1
            self._cond.notify_all()

    def rate_limited(self, started: float) -> None:
        """Halve the limit, once per burst: 429s to requests sent before the last cut do not count again."""
        if started < self._cut_at:
            return
        self._cut_at = time.monotonic()
        self.limit = max(1, self.limit // 2)
        self._successes = 0

    async def succeeded(self) -> None:
        if self.limit >= self.maximum:
            return
        self._successes += 1
        if self._successes >= self.limit:
            self._successes = 0
            async with self._cond:
                self.limit += 1
                self._cond.notify_all()


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


class ChatClient:
    """One pooled HTTP session to an OpenAI-compatible server."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        timeout_s: float,
        connections: int,
        key_env: str | None = None,
    ) -> None:
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.url = f"{base_url}/chat/completions"
        self._secrets = [api_key]  # a server's text may echo the key: it is redacted before it goes anywhere
        self.reached = False  # whether the server ever answered (with any status)
        self.key_env = key_env
        self.timeout_s = timeout_s
        self._session = aiohttp.ClientSession(
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            connector=aiohttp.TCPConnector(limit=max(1, connections), ttl_dns_cache=300),
        )

    def _clean(self, exc: BaseException) -> str:
        return redact_text(str(exc), self._secrets) or ""

    async def close(self) -> None:
        await self._session.close()

    async def once(self, payload: dict[str, Any]) -> Completion:
        """One HTTP attempt; raises RetryableError, RequestFailed or RunAborted."""
        start = time.perf_counter()
        try:
            async with self._session.post(self.url, data=json.dumps(payload)) as response:
                body = await response.read()
                status = response.status
                retry_after = _retry_after(response.headers.get("Retry-After"))
        except TimeoutError:
            raise RetryableError(f"no answer within {self.timeout_s:g} s") from None
        except aiohttp.ClientConnectorError as exc:
            if not self.reached:  # never answered: a wrong URL or a server that is not running
                raise RunAborted(
                    f"cannot connect to {self.url} ({exc.os_error or exc}); is the server running and the "
                    "base URL right?"
                ) from None
            raise RetryableError(f"connection failed ({type(exc).__name__}: {self._clean(exc)})") from None
        except aiohttp.ClientError as exc:
            raise RetryableError(f"connection failed ({type(exc).__name__}: {self._clean(exc)})") from None
        self.reached = True
        latency = (time.perf_counter() - start) * 1000
        if status != 200:
            text = redact_text(body.decode("utf-8", "replace"), self._secrets) or ""
            snippet = text[:300].replace("\n", " ")
            if status in RETRY_STATUSES or status >= 500:
                raise RetryableError(f"HTTP {status}: {snippet}", retry_after, rate_limited=status == 429)
            if status in (401, 403):
                hint = f"; check {self.key_env}" if self.key_env else ""
                raise RunAborted(f"the server refused the credentials (HTTP {status}){hint}: {snippet}")
            if status == 404:
                raise RunAborted(f"HTTP 404 from {self.url}: wrong base URL or unknown model: {snippet}")
            raise RequestFailed(f"HTTP {status}: {snippet}", attempts=1)
        try:
            data = json.loads(body)
            choice = data["choices"][0]
            content = choice["message"].get("content")
        except (ValueError, KeyError, IndexError, TypeError):
            text = redact_text(body.decode("utf-8", "replace"), self._secrets) or ""
            raise RetryableError(f"malformed response body: {text[:200]!r}") from None
        usage = data.get("usage") or {}
        logprobs = (choice.get("logprobs") or {}).get("content")
        return Completion(
            content=content,
            logprobs=logprobs,
            tokens_in=int(usage.get("prompt_tokens") or 0),
            tokens_out=int(usage.get("completion_tokens") or 0),
            latency_ms=latency,
            model=data.get("model"),
        )

    async def complete(self, payload: dict[str, Any], limit: AdaptiveLimit, backoff: Backoff) -> Completion:
        """A request with retries: the completion, or RequestFailed after the last attempt."""
        attempt = 0
        while True:
            started = time.monotonic()
            try:
                async with limit:
                    completion = await self.once(payload)
            except RetryableError as exc:
                if exc.rate_limited:
                    limit.rate_limited(started)
                if attempt >= backoff.retries:
                    raise RequestFailed(
                        f"{exc} (gave up after {attempt + 1} attempts)", attempt + 1, transient=True
                    ) from None
                await asyncio.sleep(backoff.delay(attempt, exc.retry_after))
                attempt += 1
                continue
            except RequestFailed as exc:
                exc.attempts = attempt + 1
                raise
            await limit.succeeded()
            completion.attempts = attempt + 1
            return completion
