"""A real PostgreSQL server for the tests: a throw-away cluster in a temp folder, started once per test session.

Debian's `postgresql` package (`make test` installs it as root) provides the binaries; the cluster listens on a
Unix socket in its own folder only (``listen_addresses=''``: no TCP port, nothing outside this machine can
reach it), trusts local connections, and is stopped and deleted at the end of the session. PostgreSQL refuses
to run as root, so as root the cluster belongs to the ``postgres`` user the package creates. Each test gets a
database of its own.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PORT = 54329  # names the socket file (.s.PGSQL.54329) in the cluster's own folder; no TCP port is opened


def binaries() -> Path | None:
    """The folder of initdb and pg_ctl: on PATH, or Debian's /usr/lib/postgresql/N/bin (newest N)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(versions[-1]).parent if versions else None


def _as_owner(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@contextmanager
def cluster() -> Iterator[str]:
    """A running server; yields the folder of its socket."""
    bindir = binaries()
    assert bindir is not None
    root = Path(tempfile.mkdtemp(prefix="annotator-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
        root.chmod(0o755)
    run = {"check": True, "capture_output": True, "text": True, "timeout": 120}
    subprocess.run(_as_owner([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                              "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"]), **run)  # type: ignore[call-overload]  # fmt: skip
    options = f"-c listen_addresses='' -k {sock} -p {PORT} -c fsync=off -c max_connections=200"
    subprocess.run(_as_owner([str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-t", "60",
                              "-l", str(root / "log"), "start"]), **run)  # type: ignore[call-overload]  # fmt: skip
    try:
        yield str(sock)
    finally:
        subprocess.run(_as_owner([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True, timeout=120)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


def new_database(sock: str) -> str:
    """A fresh, empty database on the server; its SQLAlchemy URL."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(host=sock, port=PORT, user="postgres", dbname="postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@/{name}?host={sock}&port={PORT}"
