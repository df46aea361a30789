"""The scripted OpenAI-compatible server that the failure tests rely on: it must do what it is told."""

from __future__ import annotations

import asyncio
import errno
import json
import math
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import openai
import pytest

from tests.scripted_server import Broken, Fail, Label, Ok, ScriptedServer, Sleep


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as srv:
        yield srv


def client(srv: ScriptedServer, timeout: float = 10.0) -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.base_url, api_key="test-key", max_retries=0, timeout=timeout)


def ask(c: openai.OpenAI, text: str | list[dict[str, str]], **kwargs: Any) -> Any:
    messages: Any = [
        {"role": "system", "content": "Label the sentiment."},
        {"role": "user", "content": "An example that is not the document."},
        {"role": "assistant", "content": '{"label": "negative"}'},
        {"role": "user", "content": text},
    ]
    return c.chat.completions.create(model="test-model", messages=messages, **kwargs)


def label_of(completion) -> str:
    return json.loads(completion.choices[0].message.content)["label"]


def test_default_answer_uses_label_for_and_carries_usage() -> None:
    with ScriptedServer(label_for=lambda text: "negative" if "awful" in text else "positive") as srv:
        c = client(srv)
        bad, good = ask(c, "an awful film"), ask(c, "a fine film")
    assert label_of(bad) == "negative"
    assert label_of(good) == "positive"
    assert bad.model == "test-model"
    assert bad.choices[0].finish_reason == "stop"
    assert bad.choices[0].logprobs is None
    assert bad.usage is not None
    assert bad.usage.prompt_tokens > 0 and bad.usage.completion_tokens > 0
    assert bad.usage.total_tokens == bad.usage.prompt_tokens + bad.usage.completion_tokens


def test_scripted_responses_come_in_order_then_the_default(server: ScriptedServer) -> None:
    server.script(
        text_contains="alpha",
        responses=[
            Fail(429, retry_after=2),
            Fail(500),
            Broken(),
            Label("ecstatic"),
            Fail(503, retry_after=0.5),
        ],
    )
    c = client(server)

    with pytest.raises(openai.RateLimitError) as rate:
        ask(c, "alpha text")
    assert rate.value.status_code == 429
    assert rate.value.response.headers["Retry-After"] == "2"
    assert rate.value.code == "rate_limit_exceeded"

    with pytest.raises(openai.InternalServerError) as internal:
        ask(c, "alpha text")
    assert internal.value.status_code == 500

    broken = ask(c, "alpha text")
    assert broken.choices[0].message.content == '{"label": "posi'
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken.choices[0].message.content)
    assert broken.usage is not None and broken.usage.completion_tokens > 0

    assert label_of(ask(c, "alpha text")) == "ecstatic"

    with pytest.raises(openai.InternalServerError) as unavailable:
        ask(c, "alpha text")
    assert unavailable.value.status_code == 503
    assert unavailable.value.response.headers["Retry-After"] == "0.5"

    assert label_of(ask(c, "alpha text")) == "positive"  # the script is used up
    assert label_of(ask(c, "alpha text")) == "positive"
    assert label_of(ask(c, "beta text")) == "positive"  # never scripted

    assert [r.status for r in server.requests] == [429, 500, 200, 200, 503, 200, 200, 200]
    assert [r.attempt for r in server.requests] == [1, 2, 3, 4, 5, 6, 7, 1]
    assert server.answered == {"alpha text": 4, "beta text": 1}


def test_retry_after_header_and_error_body_over_raw_http(server: ScriptedServer) -> None:
    server.script(text="doc", responses=[Fail(429, retry_after=1, message="slow down")])

    async def go() -> tuple[int, str | None, dict, int]:
        async with aiohttp.ClientSession() as session:
            body = {"model": "m", "messages": [{"role": "user", "content": "doc"}]}
            async with session.post(f"{server.base_url}/chat/completions", json=body) as response:
                first = (response.status, response.headers.get("Retry-After"), await response.json())
            async with session.post(f"{server.base_url}/chat/completions", data=b"not json") as response:
                return (*first, response.status)

    status, retry_after, error, bad_request = asyncio.run(go())
    assert (status, retry_after) == (429, "1")
    assert error["error"]["message"] == "slow down"
    assert error["error"]["code"] == "rate_limit_exceeded"
    assert bad_request == 400
    assert len(server.requests) == 1  # a body that is not JSON is refused before the log


def test_sleep_outlasts_the_client_timeout_and_is_not_counted(server: ScriptedServer) -> None:
    server.script(text="slow", responses=[Sleep(1.0), Sleep(0.2, then=Label("negative"))])
    c = client(server, timeout=0.3)
    with pytest.raises(openai.APITimeoutError):
        ask(c, "slow")
    assert server.wait_idle(10)
    assert server.requests[0].status is None  # the answer found no client
    assert server.answered.get("slow", 0) == 0

    patient = client(server, timeout=10)
    assert label_of(ask(patient, "slow")) == "negative"  # a Sleep whose client waits gets its answer
    assert label_of(ask(patient, "slow")) == "positive"
    assert server.answered == {"slow": 2}
    assert [r.status for r in server.requests] == [None, 200, 200]


def test_scripts_count_per_text_unless_told_otherwise(server: ScriptedServer) -> None:
    server.script(text_contains="alpha", responses=[Fail(500)])
    server.script(responses=[Label("first"), Label("second")], per_text=False)
    c = client(server)
    with pytest.raises(openai.InternalServerError):
        ask(c, "alpha one")
    with pytest.raises(openai.InternalServerError):
        ask(c, "alpha two")  # its own first attempt
    # alpha's script is used up for 'alpha one': the shared script answers, whatever the text
    assert label_of(ask(c, "alpha one")) == "first"
    assert label_of(ask(c, "gamma")) == "second"
    assert label_of(ask(c, "delta")) == "positive"
    assert server.texts() == ["alpha one", "alpha two", "alpha one", "gamma", "delta"]


def test_exact_text_matches_only_that_text(server: ScriptedServer) -> None:
    server.script(text="one", responses=[Label("negative")])
    c = client(server)
    assert label_of(ask(c, "one more")) == "positive"
    assert label_of(ask(c, "one")) == "negative"


def test_rule_comes_before_scripts_and_sees_the_attempt() -> None:
    seen: list[tuple[str, int]] = []

    def rule(text: str, attempt: int):
        seen.append((text, attempt))
        if "always" in text:
            return Fail(500)
        return Label(f"attempt-{attempt}") if attempt > 1 else None

    with ScriptedServer(rule=rule) as srv:
        srv.script(text="x", responses=[Label("scripted"), Label("never")])
        c = client(srv)
        assert label_of(ask(c, "x")) == "scripted"  # the rule passes: the script answers
        assert label_of(ask(c, "x")) == "attempt-2"  # the rule answers, the script is not used
        for _ in range(3):
            with pytest.raises(openai.InternalServerError):
                ask(c, "always bad")
        assert srv.answered == {"x": 2}
    assert seen == [("x", 1), ("x", 2), ("always bad", 1), ("always bad", 2), ("always bad", 3)]


def test_request_log_records_body_text_and_order(server: ScriptedServer) -> None:
    c = client(server)
    ask(c, "first", temperature=0.3, seed=7)
    ask(c, [{"type": "text", "text": "second "}, {"type": "text", "text": "part"}])
    log = server.requests
    assert [r.text for r in log] == ["first", "second part"]
    assert log[0].body["temperature"] == 0.3
    assert log[0].body["seed"] == 7
    assert log[0].body["model"] == "test-model"
    assert len(log[0].body["messages"]) == 4
    assert log[0].time <= log[1].time
    assert all(isinstance(r.response, Ok) for r in log)
    # snapshots: what a caller holds does not change under it
    log.clear()
    assert len(server.requests) == 2


def test_concurrent_requests_are_all_logged_and_counted(server: ScriptedServer) -> None:
    server.script(text_contains="doc 1", responses=[Fail(429, retry_after=0)])  # doc 1, doc 10..19

    async def go() -> list[str | None]:
        c = openai.AsyncOpenAI(base_url=server.base_url, api_key="k", max_retries=0)

        async def one(i: int) -> str | None:
            try:
                done = await c.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": f"doc {i}"}]
                )
            except openai.RateLimitError:
                return None
            return label_of(done)

        try:
            return await asyncio.gather(*(one(i) for i in range(40)))
        finally:
            await c.close()

    labels = asyncio.run(go())
    assert labels.count(None) == 11
    assert len(server.requests) == 40
    assert sum(server.answered.values()) == 29
    assert "doc 1" not in server.answered and server.answered["doc 2"] == 1


def test_logprobs_only_when_asked(server: ScriptedServer) -> None:
    c = client(server)
    assert ask(c, "plain").choices[0].logprobs is None
    assert ask(c, "off", logprobs=False).choices[0].logprobs is None

    done = ask(c, "on", logprobs=True, top_logprobs=3)
    content = done.choices[0].message.content
    entries = done.choices[0].logprobs.content
    assert "".join(e.token for e in entries) == content
    assert [e.token for e in entries] == ['{"', "label", '":', ' "', "positive", '"}']
    assert all(len(e.top_logprobs) == 3 for e in entries)
    assert all(e.top_logprobs[0].token == e.token for e in entries)
    assert all(bytes(e.bytes) == e.token.encode() for e in entries)
    label = entries[4]
    assert math.exp(label.logprob) == pytest.approx(0.9)  # the server's label_prob
    assert [t.token for t in label.top_logprobs[:2]] == ["positive", "negative"]
    assert math.exp(label.top_logprobs[1].logprob) == pytest.approx(0.1)
    assert all(math.exp(e.logprob) > 0.999 for i, e in enumerate(entries) if i != 4)
    assert done.usage.completion_tokens == len(entries)


def test_logprobs_follow_the_scripted_probability_and_label() -> None:
    with ScriptedServer(labels=["negative", "neutral", "positive"]) as srv:
        srv.script(text="d", responses=[Label("very negative", prob=0.6), Ok(prob=0.25), Broken()])
        c = client(srv)
        multi = ask(c, "d", logprobs=True, top_logprobs=5)
        ok = ask(c, "d", logprobs=True)
        broken = ask(c, "d", logprobs=True, top_logprobs=1)

    entries = multi.choices[0].logprobs.content
    value = [e for e in entries if e.logprob < -1e-3]
    assert "".join(e.token for e in value) == "very negative"  # the label spans two tokens
    assert math.exp(sum(e.logprob for e in value)) == pytest.approx(0.6)
    assert {t.token for t in value[0].top_logprobs} >= {"negative", "neutral", "positive"}
    assert math.exp(value[0].top_logprobs[1].logprob) == pytest.approx(0.4 / 3)

    ok_entries = ok.choices[0].logprobs.content
    assert all(e.top_logprobs == [] for e in ok_entries)  # top_logprobs not asked
    assert math.exp(min(e.logprob for e in ok_entries)) == pytest.approx(0.25)

    broken_entries = broken.choices[0].logprobs.content
    assert "".join(e.token for e in broken_entries) == '{"label": "posi'
    assert all(len(e.top_logprobs) == 1 for e in broken_entries)


def test_structured_answers_beyond_a_single_label() -> None:
    def answer(text: str):
        return {"rationale": "it says so", "labels": ["joy", "anger"]} if "multi" in text else "positive"

    with ScriptedServer(label_for=answer) as srv:
        srv.script(text="odd", responses=[Label({"labels": []})])
        c = client(srv)
        assert json.loads(ask(c, "multi text").choices[0].message.content) == {
            "rationale": "it says so",
            "labels": ["joy", "anger"],
        }
        assert json.loads(ask(c, "odd").choices[0].message.content) == {"labels": []}
        assert label_of(ask(c, "simple")) == "positive"


def test_latency_delays_every_answer() -> None:
    with ScriptedServer(latency=0.3) as srv:
        c = client(srv)
        start = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            ask(client(srv, timeout=0.1), "late")
        srv.wait_idle()
        assert label_of(ask(c, "late")) == "positive"
        assert time.monotonic() - start >= 0.3  # a lower bound only: sleeps never end early
        assert srv.answered == {"late": 1}


def test_models_endpoint(server: ScriptedServer) -> None:
    models = client(server).models.list()
    assert [m.id for m in models.data] == ["scripted"]


def test_reset_forgets_log_counts_and_scripts(server: ScriptedServer) -> None:
    server.script(text="r", responses=[Fail(500), Fail(500)])
    c = client(server)
    with pytest.raises(openai.InternalServerError):
        ask(c, "r")
    ask(c, "s")
    server.reset()
    assert server.requests == []
    assert server.answered == {}
    assert label_of(ask(c, "r")) == "positive"  # the script is gone
    assert [r.attempt for r in server.requests] == [1]


def test_bad_scripts_are_refused(server: ScriptedServer) -> None:
    with pytest.raises(TypeError):
        server.script(responses=[429])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        server.script(responses=[Ok()], text="a", text_contains="a")


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_stop_ends_the_thread_and_frees_the_port() -> None:
    srv = ScriptedServer()
    with srv:
        port = srv.port
        assert port > 0 and srv.running
        assert srv.base_url == f"http://127.0.0.1:{port}/v1"
        assert _listening(port)
        assert any(t.name == "ScriptedServer" for t in threading.enumerate())
    assert not srv.running
    assert not any(t.name == "ScriptedServer" for t in threading.enumerate())
    assert not _listening(port)
    with socket.socket() as again:  # nothing listens there any more
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            again.bind(("127.0.0.1", port))
        except OSError as exc:  # pragma: no cover - the failure this test exists for
            pytest.fail(f"port {port} still taken: {errno.errorcode.get(exc.errno, exc)}")
    with pytest.raises(RuntimeError):
        _ = srv.base_url
    srv.stop()  # a second stop is harmless


def test_stop_with_a_request_in_flight_and_restart() -> None:
    srv = ScriptedServer()
    srv.start()
    srv.script(text="hang", responses=[Sleep(60)])
    errors: list[BaseException] = []

    def hang() -> None:
        try:
            ask(client(srv, timeout=30), "hang")
        except BaseException as exc:
            errors.append(exc)

    caller = threading.Thread(target=hang)
    caller.start()
    deadline = time.monotonic() + 10
    while not srv.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    assert srv.texts() == ["hang"]
    srv.stop()
    caller.join(30)
    assert not caller.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], openai.APIError)  # cut off, not answered
    assert srv.answered == {}
    assert not srv.running

    with srv:  # the same object starts again, with its log kept
        assert label_of(ask(client(srv), "again")) == "positive"
        assert srv.texts() == ["hang", "again"]
