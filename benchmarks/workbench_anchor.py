"""The anchor of `bench_workbench`: the least a coding server can do per code, on the same stack.

A bare Starlette app served by uvicorn: each POST /code parses the form and writes (coder, document, label)
into one SQLite table (WAL, synchronous=NORMAL, as annotator's database) with INSERT OR REPLACE, one writer at
a time. No session, no CSRF token, no account, queue or label check, no ORM: what remains is HTTP, form
parsing and one SQLite write. Run as ``python -m benchmarks.workbench_anchor DB PORT``.
"""

from __future__ import annotations

import sqlite3
import sys
import threading

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route


def make_app(path: str) -> Starlette:
    lock = threading.Lock()
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS codes (coder TEXT, document TEXT, label TEXT, PRIMARY KEY (coder, document))"
    )

    async def code(request: Request) -> Response:
        form = await request.form()
        row = (request.headers.get("x-coder", ""), str(form.get("document")), str(form.get("label")))
        with lock:
            conn.execute("INSERT OR REPLACE INTO codes VALUES (?, ?, ?)", row)
        return RedirectResponse("/code", status_code=303)

    async def page(request: Request) -> Response:
        return Response('<input name="csrf" value="none">', media_type="text/html")

    return Starlette(routes=[Route("/code", code, methods=["POST"]), Route("/code", page), Route("/", page),
                             Route("/signin/{token}", page)])  # fmt: skip


if __name__ == "__main__":
    uvicorn.run(
        make_app(sys.argv[1]), host="127.0.0.1", port=int(sys.argv[2]), access_log=False, log_level="warning"
    )
