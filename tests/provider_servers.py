"""Scripted loopback endpoints in the wire formats of Anthropic, Gemini, Mistral and Ollama's own API.

Each runs aiohttp.web in a background thread of the test process, on 127.0.0.1 and a free port, and answers
as the provider would (its path, its JSON, its error bodies), so that a real `annotator run` goes through the
provider's official SDK (and instructor) end to end:

    with ProviderServer("anthropic", label_for=lambda text: "negative" if "awful" in text else "positive") as s:
        s.script(text_contains="alpha", responses=[Fail(429, retry_after=1)])
        cli("run", "--model", "anthropic/claude-x", "--base-url", s.base_url, ...)

- anthropic: ``POST /v1/messages``, answering a ``tool_use`` block named as the request's tool;
- gemini: ``POST /v1/models/MODEL:generateContent`` (or v1beta), answering the JSON as the candidate's text;
- mistral: ``POST /v1/chat/completions``, answering the JSON as the message content (structured outputs);
- ollama: ``POST /api/chat``, answering the JSON as the message content.

A request's document text is the text of its last user turn; what it gets is decided as in
tests/scripted_server.py: ``rule(text, attempt)``, then the scripts, then ``{"label": label_for(text)}``.
Responses are scripted_server's ``Label`` (that label, or a dict as the whole answer), ``Fail`` (the
provider's error body with that status and message, and ``Retry-After`` when given) and ``Sleep`` (wait, then
answer its ``then``); ``Ok()`` is the default.
``requests`` records each request (path, JSON body, headers, text, attempt, monotonic time).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.scripted_server import Fail, Label, Ok, Rule, Sleep

WIRES = ("anthropic", "gemini", "mistral", "ollama")
PATHS = {
    "anthropic": "/v1/messages",
    "gemini": "/{version}/models/{model}",  # v1 or v1beta, as the SDK chooses
    "mistral": "/v1/chat/completions",
    "ollama": "/api/chat",
}
TOKENS_IN, TOKENS_OUT = 21, 7
Reply = Ok | Label | Fail | Sleep


@dataclass
class Recorded:
    time: float
    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    text: str
    attempt: int
    status: int = 200


@dataclass
class _Script:
    contains: str | None
    responses: list[Reply]
    used: Counter[str] = field(default_factory=Counter)

    def take(self, text: str) -> Reply | None:
        if self.contains is not None and self.contains not in text:
            return None
        n = self.used[text]
        if n >= len(self.responses):
            return None
        self.used[text] = n + 1
        return self.responses[n]


def _text(content: Any) -> str:
    """The text of a message's content: a string, or parts/blocks with text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def last_user_text(wire: str, body: dict[str, Any]) -> str:
    """The document text of a request: its last user turn."""
    if wire == "gemini":
        turns = [c for c in body.get("contents") or [] if c.get("role", "user") == "user"]
        return _text(turns[-1].get("parts")) if turns else ""
    turns = [m for m in body.get("messages") or [] if m.get("role") == "user"]
    return _text(turns[-1].get("content")) if turns else ""


def answer_body(wire: str, body: dict[str, Any], model: str, answer: dict[str, Any]) -> dict[str, Any]:
    """A 200 answer carrying ``answer`` in the provider's format."""
    text = json.dumps(answer)
    if wire == "anthropic":
        tool = (body.get("tools") or [{}])[0].get("name", "Annotation")
        return {
            "id": "msg_01",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "tool_use", "id": "toolu_01", "name": tool, "input": answer}],
            "stop_reason": "tool_use",
            "stop_sequence": None,
            "usage": {"input_tokens": TOKENS_IN, "output_tokens": TOKENS_OUT},
        }
    if wire == "gemini":
        return {
            "candidates": [
                {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP", "index": 0}
            ],
            "usageMetadata": {
                "promptTokenCount": TOKENS_IN,
                "candidatesTokenCount": TOKENS_OUT,
                "totalTokenCount": TOKENS_IN + TOKENS_OUT,
            },
            "modelVersion": model,
        }
    if wire == "mistral":
        return {
            "id": "cmpl-01",
            "object": "chat.completion",
            "created": 1700000000,
            "model": model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            ],
            "usage": {
                "prompt_tokens": TOKENS_IN,
                "completion_tokens": TOKENS_OUT,
                "total_tokens": TOKENS_IN + TOKENS_OUT,
            },
        }
    return {
        "model": model,
        "created_at": "2025-01-01T00:00:00Z",
        "message": {"role": "assistant", "content": text},
        "done": True,
        "done_reason": "stop",
        "prompt_eval_count": TOKENS_IN,
        "eval_count": TOKENS_OUT,
    }


_GOOGLE_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND"}
_GOOGLE_STATUS |= {429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


def error_body(wire: str, status: int, message: str) -> dict[str, Any]:
    """An error answer in the provider's format."""
    if wire == "anthropic":
        return {"type": "error", "error": {"type": "api_error", "message": message}}
    if wire == "gemini":
        return {
            "error": {"code": status, "message": message, "status": _GOOGLE_STATUS.get(status, "UNKNOWN")}
        }
    if wire == "mistral":
        return {"object": "error", "message": message, "type": "invalid_request_error", "code": status}
    return {"error": message}


class ProviderServer:
    """A loopback endpoint in ``wire``'s format whose answers a test scripts; use as a context manager."""

    def __init__(
        self, wire: str, label_for: Callable[[str], str] | None = None, *, rule: Rule | None = None
    ) -> None:
        if wire not in WIRES:
            raise ValueError(f"unknown wire format {wire!r}; one of {WIRES}")
        self.wire = wire
        self.label_for = label_for or (lambda text: "positive")
        self.rule = rule
        self.port = 0
        self._lock = threading.Lock()
        self._log: list[Recorded] = []
        self._attempts: Counter[str] = Counter()
        self._scripts: list[_Script] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def base_url(self) -> str:
        """The server's root, as the provider's SDK takes it for its base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._log)

    def texts(self) -> list[str]:
        """The document text of every request, in arrival order."""
        return [r.text for r in self.requests]

    def script(self, responses: list[Reply], *, text_contains: str | None = None) -> None:
        """The n-th request whose text contains ``text_contains`` (any text: None) gets the n-th response."""
        with self._lock:
            self._scripts.append(_Script(text_contains, list(responses)))

    # -- lifecycle ----------------------------------------------------------------------------------

    def __enter__(self) -> ProviderServer:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), name="ProviderServer", daemon=True)
        self._thread.start()
        if not ready.wait(30) or self._loop is None:
            raise RuntimeError(f"the {self.wire} server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def _serve(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        app = web.Application()
        path = PATHS[self.wire].replace("{model}", "{tail}")
        app.router.add_post(path, self._handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.2)
        try:
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            self.port = runner.addresses[0][1]
            self._loop = loop
        finally:
            ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]  # a Sleep whose client has gone
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    # -- the handler (the server's thread) -----------------------------------------------------------

    def _decide(self, text: str) -> tuple[int, Reply]:
        with self._lock:
            self._attempts[text] += 1
            attempt = self._attempts[text]
        response = self.rule(text, attempt) if self.rule is not None else None
        with self._lock:
            for script in self._scripts:
                if response is not None:
                    break
                response = script.take(text)
        return attempt, response if isinstance(response, Reply) else Ok()

    async def _handle(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        model = body.get("model", "")
        if self.wire == "gemini":
            tail = request.match_info["tail"]
            if not tail.endswith(":generateContent"):
                return web.json_response(error_body(self.wire, 404, f"no method {tail}"), status=404)
            model = tail.removesuffix(":generateContent")
        text = last_user_text(self.wire, body)
        attempt, response = self._decide(text)
        record = Recorded(time.monotonic(), request.path, body, dict(request.headers), text, attempt)
        with self._lock:
            self._log.append(record)
        if isinstance(response, Sleep):  # longer than the client's timeout: it gives up first
            await asyncio.sleep(response.seconds)
            response = response.then
        if isinstance(response, Fail):
            record.status = response.status
            headers = {"Retry-After": f"{response.retry_after:g}"} if response.retry_after is not None else {}
            message = response.message or f"scripted failure {response.status}"
            return web.json_response(
                error_body(self.wire, response.status, message), status=response.status, headers=headers
            )
        label = response.label if isinstance(response, Label) else self.label_for(text)
        answer = label if isinstance(label, dict) else {"label": label}
        return web.json_response(answer_body(self.wire, body, f"{model}-served", answer))
