"""Requests to Anthropic, Gemini, Mistral and Ollama through their official async SDKs: the run engine's
ChatClient (its one retry policy, adaptive concurrency and error mapping) with a ``once`` of their own.

Why instructor: these providers have no JSON-schema decoding in the OpenAI-compatible form the engine speaks
(``response_format`` with a schema), so the answer's structure must be asked for in each provider's own
terms: a forced tool call, a response schema, a structured-output format. instructor keeps each provider's
tool and JSON modes current as their APIs change; annotator only names the mode. The modes (instructor 1.17,
which names them generically: ``from_anthropic`` etc. say the provider, and the old provider-named modes,
ANTHROPIC_TOOLS and the like, are deprecated aliases of these):

- Anthropic: ``Mode.TOOLS`` (ANTHROPIC_TOOLS): the answer model as the one tool, forced by ``tool_choice``; it
  works on every Claude model. instructor's structured-outputs mode (``JSON_SCHEMA``) sends a beta
  ``output_format`` that anthropic 2.x no longer has, and falls back to JSON in the prompt.
- Gemini: ``Mode.JSON`` (GENAI_STRUCTURED_OUTPUTS): ``response_mime_type`` JSON with the answer model as
  ``response_schema``, to which Gemini constrains decoding (no tool round trip; the text is the answer).
- Mistral: ``Mode.JSON_SCHEMA`` (MISTRAL_STRUCTURED_OUTPUTS): ``response_format`` json_schema (strict), to
  which Mistral constrains decoding; the answer comes back as message text, as on the OpenAI path. Its
  tool mode would add a tool round trip for nothing.
- Ollama: not through instructor. instructor 1.17 reaches Ollama only through the openai client at ``/v1``
  (which annotator does already: ``openai-compatible/MODEL --base-url http://localhost:11434/v1``); it has no
  adapter for the ``ollama`` client. Ollama's own ``/api/chat`` takes the answer's JSON schema as ``format``
  and constrains decoding to it, which is what instructor would be for.

instructor's own re-asks are off (``max_retries=0``) and so are the SDKs' retries (google-genai's implicit
retry of a failed connection included): the engine re-asks with the validation error (labeler.REASK) and
retries by its own policy. The answer stored is the raw JSON text the model produced (Anthropic's tool input
re-serialized: its API sends it as an object), also when instructor's validation fails (its exception carries
the last completion), so that the engine's validator marks it invalid and keeps it; a label is never made
up. Parameters go to each provider under its own names: max_tokens (Anthropic requires one:
``DEFAULT_MAX_TOKENS`` when the prompt sets none), stop; temperature, top_p and the penalties to Gemini,
Mistral and Ollama, and the seed too (Mistral's ``random_seed``). anthropic 2.x (API version 2026-10-21) has
no sampling parameters, and the API is reported to refuse them: a prompt's temperature, top_p and seed are
left out of an Anthropic run (``ProviderInfo.unsent``: the run records only what is sent) and not sent. No provider here returns log-probabilities. SDK errors map onto
the transport's classes as ChatClient's do, with the key redacted; instructor's own log (every failed attempt,
with the server's text) is silenced.

Measured here (2 cores; a loopback server in another process answering at once; 300-600 requests at
concurrency 8; CPU time of the client's process per label): ChatClient on the OpenAI protocol 0.5 ms; this
client on Anthropic's wire format 2.6-2.7 ms, Gemini's 5.5-6.0 ms, Mistral's 6.8-10 ms (its SDK runs hooks in
a thread per request), Ollama's (no instructor) 1.1-1.2 ms. Against providers that admit tens of requests
per second that is a few percent of a core. instructor and the SDK import in 1.4-2.7 s (ollama 0.4 s), once,
when the first request of a run needs them.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, ClassVar

from pydantic import BaseModel

from annotator.llm.providers import ModelRef
from annotator.llm.transport import NO_KEY, ChatClient, Completion, RetryableError, _limits

DEFAULT_MAX_TOKENS = 1024  # Anthropic requires a bound on the answer; a label takes far fewer
# exceptions of these libraries, or OSErrors, anywhere in a failure's chain mean the request got no answer
TRANSPORT_MODULES = {"httpx", "httpx2", "httpcore", "aiohttp", "anyio", "h11"}
NO_ANSWER = {"APIConnectionError", "APITimeoutError", "NoResponseError"}


class InstructedClient(ChatClient):
    """A provider's official async SDK behind the engine's client interface (see the module docstring)."""

    def __init__(
        self,
        model: ModelRef,
        base_url: str,
        api_key: str | None,
        timeout_s: float,
        connections: int,
        answer_model: type[BaseModel],
    ) -> None:
        # not ChatClient.__init__ (it builds an OpenAI client): the same fields, read by its retry policy
        # (complete) and its error mapping (_http_error, _connection_error)
        _quiet_instructor()
        adapter = ADAPTERS[model.provider]
        self._adapter = adapter(model.model, base_url, api_key, timeout_s, connections, answer_model)
        self.url = f"{base_url.rstrip('/')}{self._adapter.path}"
        self._secrets = [api_key]
        self.reached = False
        self.key_env = model.info.key_names or None
        self.timeout_s = timeout_s
        self.sdk = model.info.sdk

    async def close(self) -> None:
        await self._adapter.close()

    async def once(self, payload: dict[str, Any]) -> Completion:
        """One request through the SDK; raises RetryableError, RequestFailed or RunAborted."""
        start = time.perf_counter()
        try:
            response = await self._adapter.send(payload)
        except Exception as exc:
            failure = self._failure(exc)
            if failure is None:  # not the SDK's nor the network's: a bug, which must show
                raise
            raise failure from None
        self.reached = True
        latency = (time.perf_counter() - start) * 1000
        try:
            content, tokens_in, tokens_out, served = self._adapter.read(response)
        except (AttributeError, TypeError, ValueError, IndexError, KeyError) as exc:
            raise RetryableError(f"malformed response: {self._clean(exc)[:200]}") from None
        return Completion(content, None, int(tokens_in or 0), int(tokens_out or 0), latency, served)

    def _failure(self, exc: Exception) -> Exception | None:
        """What the engine does with a failed request; None for an error that is neither the SDK's nor the
        network's (a bug; an answer instructor cannot read is kept, see _Instructed.send)."""
        cause = _unwrap(exc)
        http = self._adapter.http_error(cause)
        if http is not None:
            self.reached = True
            status, retry_after, body = http
            return self._http_error(status, retry_after, body)
        if _no_answer(cause):
            return self._connection_error(cause, _timed_out(cause))
        return None


def _quiet_instructor() -> None:
    """instructor logs every failed attempt at ERROR, with the server's error text (which may echo the key)
    and the model's answer: the engine reports both itself, redacted, so instructor logs nothing."""
    logging.getLogger("instructor").setLevel(logging.CRITICAL + 1)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _unwrap(exc: Exception) -> BaseException:
    """The SDK's error behind instructor's (it wraps every failed attempt in InstructorRetryException)."""
    if type(exc).__module__.startswith("instructor") and exc.__cause__ is not None:
        return exc.__cause__
    return exc


def _no_answer(exc: BaseException) -> bool:
    """Whether the request failed without an answer: refused, dropped or timed out."""
    for e in _chain(exc):
        if isinstance(e, OSError) or type(e).__name__ in NO_ANSWER:
            return True
        if type(e).__module__.split(".")[0] in TRANSPORT_MODULES:
            return True
    return False


def _timed_out(exc: BaseException) -> bool:
    return any(isinstance(e, TimeoutError) or "Timeout" in type(e).__name__ for e in _chain(exc))


def _header(response: Any, name: str) -> str | None:
    headers = getattr(response, "headers", None)
    return headers.get(name) if headers is not None else None


class _Instructed:
    """An SDK client patched by instructor, which shapes each request for the answer model in its mode."""

    client: Any
    patched: Any  # instructor's AsyncInstructor over ``client``
    path: str  # where the SDK sends the request, under the base URL (for messages)

    def __init__(self, answer_model: type[BaseModel]) -> None:
        from instructor.core import IncompleteOutputException, InstructorRetryException

        self.answer_model = answer_model
        self._kept = (InstructorRetryException, IncompleteOutputException)  # they carry the last completion

    def params(self, payload: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def read(self, response: Any) -> tuple[str | None, int, int, str | None]:
        raise NotImplementedError

    def http_error(self, exc: BaseException) -> tuple[int, str | None, str] | None:
        raise NotImplementedError

    async def send(self, payload: dict[str, Any]) -> Any:
        try:
            _, raw = await self.patched.create_with_completion(
                response_model=self.answer_model, max_retries=0, **self.params(payload)
            )
        except self._kept as exc:  # the answer did not validate: kept, for the engine to judge and store
            if exc.last_completion is None:
                raise
            return exc.last_completion
        return raw


def _openai_params(payload: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: payload[name] for name in names if payload.get(name) is not None}


class _Anthropic(_Instructed):
    def __init__(
        self, model: str, base_url: str, key: str | None, timeout_s: float, connections: int, answer: Any
    ) -> None:
        import anthropic
        import instructor

        super().__init__(answer)
        http = anthropic.DefaultAioHttpClient(limits=_limits(anthropic, connections))
        self.client = anthropic.AsyncAnthropic(
            api_key=key or NO_KEY, base_url=base_url, max_retries=0, timeout=timeout_s, http_client=http
        )
        self.patched = instructor.from_anthropic(self.client, mode=instructor.Mode.TOOLS)
        self.path = "/v1/messages"
        self._status_error = anthropic.APIStatusError

    def params(self, payload: dict[str, Any]) -> dict[str, Any]:
        params = _openai_params(payload, ("model", "messages"))  # no sampling parameters: see above
        params["max_tokens"] = payload.get("max_tokens") or DEFAULT_MAX_TOKENS
        stop = payload.get("stop")
        if stop:
            params["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
        return params

    def read(self, response: Any) -> tuple[str | None, int, int, str | None]:
        blocks = response.content or []
        calls = [b.input for b in blocks if b.type == "tool_use"]
        if calls:
            content = json.dumps(calls[0], ensure_ascii=False)
        else:  # the model wrote text instead of calling the tool: stored as it is, to be judged invalid
            content = "".join(b.text for b in blocks if b.type == "text")
        usage = response.usage
        return content, usage.input_tokens, usage.output_tokens, response.model

    def http_error(self, exc: BaseException) -> tuple[int, str | None, str] | None:
        if not isinstance(exc, self._status_error):
            return None
        return exc.status_code, _header(exc.response, "Retry-After"), exc.response.text

    async def close(self) -> None:
        await self.client.close()


class _Gemini(_Instructed):
    def __init__(
        self, model: str, base_url: str, key: str | None, timeout_s: float, connections: int, answer: Any
    ) -> None:
        import instructor
        from google import genai
        from google.genai import errors, types

        super().__init__(answer)
        # one attempt: without retry options the SDK would retry a failed connection itself, after 1-10 s
        once = types.HttpRetryOptions(attempts=1)
        options = types.HttpOptions(base_url=base_url, timeout=int(timeout_s * 1000), retry_options=once)
        self.client = genai.Client(api_key=key or NO_KEY, vertexai=False, http_options=options)
        self.patched = instructor.from_genai(self.client, mode=instructor.Mode.JSON, use_async=True)
        self._api_error = errors.APIError
        http = getattr(getattr(self.client, "_api_client", None), "_http_options", None)
        version = getattr(http, "api_version", None)  # v1 unless GOOGLE_GENAI_API_VERSION says otherwise
        self.path = f"/{version or 'v1'}/models/{model}:generateContent"

    def params(self, payload: dict[str, Any]) -> dict[str, Any]:
        # instructor moves these into the generation config under Gemini's names (max_output_tokens...)
        names = ("model", "temperature", "top_p", "max_tokens", "seed", "stop")
        params = _openai_params(payload, (*names, "presence_penalty", "frequency_penalty"))
        # Gemini's turns are the user's and the model's
        params["messages"] = [
            {**m, "role": "model"} if m["role"] == "assistant" else m for m in payload["messages"]
        ]
        return params

    def read(self, response: Any) -> tuple[str | None, int, int, str | None]:
        usage = response.usage_metadata
        tokens_in = usage.prompt_token_count if usage else 0
        # thinking models bill their thoughts as output
        tokens_out = (usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0) if usage else 0
        return response.text, tokens_in or 0, tokens_out, response.model_version

    def http_error(self, exc: BaseException) -> tuple[int, str | None, str] | None:
        if not isinstance(exc, self._api_error) or not exc.code:
            return None
        body = exc.details if isinstance(exc.details, str) else json.dumps(exc.details, default=str)
        retry_after = _header(exc.response, "Retry-After") or _retry_delay(exc.details)
        return int(exc.code), retry_after, body

    async def close(self) -> None:
        await self.client.aio.aclose()


def _retry_delay(details: Any) -> str | None:
    """Gemini says when to try again in the error's RetryInfo ("retryDelay": "26s"), not in a header."""
    error = details.get("error", details) if isinstance(details, dict) else {}
    for entry in error.get("details") or [] if isinstance(error, dict) else []:
        if isinstance(entry, dict) and str(entry.get("@type", "")).endswith("RetryInfo"):
            return str(entry.get("retryDelay", "")).removesuffix("s") or None
    return None


class _Mistral(_Instructed):
    def __init__(
        self, model: str, base_url: str, key: str | None, timeout_s: float, connections: int, answer: Any
    ) -> None:
        import instructor
        from mistralai.client import Mistral, errors

        super().__init__(answer)
        # no retry_config: the SDK retries nothing
        self.client = Mistral(api_key=key or NO_KEY, server_url=base_url, timeout_ms=int(timeout_s * 1000))
        self.patched = instructor.from_mistral(self.client, mode=instructor.Mode.JSON_SCHEMA, use_async=True)
        self._error = errors.MistralError
        self.path = "/v1/chat/completions"

    def params(self, payload: dict[str, Any]) -> dict[str, Any]:
        names = ("model", "messages", "temperature", "top_p", "max_tokens", "stop")
        params = _openai_params(payload, (*names, "presence_penalty", "frequency_penalty"))
        if payload.get("seed") is not None:
            params["random_seed"] = payload["seed"]
        return params

    def read(self, response: Any) -> tuple[str | None, int, int, str | None]:
        content = response.choices[0].message.content
        if isinstance(content, list):  # content chunks
            content = "".join(getattr(chunk, "text", "") or "" for chunk in content)
        usage = response.usage
        return content, usage.prompt_tokens, usage.completion_tokens, response.model

    def http_error(self, exc: BaseException) -> tuple[int, str | None, str] | None:
        if not isinstance(exc, self._error) or exc.status_code < 400:
            return None
        return exc.status_code, exc.headers.get("Retry-After"), exc.body

    async def close(self) -> None:
        await self.client.__aexit__(None, None, None)


class _Ollama:
    """Ollama's own /api/chat through the ollama client, the answer's JSON schema as ``format``."""

    OPTIONS: ClassVar[dict[str, str]] = {
        "max_tokens": "num_predict",
        "temperature": "temperature",
        "top_p": "top_p",
    }

    def __init__(
        self, model: str, base_url: str, key: str | None, timeout_s: float, connections: int, answer: Any
    ) -> None:
        import ollama

        headers = {"Authorization": f"Bearer {key}"} if key else None
        self.client = ollama.AsyncClient(host=base_url, timeout=timeout_s, headers=headers)
        self.schema = answer.model_json_schema()
        self._error = ollama.ResponseError
        self.path = "/api/chat"

    async def send(self, payload: dict[str, Any]) -> Any:
        options = {name: payload[k] for k, name in self.OPTIONS.items() if payload.get(k) is not None}
        for name in ("seed", "presence_penalty", "frequency_penalty"):
            if payload.get(name) is not None:
                options[name] = payload[name]
        stop = payload.get("stop")
        if stop:
            options["stop"] = [stop] if isinstance(stop, str) else list(stop)
        return await self.client.chat(
            model=payload["model"], messages=payload["messages"], format=self.schema, options=options
        )

    def read(self, response: Any) -> tuple[str | None, int, int, str | None]:
        return response.message.content, response.prompt_eval_count, response.eval_count, response.model

    def http_error(self, exc: BaseException) -> tuple[int, str | None, str] | None:
        if not isinstance(exc, self._error) or exc.status_code < 400:
            return None
        # the client raises ResponseError "from None": the HTTP error it replaced still holds the headers
        answer = getattr(exc.__context__, "response", None)
        return exc.status_code, _header(answer, "Retry-After"), str(exc.error)

    async def close(self) -> None:
        await self.client.close()


ADAPTERS: dict[str, Any] = {
    "anthropic": _Anthropic,
    "gemini": _Gemini,
    "mistral": _Mistral,
    "ollama": _Ollama,
}
