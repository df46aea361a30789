"""The one module that names providers: where each one lives, how it authenticates, what it supports, and
what it costs.

Most providers speak the OpenAI chat-completions protocol (OpenAI, Groq, vLLM, Ollama, LM Studio, llama.cpp's
server, and the embedded local model), each through its official client (``sdk``: openai's for all but Groq,
groq's for Groq; llm/transport.py). Anthropic, Gemini and Mistral are reached through their official SDKs,
structured by instructor, and Ollama through its own API and client (llm/instructed.py); each of these needs
its optional extra (``pip install 'annotator[anthropic]'``), checked when the model is named. Keys come from the environment or
the project's ``.env``; they are read when a request is made and never stored.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from annotator.errors import AnnotatorError, arg
from annotator.redaction import redact_text


class ProviderError(AnnotatorError):
    """A model string, base URL, key or price that cannot be used."""


@dataclass(frozen=True)
class ProviderInfo:
    base_url: str | None
    key_env: str | None  # environment variable holding the API key; None: no key needed
    key_required: bool
    logprobs: bool  # answers `logprobs=True, top_logprobs=N`
    concurrency: int  # a polite default number of requests in flight
    timeout_s: float
    doc: str
    embedded: bool = False  # served by annotator itself, offline (started for the run, stopped after)
    sdk: str = "openai"  # the distribution of the official client that talks to it (llm/transport.py)
    extra: str | None = None  # the optional extra that brings that client: pip install 'annotator[EXTRA]'
    instructed: bool = False  # structured by instructor over ``sdk`` (llm/instructed.py)
    key_env_also: tuple[str, ...] = ()  # further variables that may hold the key, read after key_env
    # parameters its API does not take: left out of the run (and of what it records), never sent
    unsent: tuple[str, ...] = ()

    @property
    def key_names(self) -> str:
        """The variable(s) that hold the key, for messages ("GEMINI_API_KEY or GOOGLE_API_KEY")."""
        return " or ".join(n for n in (self.key_env, *self.key_env_also) if n)


PROVIDERS: dict[str, ProviderInfo] = {
    "openai": ProviderInfo("https://api.openai.com/v1", "OPENAI_API_KEY", True, True, 16, 60.0, "OpenAI"),
    "groq": ProviderInfo(
        "https://api.groq.com/openai/v1", "GROQ_API_KEY", True, False, 8, 60.0, "Groq", sdk="groq"
    ),
    "openai-compatible": ProviderInfo(
        None,
        "OPENAI_COMPATIBLE_API_KEY",
        False,
        True,
        8,
        120.0,
        "any OpenAI-compatible server (vLLM, Ollama, LM Studio, llama.cpp); needs --base-url",
    ),
    # llama.cpp returns the model's raw token log-probabilities, not schema-constrained ones: a forced label
    # spelled in odd pieces ('n', 'ega', 't', 'ive') gets near-zero values, so they are not asked for by
    # default (--logprobs asks anyway)
    "local": ProviderInfo(
        None,
        None,
        False,
        False,
        1,
        300.0,
        "the embedded offline model (annotator models pull)",
        embedded=True,
    ),
    # native APIs through their official SDKs (llm/instructed.py); --base-url is the server's root, as the SDK
    # takes it (the SDK adds /v1/messages, /v1/models/MODEL:generateContent, /v1/chat/completions, /api/chat)
    "anthropic": ProviderInfo(
        "https://api.anthropic.com",
        "ANTHROPIC_API_KEY",
        True,
        False,
        8,
        120.0,
        "Anthropic (Claude)",
        sdk="anthropic",
        extra="anthropic",
        instructed=True,
        unsent=("temperature", "top_p", "seed"),  # anthropic 2.x (API 2026-10-21) has no sampling parameters
    ),
    # google-genai itself reads GOOGLE_API_KEY, then GEMINI_API_KEY; annotator names GEMINI_API_KEY first
    "gemini": ProviderInfo(
        "https://generativelanguage.googleapis.com",
        "GEMINI_API_KEY",
        True,
        False,
        8,
        120.0,
        "Google Gemini (Gemini API)",
        sdk="google-genai",
        extra="gemini",
        instructed=True,
        key_env_also=("GOOGLE_API_KEY",),
    ),
    "mistral": ProviderInfo(
        "https://api.mistral.ai",
        "MISTRAL_API_KEY",
        True,
        False,
        4,
        120.0,
        "Mistral AI",
        sdk="mistralai",
        extra="mistral",
        instructed=True,
    ),
    # a local Ollama server (its own /api/chat, which constrains decoding to a JSON schema); OLLAMA_HOST, as the
    # ollama client reads it, else localhost. A key (OLLAMA_API_KEY) only for a hosted Ollama.
    "ollama": ProviderInfo(
        "http://localhost:11434",
        "OLLAMA_API_KEY",
        False,
        False,
        2,
        300.0,
        "a local Ollama server",
        sdk="ollama",
        extra="ollama",
    ),
}
# the modules each optional client needs, by the name they are imported as (when not the distribution's)
SDK_MODULES = {"google-genai": ("google.genai", "jsonref")}  # instructor's Gemini support needs jsonref
# the model a project uses when none is named: offline, no key
DEFAULT_MODEL = "local/smollm2"

# USD per million tokens (input, output), from the providers' price pages in 2025. Prices change: check
# them, and add or override models in annotator.toml:  [prices."openai/gpt-4o-mini"] input = 0.15 output = 0.6
PRICES: dict[str, tuple[float, float]] = {
    "openai/gpt-4o-mini": (0.15, 0.60),
    "openai/gpt-4o": (2.50, 10.00),
    "openai/gpt-4.1": (2.00, 8.00),
    "openai/gpt-4.1-mini": (0.40, 1.60),
    "openai/gpt-4.1-nano": (0.10, 0.40),
    "groq/llama-3.1-8b-instant": (0.05, 0.08),
    "groq/llama-3.3-70b-versatile": (0.59, 0.79),
    "groq/meta-llama/llama-4-scout-17b-16e-instruct": (0.11, 0.34),
    "groq/meta-llama/llama-4-maverick-17b-128e-instruct": (0.20, 0.60),
    "anthropic/claude-haiku-4-5": (1.00, 5.00),
    "anthropic/claude-3-5-haiku-latest": (0.80, 4.00),
    "anthropic/claude-sonnet-4-5": (3.00, 15.00),
    "anthropic/claude-sonnet-4-0": (3.00, 15.00),
    "anthropic/claude-opus-4-1": (15.00, 75.00),
    "gemini/gemini-2.5-flash-lite": (0.10, 0.40),
    "gemini/gemini-2.5-flash": (0.30, 2.50),
    "gemini/gemini-2.5-pro": (1.25, 10.00),  # prompts up to 200k tokens; longer ones cost more
    "gemini/gemini-2.0-flash": (0.10, 0.40),
    "mistral/mistral-small-latest": (0.10, 0.30),
    "mistral/mistral-medium-latest": (0.40, 2.00),
    "mistral/mistral-large-latest": (2.00, 6.00),
    "mistral/ministral-8b-latest": (0.10, 0.10),
}


@dataclass(frozen=True)
class ModelRef:
    provider: str
    model: str
    base_url: str | None = None
    info: ProviderInfo = field(repr=False, compare=False, default=PROVIDERS["local"])

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}"

    @property
    def embedded(self) -> bool:
        """Whether annotator serves this model itself (the offline local model)."""
        return self.info.embedded

    @property
    def identity(self) -> dict[str, Any]:
        """What identifies this model in the run spec (a local server's port does not)."""
        ident: dict[str, Any] = {"provider": self.provider, "model": self.model}
        if self.provider == "openai-compatible":
            ident["base_url"] = self.base_url
        return ident

    @property
    def users_server(self) -> bool:
        """Served by a server the user runs and names by address (OpenAI-compatible): its address is where the
        model runs, not which model it is."""
        return self.info.base_url is None and not self.info.embedded

    def cache_identity(
        self, identity: dict[str, Any], served: dict[str, Any] | None = None, same_as: str | None = None
    ) -> dict[str, Any]:
        """What identifies this model for the answer cache: ``identity`` (the run spec's), except on a user's
        server, whose address is not the model: the same model behind another port (a restarted vLLM, a
        second machine) would miss the whole cache. There the key is the model's name and what the server
        says about it (its ``/v1/models`` entry, ``served``: see `served_model`); a server that says nothing
        is known by its address, or by the address the user says serves the same model (``same_as``,
        ``--same-model-as``)."""
        if not self.users_server:
            return identity
        if served:
            return {"provider": self.provider, "model": self.model, "served": served}
        return {"provider": self.provider, "model": self.model, "base_url": same_as or self.base_url}


def embedded_model(spec: str) -> str | None:
    """The model name when ``spec`` (PROVIDER/MODEL) names a model annotator serves itself, else None."""
    provider, _, model = spec.partition("/")
    info = PROVIDERS.get(provider)
    return model if info is not None and info.embedded and model else None


def parse_model(spec: str, base_url: str | None = None) -> ModelRef:
    """``provider/model`` -> ModelRef; the model part may itself contain '/' (groq/meta-llama/...)."""
    provider, sep, model = spec.partition("/")
    if not sep or not model:
        raise ProviderError(
            f"model {spec!r}: write PROVIDER/MODEL, e.g. local/smollm2, openai/gpt-4o-mini, "
            f"groq/llama-3.1-8b-instant; providers: {', '.join(PROVIDERS)}"
        )
    info = PROVIDERS.get(provider)
    if info is None:
        raise ProviderError(
            f"unknown provider {provider!r} in {spec!r}; use one of {', '.join(PROVIDERS)} "
            f"(openai-compatible/MODEL with {arg('base_url', 'URL')} reaches any OpenAI-compatible server)"
        )
    _require_extra(spec, info)
    if base_url is not None:
        _check_url(base_url)
    url = base_url or info.base_url
    if provider == "ollama" and not base_url and os.environ.get("OLLAMA_HOST"):
        url = _ollama_host(os.environ["OLLAMA_HOST"])
        _check_url(url, "OLLAMA_HOST")
    if provider == "openai-compatible":
        url = base_url or os.environ.get("OPENAI_BASE_URL")
        if url and not base_url:
            _check_url(url, "OPENAI_BASE_URL")
        if not url:
            raise ProviderError(
                f"{spec}: give the server's address, e.g. {arg('base_url', 'http://localhost:8000/v1')}"
            )
    elif base_url and provider == "local":
        raise ProviderError(  # base_url passed _check_url: no credentials, nothing to hide
            f"local models run on a server annotator starts itself; {arg('base_url', base_url)} does not apply"
        )
    return ModelRef(provider=provider, model=model, base_url=url.rstrip("/") if url else None, info=info)


def _require_extra(spec: str, info: ProviderInfo) -> None:
    """Refuse a provider whose optional client is not installed, saying which extra brings it (looked up, not
    imported: naming a model must not load an SDK)."""
    if info.extra is None:
        return
    modules = (*(("instructor",) if info.instructed else ()), *SDK_MODULES.get(info.sdk, (info.sdk,)))
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a parent package missing, or a module without a spec
            found = False
        if not found:
            raise ProviderError(
                f"{spec} needs {info.sdk}{' and instructor' if info.instructed else ''}, which are not "
                f"installed: pip install 'annotator[{info.extra}]'"
            )


def _ollama_host(value: str) -> str:
    """OLLAMA_HOST as the ollama client reads it: a bare host or host:port means http, port 11434."""
    value = value.strip()
    url = value if "://" in value else f"http://{value}"
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0]
    if host and not host.rsplit("]", 1)[-1].count(":"):  # no port given ([::1] keeps its colons)
        url = f"{scheme}://{host}:{443 if scheme == 'https' else 11434}{rest[len(host) :]}"
    return url


SERVED_DROPPED = ("created", "object")  # vLLM's "created" is when the server started, not the model


def served_model(ref: ModelRef, entries: Any) -> dict[str, Any] | None:
    """What an OpenAI-compatible server's ``/v1/models`` says about ``ref``'s model: the entry whose id is its
    name (or the only entry: llama.cpp's server answers any name with its one model), without the fields that
    change when the same model is served again; None when it says nothing usable. Untrusted text from the
    server: kept only as part of the cache key's hash, and at most 4 kB of it."""
    import json

    if not isinstance(entries, list):
        return None
    mine = [e for e in entries if isinstance(e, dict) and e.get("id") == ref.model]
    if not mine and len(entries) == 1 and isinstance(entries[0], dict):
        mine = entries
    if not mine:
        return None
    entry = {k: v for k, v in mine[0].items() if k not in SERVED_DROPPED}
    text = json.dumps(entry, sort_keys=True, default=str)
    return entry if entry and len(text) <= 4096 else None


def ask_served_model(ref: ModelRef, key: str | None, timeout_s: float = 3.0) -> dict[str, Any] | None:
    """Ask a user's server what it serves (``GET {base_url}/models``) and return ``served_model``'s entry;
    None when it does not answer that (the run then keys the cache on the address; the run itself reports a
    server that is not there). Plain urllib: one small request, and no HTTP client to import for it."""
    import json
    import urllib.request

    if not ref.users_server or ref.base_url is None:
        return None
    request = urllib.request.Request(f"{ref.base_url.rstrip('/')}/models")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:
            data = json.loads(answer.read(1_000_000))
    except (OSError, ValueError):
        return None
    return served_model(ref, data.get("data") if isinstance(data, dict) else None)


def check_url(url: str, param: str) -> None:
    """Refuse an address given as the parameter ``param`` on the rules of a base URL (see _check_url)."""
    _check_url(url, param=param)


def _check_url(url: str, source: str | None = None, param: str = "base_url") -> None:
    """Refuse base URLs that cannot work, or that would put a secret where it gets stored, wherever they come
    from (``source``: the environment variable; None: the ``base_url`` parameter); a refused URL is never
    echoed (it may hold a password)."""
    from urllib.parse import urlsplit

    shown = redact_text(url)
    named = arg(param, shown) if source is None else f"{source} {shown!r}"  # the URL, redacted
    source = arg(param, "URL") if source is None else source  # where it came from, not the URL

    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise ProviderError(f"{source}: not a valid address; write e.g. http://localhost:8000/v1") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ProviderError(f"{named}: write a full address, e.g. http://localhost:8000/v1")
    if parts.username or parts.password:
        raise ProviderError(
            f"{source} must not hold a user name or password (it is stored with the run); put the key in "
            "OPENAI_COMPATIBLE_API_KEY (environment or .env) instead"
        )
    if parts.query or parts.fragment:
        raise ProviderError(
            f"{source} must not have a ?query or #fragment (it is stored with the run, and keys often hide "
            "there); give the plain address, e.g. http://localhost:8000/v1, and the key in OPENAI_COMPATIBLE_API_KEY"
        )


def api_key(ref: ModelRef, project_root: Path | None = None) -> str | None:
    """The key from the environment, else from the project's .env file; never logged or stored."""
    names = [n for n in (ref.info.key_env, *ref.info.key_env_also) if n]
    if not names:
        return None
    key = next((os.environ[n] for n in names if os.environ.get(n)), None)
    if not key and project_root is not None and (project_root / ".env").is_file():
        from dotenv import dotenv_values

        values = dotenv_values(project_root / ".env")
        key = next((values[n] for n in names if values.get(n)), None)
    if not key and ref.info.key_required:
        raise ProviderError(
            f"{ref} needs an API key: set {ref.info.key_names} in the environment or in "
            f"{project_root or '.'}/.env (the key is never written to the database, logs or exports)"
        )
    return key


def price(ref: ModelRef, overrides: dict[str, Any] | None = None) -> tuple[float, float] | None:
    """(input, output) USD per million tokens, or None when unknown. Local models cost nothing."""
    if ref.provider == "local":
        return (0.0, 0.0)
    custom = (overrides or {}).get(str(ref))
    if custom is not None:
        return _custom_price(str(ref), custom)
    return PRICES.get(str(ref))


def _custom_price(name: str, custom: Any) -> tuple[float, float]:
    """A price from annotator.toml's ``[prices."NAME"]``."""
    try:
        return (float(custom["input"]), float(custom["output"]))
    except (KeyError, TypeError, ValueError):
        raise ProviderError(
            f'annotator.toml [prices."{name}"] needs numbers `input` and `output` (USD per million tokens)'
        ) from None


def priced_models(provider: str, overrides: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The models of ``provider`` with a price (built in, or from annotator.toml's ``[prices]``, which wins),
    by name; a provider annotator does not know is refused with the ones it does."""
    if provider not in PROVIDERS:
        raise ProviderError(
            f"{arg('provider', provider)}: not a provider annotator knows ({', '.join(PROVIDERS)})"
        )
    rows: dict[str, dict[str, Any]] = {}
    for name, (cost_in, cost_out) in PRICES.items():
        if name.startswith(f"{provider}/"):
            rows[name] = {"model": name, "input_usd_per_million": cost_in, "output_usd_per_million": cost_out,
                          "price_from": "built in"}  # fmt: skip
    for name, custom in (overrides or {}).items():
        if name.startswith(f"{provider}/"):
            cost_in, cost_out = _custom_price(name, custom)
            rows[name] = {"model": name, "input_usd_per_million": cost_in, "output_usd_per_million": cost_out,
                          "price_from": "annotator.toml"}  # fmt: skip
    return [rows[k] for k in sorted(rows)]


def cost(prices: tuple[float, float] | None, tokens_in: int, tokens_out: int) -> float | None:
    if prices is None:
        return None
    return (tokens_in * prices[0] + tokens_out * prices[1]) / 1_000_000
