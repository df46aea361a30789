"""A scripted OpenAI-compatible chat-completions server for failure tests.

It runs aiohttp.web in a background thread of the test process, on 127.0.0.1 and a free port:

    with ScriptedServer(label_for=lambda text: "negative" if "awful" in text else "positive") as server:
        server.script(text_contains="alpha", responses=[Fail(429, retry_after=1), Fail(500), Ok()])
        server.script(text_contains="beta", responses=[Sleep(5), Broken(), Label("ecstatic")])
        run_the_labeler(base_url=server.base_url)
        assert server.answered["alpha text"] == 1

What a request gets, decided in this order:
1. `rule(text, attempt)`, when given, may return a response (or None to go on);
2. the first script that matches the request's document text and still has a response for it: the n-th
   request for that text gets the script's n-th response (`per_text=False`: the n-th matching request,
   whatever its text);
3. otherwise `Ok()`: a 200 whose content is `{"label": label_for(text)}`.

The document text is the content of the last user message; `attempt` counts the requests with that text
(1 for the first). `latency` (seconds, settable at any time) delays every answer.

Responses:
- `Ok(prob=None)`: the default answer. `Label("ecstatic")`: a 200 with that label (a dict is sent as the
  whole JSON object, e.g. `Label({"labels": ["a", "b"]})`).
- `Fail(429, retry_after=1)`: an OpenAI-style error body with that status (and a `Retry-After` header, in
  seconds, when given). `Fail(500)` and any other status likewise.
- `Sleep(5)`: wait 5 s (longer than the client's timeout), then answer `then` (default `Ok()`). An answer
  whose client has gone meanwhile is not delivered and not counted as answered.
- `Broken()`: a 200 whose message content is broken JSON (`{"label": "posi` unless given).

Every 200 carries `usage` token counts. When the request asks for `logprobs`, a 200 with message content
carries `choices[0].logprobs.content`: one entry per token (`{"`, `label`, `":`, ` "`, `positive`, `"}`),
each with `token`, `logprob`, `bytes` and `top_logprobs` (as many as `top_logprobs` asks). The tokens of the
label value get log(prob) (`prob` of the response, else the server's `label_prob`), their alternatives the
other `labels` with the rest of the mass; every other token is near-certain.

Inspection (thread-safe snapshots): `requests` (a `RecordedRequest` per chat request: monotonic `time`,
JSON `body`, document `text`, `attempt`, the scripted `response`, the HTTP `status` delivered or None),
`answered` (document text -> how many 200s were delivered), `wait_idle()`; `reset()` forgets the log, the
counts and the scripts (not `label_for`, `rule` or `latency`).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

# ---------------------------------------------------------------------------------------------------
# What a request can get.


@dataclass(frozen=True)
class Ok:
    """A 200 with the default answer: `{"label": label_for(text)}`."""

    prob: float | None = None  # the label's probability in logprobs (None: the server's label_prob)


@dataclass(frozen=True)
class Label:
    """A 200 with this label, in the codebook or not; a dict is sent as the whole JSON answer."""

    label: str | dict[str, Any]
    prob: float | None = None


@dataclass(frozen=True)
class Fail:
    """An HTTP error with an OpenAI-style error body; `retry_after` (seconds) sets `Retry-After`."""

    status: int = 500
    retry_after: float | None = None
    message: str | None = None


@dataclass(frozen=True)
class Sleep:
    """Wait `seconds` before answering `then` (for client timeouts)."""

    seconds: float
    then: Ok | Label | Fail | Broken = field(default_factory=Ok)


@dataclass(frozen=True)
class Broken:
    """A 200 whose message content is not valid JSON."""

    content: str = '{"label": "posi'


Response = Ok | Label | Fail | Sleep | Broken
Rule = Callable[[str, int], Response | None]


@dataclass
class RecordedRequest:
    time: float  # time.monotonic() when the request arrived
    body: dict[str, Any]
    text: str  # the content of the last user message
    attempt: int  # 1 for the first request with this text (since the last reset)
    response: Response  # what the server was told to do
    status: int | None = None  # the HTTP status delivered; None while pending or when the client had gone
    headers: dict[str, str] = field(default_factory=dict)  # the request's headers (Authorization, User-Agent)


@dataclass
class _Script:
    matches: Callable[[str], bool]
    responses: list[Response]
    per_text: bool
    used: Counter[str] = field(default_factory=Counter)

    def take(self, text: str) -> Response | None:
        if not self.matches(text):
            return None
        key = text if self.per_text else ""
        n = self.used[key]
        if n >= len(self.responses):
            return None
        self.used[key] = n + 1
        return self.responses[n]


_ERRORS = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again later."),
    500: ("server_error", None, "The server had an error while processing your request."),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}

_TOKEN_RE = re.compile(r'\{"|"\}|":|",|\s"|\s?[^\s"{}:,\[\]]+|\s+|.', re.S)
_FILLERS = ("neutral", "mixed", "Positive", "Negative", "pos", "neg", "unknown", "none", "other", "yes")
_CERTAIN = -1e-6


def _tokens(content: str) -> list[str]:
    """A plausible tokenization of a JSON answer; the tokens concatenate to `content`."""
    return _TOKEN_RE.findall(content)


def _text_of(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):  # content parts
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else ""


# ---------------------------------------------------------------------------------------------------


class ScriptedServer:
    """An OpenAI-compatible endpoint whose answers a test scripts; use as a context manager."""

    def __init__(
        self,
        label_for: Callable[[str], str | dict[str, Any]] | None = None,
        *,
        rule: Rule | None = None,
        latency: float = 0.0,
        labels: Sequence[str] = ("negative", "positive"),
        label_prob: float = 0.9,
        host: str = "127.0.0.1",
        port: int = 0,
        models: list[dict[str, Any]] | None = None,
        describes: bool = True,
    ) -> None:
        # GET /v1/models: these entries; by default one model "scripted" whose root names this server's port, so
        # that two servers (each with its own answers) are two models to the answer cache; describes=False
        # answers 404, as a server that says nothing about its model
        self.models = models
        self.describes = describes
        self.label_for: Callable[[str], str | dict[str, Any]] = label_for or (lambda text: "positive")
        self.rule = rule
        self.latency = latency
        self.labels = list(labels)  # the alternatives offered in top_logprobs
        self.label_prob = label_prob
        self.host = host
        self.port = port
        self._requested_port = port
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._log: list[RecordedRequest] = []
        self._answered: Counter[str] = Counter()
        self._attempts: Counter[str] = Counter()
        self._scripts: list[_Script] = []
        self._in_flight = 0
        self._ids = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None

    # -- scripting and inspection (any thread) -----------------------------------------------------

    def script(
        self,
        responses: Sequence[Response],
        *,
        text: str | None = None,
        text_contains: str | None = None,
        per_text: bool = True,
    ) -> None:
        """Give the n-th request whose text matches the n-th response; later ones go on to the default.

        `text` matches exactly, `text_contains` as a substring; neither matches every request. Scripts are
        tried in the order they were added; an exhausted one lets the next matching one answer.
        """
        if text is not None and text_contains is not None:
            raise ValueError("give text or text_contains, not both")
        for response in responses:
            if not isinstance(response, Response):
                raise TypeError(f"not a scripted response: {response!r}")
        if text is not None:
            matches: Callable[[str], bool] = lambda t: t == text  # noqa: E731
        elif text_contains is not None:
            matches = lambda t: text_contains in t  # noqa: E731
        else:
            matches = lambda t: True  # noqa: E731
        with self._lock:
            self._scripts.append(_Script(matches, list(responses), per_text))

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every chat-completion request so far, in arrival order (a snapshot)."""
        with self._lock:
            return list(self._log)

    @property
    def answered(self) -> dict[str, int]:
        """Document text -> how many 200 answers were delivered for it (a snapshot)."""
        with self._lock:
            return dict(self._answered)

    def texts(self) -> list[str]:
        """The document text of every request, in arrival order."""
        return [r.text for r in self.requests]

    def reset(self) -> None:
        """Forget the request log, the counts and the scripts (keeps label_for, rule and latency)."""
        with self._lock:
            self._log.clear()
            self._answered.clear()
            self._attempts.clear()
            self._scripts.clear()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no request is being handled (e.g. a `Sleep` whose client gave up); False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)

    @property
    def base_url(self) -> str:
        if self._thread is None:
            raise RuntimeError("the server is not running")
        return f"http://{self.host}:{self.port}/v1"

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> ScriptedServer:
        if self._thread is not None:
            raise RuntimeError("the server is already running")
        ready = threading.Event()
        self._error = None
        self._thread = threading.Thread(target=self._serve, args=(ready,), name="ScriptedServer", daemon=True)
        self._thread.start()
        if not ready.wait(30):
            raise RuntimeError("the scripted server did not start within 30 s")
        if self._error is not None:
            self._thread.join()
            self._thread = None
            raise RuntimeError("the scripted server did not start") from self._error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving: in-flight requests are cancelled, the thread and its loop end, the port is freed."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError("the scripted server's thread did not end")
        self._thread = self._loop = None
        self.port = self._requested_port

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _serve(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        self._routes(app)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.2)
        try:
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, self.host, self.port)
            loop.run_until_complete(site.start())
            self.port = runner.addresses[0][1]
        except BaseException as exc:
            self._error = exc
            loop.run_until_complete(runner.cleanup())
            loop.close()
            ready.set()
            return
        self._loop = loop
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            with self._idle:
                self._in_flight = 0
                self._idle.notify_all()

    # -- handlers (the server's thread) -------------------------------------------------------------

    def _routes(self, app: web.Application) -> None:
        """The endpoints it serves (a subclass adds its own: tests/batch_server.py)."""
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)

    async def _models(self, request: web.Request) -> web.Response:
        if not self.describes:
            return web.json_response({"error": {"message": "not found"}}, status=404)
        mine = [
            {
                "id": "scripted",
                "object": "model",
                "created": 0,
                "owned_by": "tests",
                "root": f"scripted-{self.port}",
            }
        ]
        return web.json_response({"object": "list", "data": self.models if self.models is not None else mine})

    def _decide(
        self, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> tuple[RecordedRequest, Response]:
        messages = body.get("messages") or []
        users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        text = _text_of(users[-1]) if users else ""
        with self._lock:
            self._attempts[text] += 1
            attempt = self._attempts[text]
        response = self.rule(text, attempt) if self.rule is not None else None
        if response is None:
            with self._lock:
                for script in self._scripts:
                    response = script.take(text)
                    if response is not None:
                        break
        if response is None:
            response = Ok()
        record = RecordedRequest(time.monotonic(), body, text, attempt, response, headers=dict(headers or {}))
        with self._lock:
            self._log.append(record)
            self._in_flight += 1
        return record, response

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        try:
            body = json.loads(await request.read())
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            return _error(400, f"the request body is not a JSON object: {exc}")
        record, response = self._decide(body, dict(request.headers))
        try:
            if self.latency > 0:
                await asyncio.sleep(self.latency)
            if isinstance(response, Sleep):
                await asyncio.sleep(response.seconds)
                response = response.then
            answer = self._answer(body, record.text, response)
            gone = request.transport is None or request.transport.is_closing()
            with self._lock:
                if not gone:
                    record.status = answer.status
                    if answer.status == 200:
                        self._answered[record.text] += 1
            return answer
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def _answer(self, body: dict[str, Any], text: str, response: Response) -> web.Response:
        if isinstance(response, Fail):
            headers = {}
            if response.retry_after is not None:
                seconds = response.retry_after
                headers["Retry-After"] = str(int(seconds)) if float(seconds).is_integer() else str(seconds)
            return _error(response.status, response.message, headers)
        label: str | dict[str, Any] | None = None
        prob: float | None = None
        if isinstance(response, Broken):
            content = response.content
        else:
            if isinstance(response, Label):
                label, prob = response.label, response.prob
            elif isinstance(response, Ok):
                label, prob = self.label_for(text), response.prob
            else:
                raise TypeError(f"not a scripted response: {response!r}")
            answer = label if isinstance(label, dict) else {"label": label}
            content = json.dumps(answer, ensure_ascii=False)
        tokens = _tokens(content)
        message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
        logprobs: dict[str, Any] | None = None
        if body.get("logprobs"):
            value = label.get("label") if isinstance(label, dict) else label
            p = self.label_prob if prob is None else prob
            logprobs = {
                "content": self._logprobs(content, tokens, value, p, int(body.get("top_logprobs") or 0)),
                "refusal": None,
            }
        prompt_tokens = sum(len(_text_of(m)) for m in body.get("messages") or [] if isinstance(m, dict)) // 4
        prompt_tokens += 4 * len(body.get("messages") or [])
        return web.json_response(
            {
                "id": f"chatcmpl-scripted-{next(self._ids)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "scripted"),
                "choices": [{"index": 0, "message": message, "logprobs": logprobs, "finish_reason": "stop"}],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": len(tokens),
                    "total_tokens": prompt_tokens + len(tokens),
                },
                "system_fingerprint": "fp_scripted",
            }
        )

    def _logprobs(
        self, content: str, tokens: list[str], label: object, prob: float, top: int
    ) -> list[dict[str, Any]]:
        """Token log-probabilities: log(prob) on the label value's tokens, near-certain elsewhere."""
        start = end = -1
        if isinstance(label, str) and label:
            needle = json.dumps(label, ensure_ascii=False)
            at = content.find(needle)
            if at >= 0:
                start, end = at + 1, at + len(needle) - 1
        label_tokens = [
            i
            for i, offset in enumerate(itertools.accumulate([0, *map(len, tokens)]))
            if start <= offset < end
        ]
        lp_label = math.log(prob) if prob > 0 else -9999.0
        alternatives = [str(a) for a in self.labels if a != label]
        lp_alt = math.log((1 - prob) / len(alternatives)) if alternatives and prob < 1 else -30.0
        entries = []
        for i, token in enumerate(tokens):
            if i in label_tokens:
                lp = lp_label / len(label_tokens)
                first = i == label_tokens[0]
                candidates = [(token, lp), *((alt, lp_alt) for alt in alternatives if first)]
            else:
                lp = _CERTAIN
                candidates = [(token, lp)]
            fillers = ((f, -20.0 - k) for k, f in enumerate(_FILLERS) if f not in {c for c, _ in candidates})
            candidates = [*candidates, *fillers][:top]
            entries.append(
                {
                    "token": token,
                    "logprob": lp,
                    "bytes": list(token.encode()),
                    "top_logprobs": [
                        {"token": c, "logprob": v, "bytes": list(c.encode())} for c, v in candidates
                    ],
                }
            )
        return entries


def _error(status: int, message: str | None = None, headers: dict[str, str] | None = None) -> web.Response:
    kind, code, default = _ERRORS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None, "")
    )
    return web.json_response(
        {
            "error": {
                "message": message or default or f"HTTP {status}",
                "type": kind,
                "param": None,
                "code": code,
            }
        },
        status=status,
        headers=headers,
    )
