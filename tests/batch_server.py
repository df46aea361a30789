"""A loopback Batch API (OpenAI's wire format, which Groq's follows) on top of the scripted chat server.

    with BatchServer(label_for=...) as server:            # every ScriptedServer option and script applies
        server.finish_after = 2                            # polls before a batch completes
        ... annotator run --batch --model openai/gpt-4o-mini --base-url {server.base_url} ...

It serves `POST /v1/files` (multipart, purpose "batch"), `POST /v1/batches`, `GET /v1/batches/{id}` and
`GET /v1/files/{id}/content`, besides the chat endpoint (each also under `/openai/v1`, Groq's paths). A batch is `validating` when created, `in_progress`
from its first poll, and when polled `finish_after` times it runs every line through the scripted server's
rules (`_decide`/`_answer`: `label_for`, scripts, `rule`): a 200 goes to the output file, anything else
(`Fail(500)`, `Fail(400)`) to the error file with its status and body. `expire_after = k`: the next batch to
finish answers only its first k lines and ends `expired`, the rest in the error file as `batch_expired`
(what OpenAI writes). `hold = True`: batches stay `in_progress` whatever the polls. `key`: the Bearer token
it accepts (any other gets a 401 whose body echoes the key it was sent, as some servers do).

Inspection: `uploads` (file id -> the lines uploaded, parsed), `batches` (batch id -> its state dict),
`polls` (how many `GET /v1/batches/{id}` it answered).
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

from aiohttp import web

from tests.scripted_server import ScriptedServer


class BatchServer(ScriptedServer):
    def __init__(self, *args: Any, key: str | None = None, finish_after: int = 1, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.key = key
        self.finish_after = finish_after
        self.expire_after: int | None = None
        self.hold = False
        self.uploads: dict[str, list[dict[str, Any]]] = {}
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.polls = 0
        self._batch_ids = itertools.count(1)

    def _routes(self, app: web.Application) -> None:
        super()._routes(app)
        for root in ("/v1", "/openai/v1"):  # OpenAI's paths, and Groq's
            app.router.add_post(f"{root}/files", self._upload)
            app.router.add_post(f"{root}/batches", self._create)
            app.router.add_get(f"{root}/batches", self._list)
            app.router.add_get(f"{root}/batches/{{id}}", self._retrieve)
            app.router.add_get(f"{root}/files/{{id}}/content", self._content)
            app.router.add_get(f"{root}/files/{{id}}", self._file)
        app.router.add_post("/openai/v1/chat/completions", self._chat)

    def _refused(self, request: web.Request) -> web.Response | None:
        sent = request.headers.get("Authorization", "")
        if self.key is not None and sent != f"Bearer {self.key}":
            echoed = sent.removeprefix("Bearer ")
            body = {
                "error": {"message": f"Incorrect API key provided: {echoed}", "type": "invalid_request_error"}
            }
            return web.json_response(body, status=401)
        return None

    async def _upload(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        form = await request.post()
        upload = form.get("file")
        if form.get("purpose") != "batch" or upload is None or not hasattr(upload, "file"):
            return web.json_response({"error": {"message": "need purpose=batch and a file"}}, status=400)
        data = upload.file.read()
        file_id = f"file-in-{len(self.uploads) + 1}"
        with self._lock:
            self.files[file_id] = data
            self.uploads[file_id] = [json.loads(line) for line in data.decode("utf-8").splitlines() if line]
        return web.json_response(
            {"id": file_id, "object": "file", "bytes": len(data), "created_at": int(time.time()),
             "filename": upload.filename, "purpose": "batch", "status": "processed"}
        )  # fmt: skip

    async def _create(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        body = await request.json()
        if body.get("input_file_id") not in self.files or body.get("endpoint") != "/v1/chat/completions":
            return web.json_response({"error": {"message": "unknown input file or endpoint"}}, status=400)
        batch_id = f"batch_{next(self._batch_ids)}"
        state = {
            "id": batch_id,
            "object": "batch",
            "endpoint": body["endpoint"],
            "input_file_id": body["input_file_id"],
            "completion_window": body.get("completion_window", "24h"),
            "status": "validating",
            "created_at": int(time.time()),
            "metadata": body.get("metadata"),
            "output_file_id": None,
            "error_file_id": None,
            "errors": None,
            "request_counts": {
                "total": len(self.uploads[body["input_file_id"]]),
                "completed": 0,
                "failed": 0,
            },
            "_polls": 0,
        }
        with self._lock:
            self.batches[batch_id] = state
        return web.json_response(_public(state))

    async def _list(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        data = [_public(state) for state in self.batches.values()]
        return web.json_response({"object": "list", "data": data, "has_more": False})

    async def _retrieve(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        state = self.batches.get(request.match_info["id"])
        if state is None:
            return web.json_response({"error": {"message": "No batch found"}}, status=404)
        with self._lock:
            self.polls += 1
            state["_polls"] += 1
        if state["status"] in ("validating", "in_progress"):
            state["status"] = "in_progress"
            if not self.hold and state["_polls"] >= self.finish_after:
                self._finish(state)
        return web.json_response(_public(state))

    def _finish(self, state: dict[str, Any]) -> None:
        """Answer the batch's lines: each through the scripted server's rules."""
        lines = self.uploads[state["input_file_id"]]
        answered, failed = [], []
        expire, self.expire_after = self.expire_after, None
        for number, line in enumerate(lines):
            if expire is not None and number >= expire:
                failed.append({"id": f"batch_req_{number}", "custom_id": line["custom_id"], "response": None,
                               "error": {"code": "batch_expired", "message": "This request could not be executed "
                                         "before the completion window expired."}})  # fmt: skip
                continue
            record, response = self._decide(line["body"])
            try:
                answer = self._answer(line["body"], record.text, response)
            finally:
                with self._idle:
                    self._in_flight -= 1
            record.status = answer.status
            out = {"id": f"batch_req_{number}", "custom_id": line["custom_id"],
                   "response": {"status_code": answer.status, "request_id": f"req_{number}",
                                "body": json.loads(answer.text or "null")}, "error": None}  # fmt: skip
            if answer.status == 200:
                self._answered[record.text] += 1
                answered.append(out)
            else:
                failed.append(out)
        n = len(self.files)
        if answered:
            self.files[f"file-out-{n}"] = "".join(json.dumps(o) + "\n" for o in answered).encode()
            state["output_file_id"] = f"file-out-{n}"
        if failed:
            self.files[f"file-err-{n}"] = "".join(json.dumps(o) + "\n" for o in failed).encode()
            state["error_file_id"] = f"file-err-{n}"
        state["status"] = "expired" if expire is not None else "completed"
        state["request_counts"] = {"total": len(lines), "completed": len(answered), "failed": len(failed)}

    async def _file(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        file_id = request.match_info["id"]
        if file_id not in self.files:
            return web.json_response({"error": {"message": "No such file"}}, status=404)
        return web.json_response({"id": file_id, "object": "file", "bytes": len(self.files[file_id]),
                                  "created_at": 0, "filename": f"{file_id}.jsonl", "purpose": "batch",
                                  "status": "processed"})  # fmt: skip

    async def _content(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        data = self.files.get(request.match_info["id"])
        if data is None:
            return web.json_response({"error": {"message": "No such file"}}, status=404)
        return web.Response(body=data, content_type="application/octet-stream")

    def release(self) -> None:
        """Let held batches finish on their next poll."""
        self.hold = False
        self.finish_after = 0


def _public(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if not k.startswith("_")}
