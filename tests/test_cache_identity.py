"""Which model the answer cache is keyed on for an OpenAI-compatible server: the model's name and what the
server says about it (its /v1/models entry, without vLLM's start time), not the server's address. A server
that says nothing is known by its address, unless the user names another address serving the same model
(`--same-model-as`). Real runs against scripted servers on two ports."""

from __future__ import annotations

from pathlib import Path

import pytest

from annotator.llm.providers import parse_model, served_model
from annotator.services import run as runner
from tests.conftest import film_texts, import_docs, label_by_word, scripted_request
from tests.scripted_server import ScriptedServer

WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]


@pytest.fixture
def docs(project, tmp_path: Path) -> dict[str, str]:
    return import_docs(project, tmp_path, film_texts(WORDS))


def _run(project, server: ScriptedServer, tag: str, **kw):  # type: ignore[no-untyped-def]
    request = scripted_request(server, split="dev", concurrency=2, retries=1, tag=tag, **kw)
    outcome = runner.label(project, request)
    assert outcome.status == "done" and outcome.stats.done == len(WORDS)
    return outcome


SAME = [{"id": "scripted", "object": "model", "created": 1, "owned_by": "tests", "root": "/models/same.gguf"}]


def test_the_same_model_behind_another_port_is_answered_from_the_cache(project, docs) -> None:
    answer = label_by_word({"awful": "negative"})
    restarted = [{**SAME[0], "created": 2}]  # vLLM's "created": when the server started
    with ScriptedServer(answer, models=SAME) as first, ScriptedServer(answer, models=restarted) as second:
        assert first.base_url != second.base_url
        _run(project, first, "first")
        assert len(first.requests) == len(WORDS)
        again = _run(project, second, "second")
        assert again.stats.cached == len(WORDS) and second.requests == []


def test_another_model_on_the_same_name_is_asked_again(project, docs) -> None:
    answer = label_by_word({"awful": "negative"})
    other = [{**SAME[0], "root": "/models/another.gguf"}]
    with ScriptedServer(answer, models=SAME) as first, ScriptedServer(answer, models=other) as second:
        _run(project, first, "first")
        again = _run(project, second, "second")
        assert again.stats.cached == 0 and len(second.requests) == len(WORDS)


def test_a_server_that_says_nothing_is_known_by_its_address_or_by_same_model_as(project, docs, cli) -> None:
    answer = label_by_word({"awful": "negative"})
    with ScriptedServer(answer, describes=False) as first, ScriptedServer(answer, describes=False) as second:
        _run(project, first, "first")
        asked = _run(project, second, "second")
        assert asked.stats.cached == 0 and len(second.requests) == len(WORDS)
        said = _run(project, second, "third", same_model_as=first.base_url)
        assert said.stats.cached == len(WORDS) and len(second.requests) == len(WORDS)
        args = ["run", "--prompt", "sentiment/zero-shot.v1", "--split", "dev"]
        wrong = cli(*args, "--model", "local/smollm2", "--same-model-as", first.base_url)
        assert wrong.code == 2 and "--same-model-as" in wrong.err and "openai-compatible" in wrong.err
        secret = "http://user:hunter2@127.0.0.1:9/v1"
        refused = cli(*args, "--model", "openai-compatible/scripted", "--base-url", second.base_url,
                      "--same-model-as", secret)  # fmt: skip
        assert refused.code == 2 and "--same-model-as" in refused.err and "hunter2" not in refused.err


def test_what_the_server_says_is_read_without_its_start_time() -> None:
    ref = parse_model("openai-compatible/m", "http://127.0.0.1:9/v1")
    vllm = {
        "id": "m",
        "object": "model",
        "created": 1733300000,
        "owned_by": "vllm",
        "root": "/w/m",
        "max_model_len": 8,
    }
    assert served_model(ref, [vllm]) == {"id": "m", "owned_by": "vllm", "root": "/w/m", "max_model_len": 8}
    assert served_model(ref, [{"id": "other"}, {"id": "another"}]) is None  # neither is this model
    assert served_model(ref, [{"id": "/models/x.gguf", "meta": {"n_params": 135}}])["meta"] == {
        "n_params": 135
    }
    assert (
        served_model(ref, "not a list") is None and served_model(ref, [{"id": "m", "x": "y" * 5000}]) is None
    )
    first = ref.cache_identity(ref.identity, served_model(ref, [vllm]))
    restarted = ref.cache_identity(ref.identity, served_model(ref, [{**vllm, "created": 1733400000}]))
    assert first == restarted and "base_url" not in first


def test_each_provider_is_asked_through_its_own_client(project, docs, monkeypatch) -> None:
    """groq/ goes through the groq client, openai/ and openai-compatible/ through the openai client: the key of
    each provider in the Authorization header, the client's name in the User-Agent, and the run records the
    version of the client that sent its requests (and not the other's)."""
    from importlib.metadata import version

    from annotator.llm.spec import RunRequest
    from annotator.store.models import Run

    monkeypatch.setenv("GROQ_API_KEY", "gsk_test_groq_key_0123456789")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai-key-0123456789")
    answer = label_by_word({"awful": "negative"})
    cases = [("groq/llama-3.1-8b-instant", "groq", "gsk_test_groq_key_0123456789"),
             ("openai/gpt-4o-mini", "openai", "sk-test-openai-key-0123456789"),
             ("openai-compatible/scripted", "openai", "no-key")]  # fmt: skip
    for model, client, key in cases:
        with ScriptedServer(answer) as server:
            request = RunRequest(prompt="sentiment/zero-shot.v1", model=model, base_url=server.base_url,
                                 split="dev", concurrency=2, retries=1)  # fmt: skip
            outcome = runner.label(project, request)
            assert outcome.status == "done" and outcome.stats.ok == len(WORDS), model
            headers = {k.lower(): v for k, v in server.requests[0].headers.items()}
            assert headers["authorization"] == f"Bearer {key}", model
            assert headers["user-agent"].lower().startswith(f"async{client}/"), headers["user-agent"]
        with project.transaction() as s:
            run = s.get(Run, outcome.run_id)
        assert run is not None and run.versions[client] == version(client)
        other = "openai" if client == "groq" else "groq"
        assert other not in run.versions and "aiohttp" not in run.versions
