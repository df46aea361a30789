"""No key reaches the database, the CLI's output, an export or a report, whatever a server echoes.

A scripted server (the only way to get these faults on demand) echoes the key in 401, 429 and 500 bodies and
in the raw text of a "successful" answer; then every place annotator writes or prints is searched for it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from annotator.redaction import REDACTED, redact, redact_text
from tests.scripted_server import Broken, Fail, Label, ScriptedServer

# not shaped like any provider's key: only the rule "the keys in use" can catch it
KEY = "zq9-LOCAL-KEY-7f3a9c2e51b04d8e"
BEARER = "Bearer abcdefgh1234567890xyz"


def _files_text(folder: Path) -> str:
    """Every byte under ``folder`` (database, WAL, exports, reports), decoded leniently."""
    return "\n".join(
        p.read_bytes().decode("utf-8", "replace") for p in sorted(folder.rglob("*")) if p.is_file()
    )


def _dump(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return "\n".join(conn.iterdump())


def test_echoed_keys_are_redacted_everywhere(cli, project, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", KEY)
    assert cli("import", "example", "rotten-tomatoes", "--n", "40", "--seed", "1").code == 0
    assert cli("split", "--test", "0.5", "--seed", "1").code == 0
    texts: list[str] = []

    def rule(text: str, attempt: int):
        if text not in texts:
            texts.append(text)
        i = texts.index(text)
        if i == 0:
            return Fail(500, message=f"upstream failed; request had Authorization={BEARER} key={KEY}")
        if i == 1 and attempt == 1:
            return Fail(429, retry_after=0, message=f"rate limited for key {KEY}")
        if i == 2:
            return Broken(content=f'{{"label": "{KEY}')  # invalid: stored with its raw text
        if i == 3:
            return Label(f"positive {KEY}")  # a "successful" answer that is not a label
        return None

    with ScriptedServer(label_for=lambda text: "positive", rule=rule) as server:
        args = ["--model", "openai-compatible/scripted", "--base-url", server.base_url]
        ran = cli("run", "--prompt", "sentiment/zero-shot.v1", *args, "--retries", "1", "--reasks", "0")
        assert ran.code == 0, ran
        # the key is revoked after a few answers: the run is kept, `failed`, with the 401 body as its error
        answered: list[str] = []

        def revoked(text: str, attempt: int):
            answered.append(text)
            return None if len(answered) <= 3 else Fail(401, message=f"Incorrect API key provided: {KEY}")

        server.rule = revoked
        refused = cli("run", "--prompt", "sentiment/zero-shot.v2", *args, "--concurrency", "1")
        assert refused.code != 0 and "HTTP 401" in refused.err and REDACTED in refused.err
    runs = cli("runs", "--json")
    shown = cli("runs", "show", "17").out + cli("runs", "show", "18").out
    out = project.root / "out"
    out.mkdir()
    exported = [
        cli("export", "17", "--out", str(out / f"labels.{ext}"), "--text").code
        for ext in ("csv", "jsonl", "dta")
    ]
    assert exported == [0, 0, 0]
    assert cli("report", "--out", str(out / "report.html")).code == 0
    assert cli("report", "--out", str(out / "report.md")).code == 0

    everything = "\n".join(
        [
            ran.out,
            ran.err,
            refused.out,
            refused.err,
            runs.out,
            shown,
            _dump(project.root / "annotator.db"),
            _files_text(project.root),
        ]
    )
    assert KEY not in everything
    assert BEARER not in everything
    with sqlite3.connect(project.root / "annotator.db") as conn:
        rows = conn.execute("SELECT status, error, raw FROM annotations WHERE run_id = 17").fetchall()
        run_errors = [e for (e,) in conn.execute("SELECT error FROM runs WHERE error IS NOT NULL")]
    errors = [e for status, e, _ in rows if status == "error"]
    raws = [r for status, _, r in rows if status == "invalid"]
    assert len(errors) == 1 and "HTTP 500" in errors[0] and REDACTED in errors[0]  # the echo, redacted
    assert len(raws) == 2 and all(REDACTED in r for r in raws)
    assert any("HTTP 401" in e and REDACTED in e for e in run_errors)


def test_credentials_in_openai_base_url_are_refused(cli, project, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://user:{KEY}@127.0.0.1:9/v1")
    before = _dump(project.root / "annotator.db")
    result = cli("run", "--prompt", "sentiment/zero-shot.v1", "--model", "openai-compatible/x")
    assert result.code == 2 and "OPENAI_BASE_URL must not hold a user name or password" in result.err
    assert KEY not in result.err + result.out
    assert _dump(project.root / "annotator.db") == before
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:9/v1?api_key={KEY}")
    result = cli("plan", "--prompt", "sentiment/zero-shot.v1", "--model", "openai-compatible/x")
    assert result.code == 2 and "OPENAI_BASE_URL must not have a ?query" in result.err


@pytest.mark.parametrize(
    ("text", "secrets"),
    [
        (f"401: Incorrect API key provided: {KEY}.", [KEY]),
        ("header Authorization: Bearer abcdefgh12345678", []),
        ("sk-proj-abcdefghijklmnopqrstuvwxyz0123", []),
        ("gsk_abcdefghijklmnop0123456789", []),
        ("see http://alice:hunter2secret@host:8000/v1?api_key=zzzz&model=m", []),
    ],
)
def test_redact_text(text: str, secrets: list[str]) -> None:
    cleaned = redact_text(text, secrets) or ""
    assert REDACTED in cleaned
    for bad in (KEY, "abcdefgh12345678", "sk-proj-abc", "gsk_abc", "hunter2secret", "zzzz"):
        assert bad not in cleaned


def test_redact_json_blanks_every_secret_named_key() -> None:
    value = {
        "api_key": "x1",
        "auth": "x2",
        "cookie": "x3",
        "token": "x4",
        "max_tokens": 64,
        "nested": [{"x-token": "x5"}],
    }
    assert redact(value) == {
        "api_key": REDACTED,
        "auth": REDACTED,
        "cookie": REDACTED,
        "token": REDACTED,
        "max_tokens": 64,
        "nested": [{"x-token": REDACTED}],
    }
