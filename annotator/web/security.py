"""Who is signed in, and the checks every request passes.

A session is a signed cookie (Starlette's SessionMiddleware: itsdangerous, HttpOnly, here SameSite=Strict)
holding the account id and a CSRF token. The signing key is drawn when the server starts and kept in memory
only: a restart signs everyone out (each coder's link signs in again), and no file or database row holds it.
The account is looked up on every request, so `annotator coders revoke` ends its sessions at once. Every
POST carries the session's CSRF token in a form field; a missing or wrong one is refused with 403.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from annotator.project import Project
from annotator.services.workbench.accounts import SignedIn, signed_in

SESSION_COOKIE = "annotator_session"
SESSION_HOURS = 12
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",  # a sign-in link's token never leaves in a Referer
    "cache-control": "no-store",
}


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def start_session(request: Request, who: SignedIn) -> None:
    request.session.clear()
    request.session["account"] = who.account_id
    request.session["csrf"] = secrets.token_urlsafe(32)


def current(request: Request, project: Project) -> SignedIn | None:
    """The signed-in account, or None (no session, or its account was revoked: the session is cleared)."""
    account = request.session.get("account")
    if not isinstance(account, int):
        return None
    who = signed_in(project, account)
    if who is None:
        request.session.clear()
    return who


def csrf_token(request: Request) -> str:
    return str(request.session.get("csrf", ""))


def csrf_ok(request: Request, sent: object) -> bool:
    expected = request.session.get("csrf")
    return isinstance(expected, str) and isinstance(sent, str) and hmac.compare_digest(expected, sent)


class SecurityHeaders:
    """Adds `HEADERS` to every response (pages, redirects, static files and errors alike)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                for key, value in HEADERS.items():
                    if key.encode() not in present:
                        headers.append((key.encode(), value.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


Handler = Callable[[Request], Awaitable[Response]]
