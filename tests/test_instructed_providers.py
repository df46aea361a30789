"""Anthropic, Gemini, Mistral and Ollama: real `annotator run`s through each provider's official SDK (and
instructor) against a scripted loopback endpoint in that provider's wire format (tests/provider_servers.py).
No key and no network: the keys are made up, the servers are on 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import col, select

from annotator.llm.providers import ProviderError, api_key, parse_model, priced_models
from annotator.llm.runstore import run_packages
from annotator.store.models import Coder, PromptVersion, Run
from tests.conftest import REASKED, db_snapshot, film_texts, import_docs, run_annotations
from tests.provider_servers import ProviderServer
from tests.scripted_server import Fail, Label, Sleep

KEYS = {
    "anthropic": "ANTHROPIC_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "mistral": "MISTRAL_API_KEY",
    "ollama": "OLLAMA_API_KEY",
}
SDKS = {"anthropic": "anthropic", "gemini": "google-genai", "mistral": "mistralai", "ollama": "ollama"}
PROVIDERS = list(KEYS)
SECRET = "sk-test-SECRET-never-stored-0123456789"
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]


def _label_for(text: str) -> str:
    return "negative" if "awful" in text else "positive"


@pytest.fixture
def docs(project, tmp_path: Path) -> dict[str, str]:
    return import_docs(project, tmp_path, film_texts(WORDS))


def _run(cli, provider: str, server: ProviderServer, *extra: str):
    return cli(
        "run",
        "--prompt",
        "sentiment/zero-shot.v1",
        "--model",
        f"{provider}/test-model",
        "--base-url",
        server.base_url,
        "--split",
        "dev",
        "--concurrency",
        "2",
        *extra,
    )


def _llm_runs(project) -> list[Run]:
    with project.transaction() as s:
        return list(s.exec(select(Run).where(col(Run.kind) == "llm")).all())


def _turns(provider: str, body: dict) -> list[tuple[str, str]]:
    """(role, text) of each turn of a request, system included, in the provider's own terms."""
    from tests.provider_servers import _text

    if provider == "gemini":
        system = _text((body.get("systemInstruction") or {}).get("parts"))
        turns = [(c.get("role", "user"), _text(c.get("parts"))) for c in body["contents"]]
        return [("system", system), *turns] if system else turns
    turns = [(m["role"], _text(m.get("content"))) for m in body["messages"]]
    if provider == "anthropic" and body.get("system"):
        turns.insert(0, ("system", _text(body["system"])))
    return turns


def _asked_for_the_schema(provider: str, body: dict) -> list[str]:
    """The labels the request's structured-output part allows."""
    if provider == "anthropic":
        assert body["tool_choice"]["type"] == "tool"
        schema = body["tools"][0]["input_schema"]
    elif provider == "gemini":
        config = body["generationConfig"]
        assert config["responseMimeType"] == "application/json"
        schema = config.get("responseSchema") or config["responseJsonSchema"]
    elif provider == "mistral":
        assert body["response_format"]["type"] == "json_schema"
        schema = body["response_format"]["json_schema"]["schema"]
    else:
        schema = body["format"]
    label = schema["properties"]["label"]
    return [v.lower() for v in label["enum"]]


def _params(provider: str, body: dict) -> dict:
    """temperature, the answer's token bound and the seed, as the provider got them."""
    if provider == "anthropic":  # API version 2026-10-21 (SDK 2.x) takes no sampling parameters
        assert not {"temperature", "top_p", "seed"} & set(body)
        return {"temperature": 0, "max_tokens": body["max_tokens"], "seed": None}
    if provider == "gemini":
        c = body["generationConfig"]
        return {"temperature": c["temperature"], "max_tokens": c["maxOutputTokens"], "seed": c["seed"]}
    if provider == "mistral":
        return {
            "temperature": body["temperature"],
            "max_tokens": body["max_tokens"],
            "seed": body["random_seed"],
        }
    o = body["options"]
    return {"temperature": o["temperature"], "max_tokens": o["num_predict"], "seed": o["seed"]}


def _key_sent(provider: str, headers: dict[str, str]) -> str | None:
    headers = {k.lower(): v for k, v in headers.items()}
    if provider == "anthropic" and "x-api-key" in headers:  # anthropic 2.x sends Authorization: Bearer
        return headers["x-api-key"]
    if provider == "gemini":
        return headers.get("x-goog-api-key")
    return (headers.get("authorization") or "").removeprefix("Bearer ") or None


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_run_labels_through_the_providers_sdk_and_stores_invalid_answers_raw(
    project, docs, cli, monkeypatch, provider: str
) -> None:
    monkeypatch.setenv(KEYS[provider], SECRET)
    never_valid = lambda text, attempt: Label("ecstatic") if "charlie" in text or REASKED in text else None  # noqa: E731
    with ProviderServer(provider, _label_for, rule=never_valid) as server:
        result = _run(cli, provider, server, "--reasks", "1")
    assert result.code == 0, result
    [run] = _llm_runs(project)
    stored = run_annotations(project, run.id)
    assert len(stored) == len(WORDS) and run.status == "done"
    for key, a in stored.items():
        if key == "d02":  # charlie: outside the codebook, then again after the engine's re-ask
            assert a.status == "invalid" and a.label is None and a.raw == '{"label": "ecstatic"}'
            assert "Input should be" in a.error and a.attempts == 2
            continue
        assert a.status == "ok" and a.label == _label_for(docs[key]), (key, a)
        assert a.raw == f'{{"label": "{a.label}"}}' and (a.tokens_in, a.tokens_out) == (21, 7)
    # the engine's re-ask carries the answer and its validation error, in the provider's own turns
    [reask] = [r for r in server.requests if REASKED in r.text]
    assert "Input should be" in reask.text
    turns = _turns(provider, reask.body)
    assert turns[-2][0] in ("assistant", "model") and turns[-2][1] == '{"label": "ecstatic"}'
    # the request: the system prompt in its place, the schema, the parameters, the key in its header
    first = server.requests[0]
    assert (
        _turns(provider, first.body)[0][0] == "system"
        and "careful coder" in _turns(provider, first.body)[0][1]
    )
    assert _asked_for_the_schema(provider, first.body) == ["negative", "positive", "neutral"]
    params = _params(provider, first.body)
    assert params["temperature"] == 0 and params["max_tokens"] == 64
    assert params["seed"] == (None if provider == "anthropic" else 42)
    # what an API does not take is not recorded either (Anthropic: no sampling parameters)
    recorded = run.params["model_params"]
    assert ("temperature" in recorded and "seed" in recorded) == (provider != "anthropic")
    assert _key_sent(provider, first.headers) == SECRET
    # what answered is recorded, and the key is nowhere
    assert run.versions[SDKS[provider]] and ("instructor" in run.versions) == (provider != "ollama")
    assert run.versions["server_model"] == "test-model-served"
    assert SECRET not in db_snapshot(project) and SECRET not in result.out + result.err


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_429_with_retry_after_is_waited_through(project, docs, cli, monkeypatch, provider: str) -> None:
    monkeypatch.setenv(KEYS[provider], SECRET)
    with ProviderServer(provider, _label_for) as server:
        server.script([Fail(429, retry_after=1, message=f"slow down {SECRET}")], text_contains="alpha")
        result = _run(cli, provider, server)
    assert result.code == 0, result
    [run] = _llm_runs(project)
    stored = run_annotations(project, run.id)
    assert all(a.status == "ok" for a in stored.values()) and stored["d00"].attempts == 2
    alpha = [r.time for r in server.requests if "alpha" in r.text]
    assert len(alpha) == 2 and alpha[1] - alpha[0] >= 0.9  # waited for Retry-After: 1
    assert SECRET not in db_snapshot(project) and SECRET not in result.out + result.err


@pytest.mark.parametrize("provider", PROVIDERS)
def test_timeouts_and_server_errors_are_retried(project, docs, cli, monkeypatch, provider: str) -> None:
    monkeypatch.setenv(KEYS[provider], SECRET)
    with ProviderServer(provider, _label_for) as server:
        server.script([Sleep(3)], text_contains="alpha")
        server.script([Fail(503, message=f"overloaded {SECRET}"), Fail(500)], text_contains="bravo")
        result = _run(cli, provider, server, "--timeout", "0.5", "--retries", "2")
    assert result.code == 0, result
    [run] = _llm_runs(project)
    stored = run_annotations(project, run.id)
    assert all(a.status == "ok" for a in stored.values())
    assert stored["d00"].attempts == 2 and stored["d01"].attempts == 3


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_refused_key_stops_the_run_naming_its_variable_and_creates_nothing(
    project, docs, cli, monkeypatch, caplog, provider: str
) -> None:
    monkeypatch.setenv(KEYS[provider], SECRET)
    before = db_snapshot(project)
    with ProviderServer(
        provider, rule=lambda text, attempt: Fail(401, message=f"bad key {SECRET}")
    ) as server:
        result = _run(cli, provider, server)
    assert result.code == 2, result
    assert f"refused the credentials (HTTP 401); check {KEYS[provider]}" in result.err
    assert "bad key [redacted]" in result.err and SECRET not in result.out + result.err + caplog.text
    assert db_snapshot(project) == before and SECRET not in db_snapshot(project)
    with project.transaction() as s:
        assert s.exec(select(PromptVersion)).all() == []
        assert s.exec(select(Coder).where(col(Coder.kind) == "llm")).all() == []


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_unknown_model_stops_the_run_and_a_bad_request_fails_only_its_item(
    project, docs, cli, monkeypatch, provider: str
) -> None:
    monkeypatch.setenv(KEYS[provider], SECRET)
    with ProviderServer(provider, rule=lambda text, attempt: Fail(404, message="no such model")) as server:
        result = _run(cli, provider, server)
    assert result.code == 2 and "HTTP 404 from http://127.0.0.1:" in result.err, result
    assert "wrong base URL or unknown model" in result.err and _llm_runs(project) == []
    with ProviderServer(provider, _label_for) as server:
        server.script([Fail(400, message="prompt too long")], text_contains="alpha")
        _run(cli, provider, server)
    [run] = _llm_runs(project)
    stored = run_annotations(project, run.id)
    assert stored["d00"].status == "error" and "HTTP 400" in stored["d00"].error
    assert "prompt too long" in stored["d00"].error and len(server.texts()) == len(WORDS)
    assert all(a.status == "ok" for key, a in stored.items() if key != "d00")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_server_that_is_not_there_stops_the_run_at_once(project, docs, cli, monkeypatch, provider) -> None:
    monkeypatch.setenv(KEYS[provider], SECRET)
    before = db_snapshot(project)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    result = cli(
        "run",
        "--prompt",
        "sentiment/zero-shot.v1",
        "--model",
        f"{provider}/test-model",
        "--base-url",
        f"http://127.0.0.1:{port}",
        "--split",
        "dev",
    )
    assert result.code == 2, result
    assert "cannot connect to" in result.err and "is the server running" in result.err
    assert db_snapshot(project) == before


@pytest.mark.parametrize(("provider", "module"), [("anthropic", "anthropic"), ("gemini", "instructor")])
def test_without_the_extra_one_message_names_it_and_nothing_is_created(
    project, docs, cli, monkeypatch, provider: str, module: str
) -> None:
    monkeypatch.setenv(KEYS[provider], SECRET)
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed: find_spec says None
    before = db_snapshot(project)
    result = cli("run", "--prompt", "sentiment/zero-shot.v1", "--model", f"{provider}/x", "--split", "dev")
    assert result.code == 2 and result.err.count("\n") == 1, result
    assert f"pip install 'annotator[{provider}]'" in result.err and "Traceback" not in result.err
    assert db_snapshot(project) == before


def test_the_cli_and_openai_runs_import_no_provider_sdk() -> None:
    """instructor and the provider SDKs load only for their providers: not with the CLI, nor with the run
    engine's transport for openai/groq/local."""
    code = (
        "import sys, annotator.cli, annotator.llm.labeler, annotator.llm.transport as t\n"
        "from annotator.llm.providers import parse_model\n"
        "t.chat_client(parse_model('openai/gpt-4o-mini'), 'http://127.0.0.1:9/v1', 'k', 5.0, 2)\n"
        "loaded = [m for m in ('instructor', 'anthropic', 'google.genai', 'mistralai', 'ollama') if m in sys.modules]\n"
        "print(loaded)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_providers_record_what_answered_and_read_their_keys(monkeypatch, tmp_path: Path) -> None:
    for provider, sdk in SDKS.items():
        packages = run_packages(parse_model(f"{provider}/m"))
        assert sdk in packages and ("instructor" in packages) == (provider != "ollama")
        assert "openai" not in packages
    gemini = parse_model("gemini/gemini-2.5-flash")
    with pytest.raises(ProviderError, match="set GEMINI_API_KEY or GOOGLE_API_KEY"):
        api_key(gemini, tmp_path)
    monkeypatch.setenv("GOOGLE_API_KEY", "from-google")  # what google-genai itself reads
    assert api_key(gemini, tmp_path) == "from-google"
    monkeypatch.setenv("GEMINI_API_KEY", "from-gemini")
    assert api_key(gemini, tmp_path) == "from-gemini"
    assert api_key(parse_model("ollama/llama3.1"), tmp_path) is None  # a local Ollama needs no key
    (tmp_path / ".env").write_text("MISTRAL_API_KEY=from-dotenv\n")
    assert api_key(parse_model("mistral/mistral-small-latest"), tmp_path) == "from-dotenv"


@pytest.mark.parametrize(
    ("host", "url"),
    [
        (None, "http://localhost:11434"),
        ("0.0.0.0", "http://0.0.0.0:11434"),
        ("gpu-box:8080", "http://gpu-box:8080"),
        ("https://ollama.example.org", "https://ollama.example.org:443"),
    ],
)
def test_ollama_follows_ollama_host_unless_a_base_url_is_given(monkeypatch, host, url) -> None:
    if host is not None:
        monkeypatch.setenv("OLLAMA_HOST", host)
    assert parse_model("ollama/llama3.1").base_url == url
    assert parse_model("ollama/llama3.1", "http://127.0.0.1:5/").base_url == "http://127.0.0.1:5"
    monkeypatch.setenv("OLLAMA_HOST", "http://user:pw@host:1")
    with pytest.raises(ProviderError, match="OLLAMA_HOST must not hold a user name or password"):
        parse_model("ollama/llama3.1")


@pytest.mark.parametrize("provider", ["anthropic", "gemini", "mistral"])
def test_models_list_shows_built_in_prices(cli, provider: str) -> None:
    assert priced_models(provider)
    result = cli("models", "list", "--provider", provider, "--json")
    assert result.code == 0 and f'"{provider}/' in result.out


def test_a_parameter_the_provider_does_not_take_is_refused(project, docs, cli, monkeypatch) -> None:
    monkeypatch.setenv(KEYS["anthropic"], SECRET)
    before = db_snapshot(project)
    result = cli("run", "--prompt", "sentiment/zero-shot.v1", "--model", "anthropic/claude-x",
                 "--base-url", "http://127.0.0.1:9", "--temperature", "0.5")  # fmt: skip
    assert result.code == 2 and "anthropic/ models take no temperature: drop --temperature 0.5" in result.err
    assert db_snapshot(project) == before
