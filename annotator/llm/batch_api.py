"""A provider's Batch API (OpenAI's, and Groq's, which follows it) through its official client: upload a
file of requests, create a batch, ask how it is doing, download its output and error files.

The client is the run engine's (`transport.sdk_client`: the SDK on its aiohttp backend, its own retries off).
A 429, a 5xx or a dropped connection is retried here a few times with a growing pause (one poll that fails
is not a reason to stop watching a batch that runs for hours); a refused key, an unknown batch or a server
that is not there stops the command with one message (`BatchError`, exit status 2) in which every text from
the server is redacted. Nothing the server says is stored raw.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
from dataclasses import dataclass
from typing import Any

from annotator.errors import AnnotatorError
from annotator.llm.batch import ENDPOINT
from annotator.llm.providers import ModelRef
from annotator.redaction import redact_text, safe_url

TERMINAL = ("completed", "failed", "expired", "cancelled")  # the provider is done with the batch
TRIES = 4  # attempts of one call on 429, 5xx and dropped connections
PAUSE_S = 2.0  # the first pause between them (doubled each time)
GROQ_PATH = "/openai/v1"


class BatchError(AnnotatorError):
    """The provider refused or lost a batch call (the key, the batch, the server); ``status``: its HTTP
    status, when it answered."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Remote:
    """A batch as the provider describes it."""

    remote_id: str
    state: str
    answered: int
    failed: int
    total: int
    output_file_id: str | None
    error_file_id: str | None
    error: str | None  # why the provider failed it (its own words, redacted)

    @property
    def done(self) -> bool:
        return self.state in (*TERMINAL, "lost")  # lost: the provider no longer knows it (services/batch_run)


class BatchAPI:
    """Batch calls for one model's provider."""

    def __init__(self, ref: ModelRef, base_url: str, api_key: str | None, timeout_s: float = 120.0) -> None:
        from annotator.llm.transport import sdk_client

        self.ref = ref
        self.base_url = base_url
        self._secrets = [api_key]
        # groq's client names its paths from the host (/openai/v1/batches); its chat base URL ends in /openai/v1
        root = base_url.removesuffix(GROQ_PATH) if ref.info.sdk == "groq" else base_url
        self._client = sdk_client(ref.info.sdk, root, api_key, timeout_s, 4)
        self._errors = importlib.import_module(ref.info.sdk)
        self.pause_s = PAUSE_S

    async def close(self) -> None:
        await self._client.close()

    def _clean(self, text: Any) -> str:
        return (redact_text(str(text), self._secrets) or "")[:300].replace("\n", " ")

    async def _call(self, what: str, call: Any, idempotent: bool = True) -> Any:
        """``await call()``, retried on what passes (429, 5xx, a dropped connection). A call that creates
        something (``idempotent=False``: creating a batch) is retried on 429 only: after a 5xx or a lost answer
        the batch may exist, and a second one would be paid for too."""
        errors = self._errors
        where = safe_url(self.base_url)
        for attempt in range(TRIES):
            try:
                return await call()
            except errors.APIStatusError as exc:
                status = int(exc.status_code)
                text = self._clean(getattr(exc.response, "text", "") or exc)
                if status in (401, 403):
                    hint = f"; check {self.ref.info.key_env}" if self.ref.info.key_env else ""
                    raise BatchError(
                        f"{what}: the server refused the credentials (HTTP {status}){hint}: {text}"
                    ) from None
                retry = status == 429 or (status >= 500 and idempotent)
                if not retry or attempt == TRIES - 1:
                    raise BatchError(f"{what}: HTTP {status} from {where}: {text}", status) from None
            except errors.APIConnectionError as exc:
                if not idempotent or attempt == TRIES - 1:
                    raise BatchError(
                        f"{what}: cannot reach {where} ({self._clean(exc.__cause__ or exc)}); is the "
                        "address right and the network up? `annotator run --resume` tries again"
                    ) from None
            await asyncio.sleep(self.pause_s * 2**attempt)
        raise AssertionError("unreachable")

    async def submit(self, rows: list[bytes], name: str, metadata: dict[str, str]) -> tuple[str, Remote]:
        """Upload one file of request lines and create its batch; returns the file's id and the batch."""
        data = b"".join(rows)
        uploaded = await self._call(
            "uploading the batch file",
            lambda: self._client.files.create(file=(name, data, "application/jsonl"), purpose="batch"),
        )
        batch = await self._call(
            "creating the batch",
            lambda: self._client.batches.create(
                input_file_id=uploaded.id, endpoint=ENDPOINT, completion_window="24h", metadata=metadata
            ),
            idempotent=False,
        )
        return str(uploaded.id), self._remote(batch)

    async def check(self, remote_id: str) -> Remote:
        batch = await self._call(
            f"asking about batch {remote_id}", lambda: self._client.batches.retrieve(remote_id)
        )
        return self._remote(batch)

    async def knows_file(self, file_id: str) -> bool:
        """Whether the provider, with this key and address, still knows an uploaded file (a batch it no longer
        knows while it knows the batch's input file was deleted; neither: another key or address)."""
        try:
            await self._call(f"asking about file {file_id}", lambda: self._client.files.retrieve(file_id))
        except BatchError:
            return False
        return True

    async def download(self, file_id: str) -> str:
        """A file's text (an output or error file: JSONL)."""
        answer = await self._call(f"downloading file {file_id}", lambda: self._client.files.content(file_id))
        data = answer.read()  # openai's is read already; groq's streams (a coroutine)
        if inspect.isawaitable(data):
            data = await data
        return data.decode("utf-8", errors="replace") if isinstance(data, bytes) else str(data)

    def _remote(self, batch: Any) -> Remote:
        counts = getattr(batch, "request_counts", None)
        errors = getattr(getattr(batch, "errors", None), "data", None) or []
        said = "; ".join(self._clean(getattr(e, "message", None) or e) for e in errors[:3]) or None
        return Remote(
            remote_id=str(batch.id),
            state=str(batch.status),
            answered=int(getattr(counts, "completed", 0) or 0),
            failed=int(getattr(counts, "failed", 0) or 0),
            total=int(getattr(counts, "total", 0) or 0),
            output_file_id=getattr(batch, "output_file_id", None),
            error_file_id=getattr(batch, "error_file_id", None),
            error=said,
        )
