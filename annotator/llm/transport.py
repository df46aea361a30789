"""Chat-completion requests through the provider's official SDK client, with one retry policy and adaptive
concurrency.

Each provider's own client (``openai.AsyncOpenAI`` for OpenAI, any OpenAI-compatible server and the embedded
local model; ``groq.AsyncGroq`` for Groq; the SDK is named by ``ProviderInfo.sdk``) brings its base URL, its
authentication and its typed errors, on the SDK's aiohttp backend, with the SDK's own retries off: the engine
keeps one retry policy (below), not two stacked. The request goes through the client's documented low-level
call (``client.post("/chat/completions", body=..., cast_to=str)``) and the answer's JSON is read here.

Why not the typed ``client.chat.completions.create()``: it validates the request and builds pydantic models of
the answer, which costs CPU the engine needs at high concurrency. Measured here (2 cores, a loopback server at
100 ms, concurrency 32, 3,000 requests; the client alone): plain aiohttp 306-310 labels/s at 0.15 ms CPU per
label; the SDK's ``post`` with ``cast_to=str`` 290-300/s at 0.5-0.7 ms (0.95x); ``create()`` 273-285/s at
0.85-1.16 ms (0.91x). The answer is validated anyway, against the pydantic model built from the codebook
(response.py).

Retries: a 429 is waited through (honouring Retry-After) for up to --max-wait seconds per item; 5xx,
timeouts and dropped connections are retried --retries times, with exponential backoff and jitter. The number
of requests in flight adapts to 429s (AdaptiveLimit: a cut at most once per window, never below the goodput
the server has shown, doubling back each window without a 429). 401/403/404 stop the run: every other item
would fail the same way. Anthropic, Gemini, Mistral and Ollama's native API go through their own SDKs
(llm/instructed.py: a ChatClient with its own ``once``); `chat_client` picks the client for a model.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import math
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

from pydantic import BaseModel

from annotator.errors import AnnotatorError
from annotator.llm.providers import ModelRef
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

    def __init__(
        self, message: str, attempts: int, transient: bool = False, waited_s: float | None = None
    ) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.transient = transient  # network/server trouble rather than something about this item
        self.waited_s = waited_s  # set when rate limits outlasted --max-wait: how long the item waited

    @property
    def rate_limited(self) -> bool:
        return self.waited_s is not None


@dataclass
class Completion:
    content: str | None
    logprobs: list[dict[str, Any]] | None
    tokens_in: int
    tokens_out: int
    latency_ms: float
    model: str | None
    attempts: int = 1
    waited_s: float = 0.0  # time spent waiting through rate limits before this answer came


MAX_WAIT_S = 300.0  # default --max-wait: how long one item waits through rate limits before it gives up


@dataclass
class Backoff:
    """When to try a request again, and when to give up on it.

    A 429 says "later", not "never": the item waits (Retry-After when the server gives one, else capped
    exponential backoff) for as long as ``max_wait_s`` allows, counted from its first 429; a wait that would
    end past that budget (a Retry-After of an hour) ends it at once. Other retryable failures (5xx, timeouts,
    dropped connections) are tried ``retries`` more times: they may mean something is broken, which waiting
    does not mend.
    """

    retries: int = 5
    max_wait_s: float = MAX_WAIT_S
    base_s: float = 0.5
    cap_s: float = 30.0
    rate_cap_s: float = 10.0  # a 429 without Retry-After: look again at least this often (a storm may end)

    def delay(self, attempt: int, retry_after: float | None, rate_limited: bool = False) -> float:
        if retry_after is not None:
            return min(retry_after, 120.0) + random.uniform(0, 0.25)
        cap = self.rate_cap_s if rate_limited else self.cap_s
        return min(cap, self.base_s * 2**attempt) * random.uniform(0.5, 1.0)


BETA = 0.7  # a cut keeps this share of the limit
GROWTH = 2.0  # a window without a 429 multiplies the limit by this (at least +1)
HEADROOM = 1.25  # the floor: the in-flight requests the measured goodput needs, times this
MIN_WINDOW_S = 0.05  # the shortest window, whatever the latency
MAX_CUT_WINDOW_S = 10.0  # a long Retry-After spaces cuts at most this far apart
GOODPUT_WINDOW_S = 2.0  # how far back the goodput is measured (at least 4 round trips)


@dataclass
class AdaptiveLimit:
    """How many requests may be in flight: AIMD on a clock, never below the goodput the server has shown.

    Once per window with a 429 (a window: one round trip, the smoothed latency of answered requests, or the
    Retry-After the 429 carried, whichever is longer), the limit becomes ``BETA`` (0.7) times itself or
    ``HEADROOM`` (1.25) times the goodput, whichever is more; each window that passes without a 429 multiplies
    it by ``GROWTH`` (2), up to the maximum. A 429 to a request sent before the last change does not count.

    Why:
    - A 429 is a signal per window, not per request. The previous rule halved the limit for every 429 to a
      request sent after the last cut and added 1 per ``limit`` answers: a storm in which every other request
      gets 429 held it near 1 request in flight, and coming back from 1 to 32 took about 500 answers.
    - The goodput is what the server has shown it accepts: the requests it answered, in flight on average
      over the last ``GOODPUT_WINDOW_S`` (Little's law: the sum of their latencies over the span). A server
      that answers 80/s at 100 ms takes 8 in flight; holding fewer can only lower the rate it accepts,
      whatever share of the rest it refuses, so no cut goes below that. The headroom lets the limit climb
      (by at most 1.25 per window) while 429s go on, when the server would take more. A server that answers
      nothing gives a goodput of 0, and the limit goes down to 1 by ``BETA`` per window.
    - Retry-After itself is honoured by the item that got it: it waits, holding no slot (Backoff, Engine).
    - Multiplicative growth brings the limit back to the maximum in log2(maximum) round trips once the 429s
      stop.

    Measured (benchmarks/bench_labeling.py: the `annotator run` CLI, 7,500 labels, concurrency 32, against a
    loopback server that admits 80 requests/s at 100 ms and answers 429 above that; a 60 s storm in which
    every other request gets 429 Retry-After: 1, then a 10 s outage in which every request does): 78.6
    labels/s during the storm (98% of the 80/s admitted), 0 errors, back to 90% of the admitted rate 0.2-0.3 s
    after the outage. The same run under the previous rule (and --retries counting 429s): 10.4 labels/s
    during the storm (13%), 74 items in error, and 64-67 labels/s with no storm at all.

    ``clock`` is injectable so that tests drive the windows without waiting.
    """

    maximum: int
    clock: Callable[[], float] = time.monotonic
    limit: int = 0
    active: int = 0
    changes: int = 0  # how often 429s changed the limit (for figures and tests)
    _cond: asyncio.Condition = field(default_factory=asyncio.Condition)
    _cut_at: float = -math.inf  # when the limit was last cut (or a cut was held at the floor)
    _changed_at: float = -math.inf  # when the limit was last cut or grown
    _last_429: float = -math.inf
    _srtt: float | None = None  # smoothed latency of answered requests, seconds
    _first: float | None = None  # when the first answered request was sent
    _answered: deque[tuple[float, float]] = field(default_factory=deque)  # (answered at, latency s)
    _busy: float = 0.0  # the sum of the latencies in _answered

    def __post_init__(self) -> None:
        self.maximum = max(1, self.maximum)
        self.limit = min(self.limit or self.maximum, self.maximum)

    def now(self) -> float:
        return self.clock()

    def window(self) -> float:
        """One round trip: the span in which a change of the limit shows its effect."""
        return max(MIN_WINDOW_S, self._srtt or 0.0)

    def _forget(self, now: float) -> float:
        """Drop answers older than the goodput's span; returns the span."""
        span = max(GOODPUT_WINDOW_S, 4 * self.window())
        while self._answered and self._answered[0][0] < now - span:
            self._busy -= self._answered.popleft()[1]
        return span

    def goodput(self, now: float | None = None) -> float:
        """Requests answered (not refused) in flight on average over the last few seconds."""
        now = self.clock() if now is None else now
        span = self._forget(now)
        if not self._answered or self._first is None:
            self._busy = 0.0
            return 0.0
        return max(0.0, self._busy) / max(min(span, now - self._first), self.window())

    def floor(self, now: float | None = None) -> int:
        return max(1, min(self.maximum, math.ceil(self.goodput(now) * HEADROOM)))

    async def __aenter__(self) -> None:
        async with self._cond:
            await self._cond.wait_for(lambda: self.active < self.limit)
            self.active += 1

    async def __aexit__(self, *exc: object) -> None:
        async with self._cond:
            self.active -= 1
            self._cond.notify(1)  # one slot freed: wake one waiter, not all of them

    async def rate_limited(self, started: float, retry_after: float | None = None) -> None:
        """A 429 to a request sent at ``started`` (this clock): at most once per window, the limit becomes
        ``BETA`` times itself or ``HEADROOM`` times the goodput, whichever is more."""
        now = self.clock()
        self._last_429 = now
        window = max(self.window(), min(retry_after or 0.0, MAX_CUT_WINDOW_S))
        if started < self._cut_at or now - self._cut_at < window:
            return
        self._cut_at = self._changed_at = now
        old, self.limit = self.limit, max(self.floor(now), int(self.limit * BETA))
        self.changes += self.limit != old
        if self.limit > old:  # the server answers more than the limit lets through: probe for more
            async with self._cond:
                self._cond.notify(self.limit - old)

    async def succeeded(self, latency_s: float | None = None) -> None:
        """An answered request (``latency_s``: how long it took); grows the limit after a window without 429s."""
        now = self.clock()
        if latency_s is not None:
            self._answered.append((now, latency_s))
            self._busy += latency_s
            self._first = now - latency_s if self._first is None else self._first
            self._srtt = latency_s if self._srtt is None else 0.8 * self._srtt + 0.2 * latency_s
            self._forget(now)
        if self.limit >= self.maximum or now - max(self._last_429, self._changed_at) < self.window():
            return
        old = self.limit
        self.limit = min(self.maximum, max(old + 1, math.ceil(old * GROWTH)))
        self._changed_at = now
        async with self._cond:
            self._cond.notify(self.limit - old)


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


NO_KEY = "no-key"  # what a keyless server is sent: the SDK would otherwise read OPENAI_API_KEY from the environment


def sdk_client(sdk: str, base_url: str, api_key: str | None, timeout_s: float, connections: int) -> Any:
    """The official async client of ``sdk`` ("openai" or "groq") on its aiohttp backend, retries off."""
    if sdk == "groq":
        import groq as module
    else:
        import openai as module  # type: ignore[no-redef]
    http = module.DefaultAioHttpClient(limits=_limits(module, connections))
    make = module.AsyncGroq if sdk == "groq" else module.AsyncOpenAI  # type: ignore[attr-defined]
    return make(
        base_url=base_url, api_key=api_key or NO_KEY, max_retries=0, timeout=timeout_s, http_client=http
    )


def _limits(module: Any, connections: int) -> Any:
    """Connection limits in the SDK's own HTTP library (openai 3 builds on httpx2, groq on httpx): the first
    ``AsyncClient`` its aiohttp client derives from names the library."""
    client = next(c for c in module.DefaultAioHttpClient.__mro__ if c.__name__ == "AsyncClient")
    library = importlib.import_module(client.__module__.split(".")[0])
    return library.Limits(max_connections=max(1, connections), max_keepalive_connections=max(1, connections))


def _connect_failure(exc: BaseException) -> BaseException | None:
    """The refused or failed connection behind an SDK error, if that is what it was. The aiohttp backend
    reports a refused connection as a connect *timeout* (httpx-aiohttp maps aiohttp's ClientConnectorError by
    its base class), so the chain of causes is read instead of the SDK's class."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionError) or type(seen).__name__ == "ClientConnectorError":
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


class ChatClient:
    """One SDK client to a provider's chat-completions endpoint (see the module docstring)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        timeout_s: float,
        connections: int,
        key_env: str | None = None,
        sdk: str = "openai",
    ) -> None:
        self.url = f"{base_url}/chat/completions"
        self._secrets = [api_key]  # a server's text may echo the key: it is redacted before it goes anywhere
        self.reached = False  # whether the server ever answered (with any status)
        self.key_env = key_env
        self.timeout_s = timeout_s
        self.sdk = sdk
        self._client = sdk_client(sdk, base_url, api_key, timeout_s, connections)
        self._errors = importlib.import_module(sdk)  # its APIStatusError, APITimeoutError, ...

    def _clean(self, exc: BaseException) -> str:
        return redact_text(str(exc), self._secrets) or ""

    async def close(self) -> None:
        await self._client.close()

    async def once(self, payload: dict[str, Any]) -> Completion:
        """One HTTP attempt; raises RetryableError, RequestFailed or RunAborted."""
        errors = self._errors
        start = time.perf_counter()
        try:
            body = await self._client.post("/chat/completions", body=payload, cast_to=str)
        except errors.APIStatusError as exc:
            self.reached = True
            answer = exc.response
            raise self._http_error(exc.status_code, answer.headers.get("Retry-After"), answer.text) from None
        except errors.APIConnectionError as exc:  # APITimeoutError is one too
            raise self._connection_error(exc, isinstance(exc, errors.APITimeoutError)) from None
        self.reached = True
        latency = (time.perf_counter() - start) * 1000
        try:
            data = json.loads(body)
            choice = data["choices"][0]
            content = choice["message"].get("content")
        except (ValueError, KeyError, IndexError, TypeError):
            text = redact_text(str(body), self._secrets) or ""
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

    def _connection_error(self, exc: BaseException, timed_out: bool) -> Exception:
        """No answer (``timed_out``: the timeout ran out): a server never reached stops the run, else retried."""
        cause = _connect_failure(exc)
        if cause is None and timed_out:
            return RetryableError(f"no answer within {self.timeout_s:g} s")
        cause = cause or exc.__cause__ or exc
        if not self.reached:  # never answered: a wrong URL or a server that is not running
            return RunAborted(
                f"cannot connect to {self.url} ({self._clean(cause)}); is the server running and the "
                "base URL right?"
            )
        return RetryableError(f"connection failed ({type(cause).__name__}: {self._clean(cause)})")

    def _http_error(self, status: int, retry_after_header: str | None, body: str) -> Exception:
        """An HTTP error answer (its status, Retry-After and body) as what the engine does with it."""
        retry_after = _retry_after(retry_after_header)
        text = redact_text(body, self._secrets) or ""
        snippet = text[:300].replace("\n", " ")
        if status in RETRY_STATUSES or status >= 500:
            return RetryableError(f"HTTP {status}: {snippet}", retry_after, rate_limited=status == 429)
        if status in (401, 403):
            hint = f"; check {self.key_env}" if self.key_env else ""
            return RunAborted(f"the server refused the credentials (HTTP {status}){hint}: {snippet}")
        if status == 404:
            return RunAborted(f"HTTP 404 from {self.url}: wrong base URL or unknown model: {snippet}")
        return RequestFailed(f"HTTP {status}: {snippet}", attempts=1)

    async def complete(
        self, payload: dict[str, Any], limit: AdaptiveLimit, backoff: Backoff, waited_s: float = 0.0
    ) -> Completion:
        """A request with retries: the completion, or RequestFailed when its retries or its time run out.

        429s are waited through until ``backoff.max_wait_s`` have passed since the first one (``waited_s``:
        what earlier requests of the same item already waited); other retryable failures count against
        ``backoff.retries``.
        """
        attempts = failures = refusals = 0
        since: float | None = None  # when this request got its first 429 (time.monotonic)
        while True:
            started = limit.now()
            attempts += 1
            try:
                async with limit:
                    completion = await self.once(payload)
            except RetryableError as exc:
                if exc.rate_limited:
                    await limit.rate_limited(started, exc.retry_after)
                    now = time.monotonic()
                    since = now if since is None else since
                    waited = waited_s + now - since
                    delay = backoff.delay(refusals, exc.retry_after, rate_limited=True)
                    if waited + max(delay, exc.retry_after or 0.0) > backoff.max_wait_s:
                        raise RequestFailed(
                            f"waited {_seconds(waited)} through rate limits (HTTP 429, {attempts} attempts; "
                            f"the next try would come after --max-wait {backoff.max_wait_s:g} s); last answer: "
                            f"{exc}",
                            attempts,
                            transient=True,
                            waited_s=waited,
                        ) from None
                    refusals += 1
                else:
                    if failures >= backoff.retries:
                        raise RequestFailed(
                            f"{exc} (gave up after {attempts} attempts)", attempts, transient=True
                        ) from None
                    delay = backoff.delay(failures, exc.retry_after)
                    failures += 1
                await asyncio.sleep(delay)
                continue
            except RequestFailed as exc:
                exc.attempts = attempts
                raise
            await limit.succeeded(completion.latency_ms / 1000)
            completion.attempts = attempts
            completion.waited_s = waited_s + (time.monotonic() - since if since is not None else 0.0)
            return completion


def chat_client(
    model: ModelRef,
    base_url: str,
    api_key: str | None,
    timeout_s: float,
    connections: int,
    answer_model: type[BaseModel] | None = None,
) -> ChatClient:
    """The client for ``model``'s provider: ChatClient for the OpenAI protocol (openai, groq), else the client
    over the provider's own SDK (llm/instructed.py, imported only then), structured by ``answer_model``."""
    info = model.info
    if info.sdk in ("openai", "groq"):
        return ChatClient(base_url, api_key, timeout_s, connections, info.key_env, sdk=info.sdk)
    from annotator.llm.instructed import InstructedClient

    assert answer_model is not None, f"{model} needs the run's answer model"
    return InstructedClient(model, base_url, api_key, timeout_s, connections, answer_model)


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"
