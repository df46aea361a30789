"""Secrets never leave the process: the one redaction rule for everything annotator stores, prints, exports
or reports.

What a server says is not trusted: an error body may echo the key it was sent (a 401 with the wrong key, a
500 with the request's headers), and a model's answer may contain anything. Every such text goes through
`redact_text` before it is stored or shown: the keys in use are replaced by ``[redacted]``, and so is
anything shaped like a provider key or a bearer token, and the user:password part and secret-named query
parameters of any URL. JSON values (run parameters, stored results) go through `redact`, which also blanks
every value whose key is named like a secret (``api_key``, ``token``, ``auth``, ``cookie``...).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "[redacted]"

# a dict key whose value is a credential (max_tokens, tokens_in are not: "token" must be the whole word part)
_SECRET_KEY = re.compile(
    r"^key$|(^|[_\-.])(api[_\-]?key|apikey|private[_\-]?key|secret|secrets|password|passwd|pwd|token|access[_\-]?token|"
    r"auth|authorization|bearer|credentials?|cookie)($|[_\-.])",
    re.IGNORECASE,
)
# strings shaped like provider keys (OpenAI sk-..., Groq gsk_..., Hugging Face hf_..., bearer headers)
_KEY_SHAPED = re.compile(
    r"(sk-[A-Za-z0-9_\-]{16,}|gsk_[A-Za-z0-9]{16,}|hf_[A-Za-z0-9]{16,}|"
    r"xox[abp]-[A-Za-z0-9\-]{10,}|(?i:bearer)\s+[A-Za-z0-9._\-]{8,})"
)
_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s\"'<>]+")
_SECRET_ENV = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
MIN_SECRET_LEN = 8


def is_secret_key(name: str) -> bool:
    return bool(_SECRET_KEY.search(name))


def safe_url(url: str) -> str:
    """A URL without user:password and without secret-looking query parameters."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return REDACTED
    netloc = f"{host}:{port}" if port else host
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, REDACTED if is_secret_key(k) else v) for k, v in pairs], safe="[]")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def scrub_text(text: str) -> str:
    """Key-shaped strings and URL credentials removed from one string."""
    text = _URL.sub(lambda m: safe_url(m.group(0)), text)
    return _KEY_SHAPED.sub(REDACTED, text)


def redact(value: Any) -> Any:
    """A JSON-like value with secrets removed: keys named like secrets, URL credentials, key-shaped text."""
    if isinstance(value, dict):
        return {
            str(k): (REDACTED if is_secret_key(str(k)) and v not in (None, "", {}, []) else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return scrub_text(value)
    return value


def known_secrets(project_root: Path | None) -> list[str]:
    """Values of secret-looking environment variables and of the project's .env: never in a report."""
    found: set[str] = set()
    for name, value in os.environ.items():
        if _SECRET_ENV.search(name) and len(value.strip()) >= MIN_SECRET_LEN:
            found.add(value.strip())
    if project_root is not None and (project_root / ".env").is_file():
        try:
            from dotenv import dotenv_values

            for name, env_value in dotenv_values(project_root / ".env").items():
                if env_value and _SECRET_ENV.search(name) and len(env_value.strip()) >= MIN_SECRET_LEN:
                    found.add(env_value.strip())
        except Exception:  # an unreadable .env holds nothing we could leak
            pass
    return sorted(found, key=len, reverse=True)


def remove_secrets(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


def redact_text(text: str | None, secrets: Iterable[str | None] = ()) -> str | None:
    """``text`` with the given secrets (the keys in use), key-shaped strings and URL credentials removed."""
    if not text:
        return text
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return scrub_text(text)
