"""The workbench's coder pages (sign-in, coding, the dashboard); the lead's review and adjudication pages are
`annotator.web.lead`. Each handler checks the session (401 without one) and the role (403 for a coder on a
lead's page); each POST also the CSRF token (403); then it calls one service and renders or redirects.

A coder sees only its own queue and codes (blind coding): no page or endpoint a coder can reach returns an
LLM label, a baseline label or another coder's code. Plain handlers run in Starlette's thread pool, so a
database wait never blocks the event loop.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from annotator.project import Project
from annotator.services.workbench import coding
from annotator.services.workbench.accounts import SignedIn, sign_in
from annotator.services.workbench.dashboard import dashboard
from annotator.web import lead, security
from annotator.web.render import HERE, change, forbidden, page, signed_out


def _float(value: object) -> float | None:
    try:
        return float(str(value))
    except ValueError:
        return None


class _Pages:
    """The coder pages over one project (each method a handler)."""

    def __init__(self, project: Project) -> None:
        self.project = project

    def signin(self, request: Request) -> Response:
        found = sign_in(self.project, str(request.path_params["token"]))
        if found is None:
            request.session.clear()
            return page(request, "signin.html", status=401, who=None, bad_link=True)
        security.start_session(request, found)
        return RedirectResponse("/", status_code=303)

    def home(self, request: Request) -> Response:
        me = security.current(request, self.project)
        if me is None:
            return signed_out(request)
        return RedirectResponse("/dashboard" if me.lead else "/code", status_code=303)

    def code_page(self, request: Request) -> Response:
        me = security.current(request, self.project)
        if me is None:
            return signed_out(request)
        item = coding.next_item(self.project, me)
        progress = coding.progress(self.project, me)
        book = None if item is None else coding.codebook(self.project, item.codebook)
        return page(request, "code.html", who=me, item=item, progress=progress, book=book)

    def code(self, me: SignedIn, form: Any) -> None:
        memo, unclear = str(form.get("memo") or ""), form.get("unclear") == "on"
        document = str(form.get("document") or "")
        if form.get("action") == "skip":
            coding.skip(self.project, me, document, memo, unclear)
            return
        labels = [str(v) for v in form.getlist("label") if str(v).strip()]
        coding.submit(
            self.project, me, document, ";".join(labels), _float(form.get("seconds")), memo, unclear
        )

    async def code_post(self, request: Request) -> Response:
        return await change(request, self.project, self.code, "/code")

    async def undo_post(self, request: Request) -> Response:
        return await change(request, self.project, lambda me, form: coding.undo(self.project, me), "/code")

    def dashboard_page(self, request: Request) -> Response:
        me = security.current(request, self.project)
        if me is None:
            return signed_out(request)
        if not me.lead:
            return forbidden(request, me, "the dashboard is for leads")
        return page(request, "dashboard.html", who=me, board=dashboard(self.project))

    async def signout(self, request: Request) -> Response:
        form = await request.form()
        if not security.csrf_ok(request, form.get("csrf")):
            return Response("refused: no valid CSRF token", status_code=403)
        request.session.clear()
        return page(request, "signin.html", status=200, who=None, signed_out=True)


def create_app(project: Project, secret: str | None = None) -> Starlette:
    """The workbench over ``project`` (its database, SQLite or PostgreSQL, shared with the CLI)."""
    pages = _Pages(project)
    routes = [
        Route("/", pages.home),
        Route("/signin/{token}", pages.signin),
        Route("/code", pages.code_page, methods=["GET"]),
        Route("/code", pages.code_post, methods=["POST"]),
        Route("/undo", pages.undo_post, methods=["POST"]),
        Route("/dashboard", pages.dashboard_page),
        Route("/signout", pages.signout, methods=["POST"]),
        Route("/favicon.ico", lambda request: Response(status_code=204)),
        *lead.routes(project),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]
    middleware = [
        Middleware(security.SecurityHeaders),
        Middleware(
            SessionMiddleware,
            secret_key=secret or security.new_secret(),
            session_cookie=security.SESSION_COOKIE,
            max_age=security.SESSION_HOURS * 3600,
            same_site="strict",
        ),
    ]
    return Starlette(routes=routes, middleware=middleware)
