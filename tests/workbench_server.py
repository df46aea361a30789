"""A real workbench server (uvicorn, on a free loopback port, in a thread) for the HTTP and browser tests."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn

from annotator.project import Project
from annotator.web.app import create_app


@contextmanager
def serving(project: Project) -> Iterator[str]:
    """The workbench over ``project`` on http://127.0.0.1:PORT, stopped on leaving the block."""
    config = uvicorn.Config(
        create_app(project), host="127.0.0.1", port=0, log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the workbench server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def signed_in(base: str, path: str) -> httpx.Client:
    """An HTTP client signed in with the link ``path`` (/signin/TOKEN)."""
    client = httpx.Client(base_url=base, follow_redirects=False, timeout=30)
    answer = client.get(path)
    assert answer.status_code == 303, answer.text
    return client


def csrf(client: httpx.Client, page: str = "/code") -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get(page).text)
    assert found is not None
    return found.group(1)


def current_document(client: httpx.Client) -> str | None:
    found = re.search(r'name="document" value="([^"]+)"', client.get("/code").text)
    return None if found is None else found.group(1)
