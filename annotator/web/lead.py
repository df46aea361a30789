"""The lead's pages: assigning documents to coders, disagreement review (a run's confusion matrix against the
humans or a gold coder, each cell's documents, one document with every code, its memo and tags), and opening
and deciding an adjudication. A coder's session gets 403 on every one of them (blind coding: these pages show
LLM labels and every coder's codes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from annotator.errors import AnnotatorError, InputError, arg
from annotator.project import Project
from annotator.services.workbench import adjudicate, assign, review
from annotator.services.workbench.accounts import SignedIn, list_coders
from annotator.web import security
from annotator.web.render import change, forbidden, named, page, signed_out


def _lead(project: Project, request: Request) -> SignedIn | Response:
    me = security.current(request, project)
    if me is None:
        return signed_out(request)
    if not me.lead:
        return forbidden(request, me, "this page is for leads")
    return me


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return -1


def _whole(form: Any, name: str, default: int | None = None) -> int:
    """A whole number from a form field (``default`` when left empty)."""
    text = str(form.get(name) or "").strip()
    if not text and default is not None:
        return default
    try:
        return int(text)
    except ValueError:
        raise InputError(f"{arg(name, text)}: give a whole number") from None


class _LeadPages:
    """The lead's pages over one project (each method a handler, or a page rendered for a signed-in lead)."""

    def __init__(self, project: Project) -> None:
        self.project = project

    def guarded(self, render: Callable[[Request, SignedIn], Response]) -> Callable[[Request], Response]:
        def handler(request: Request) -> Response:
            me = _lead(self.project, request)
            if isinstance(me, Response):
                return me
            try:
                return render(request, me)
            except AnnotatorError as exc:
                return page(
                    request, "error.html", status=400, who=me, message=exc.message(named), back="/review"
                )

        return handler

    def runs_page(self, request: Request, me: SignedIn) -> Response:
        return page(request, "review_runs.html", who=me, runs=review.models(self.project))

    def matrix_page(self, request: Request, me: SignedIn) -> Response:
        run_id = _int(request.path_params["run_id"])
        reference = request.query_params.get("reference", "humans")
        found = review.disagreements(self.project, run_id, reference)
        options = review.references(self.project, run_id)
        return page(request, "review_matrix.html", who=me, d=found, references=options)

    def cell_page(self, request: Request, me: SignedIn) -> Response:
        run_id = _int(request.path_params["run_id"])
        q = request.query_params
        found = review.disagreements(self.project, run_id, q.get("reference", "humans"))
        docs = found.cells.get(f"{q.get('truth', '')}|{q.get('label', '')}", [])
        return page(
            request,
            "review_cell.html",
            who=me,
            d=found,
            docs=docs,
            truth=q.get("truth"),
            label=q.get("label"),
        )

    def doc_page(self, request: Request, me: SignedIn) -> Response:
        run_id = _int(request.path_params["run_id"])
        q = request.query_params
        found = review.document_review(self.project, run_id, q.get("doc", ""), q.get("reference", "humans"))
        return page(request, "review_doc.html", who=me, r=found, tags=review.TAGS)

    async def doc_post(self, request: Request) -> Response:
        run_id = _int(request.path_params["run_id"])
        form = await request.form()
        doc, reference = str(form.get("doc") or ""), str(form.get("reference") or "humans")

        def save(me: SignedIn, form: Any) -> None:
            tags = [str(t) for t in form.getlist("tag")]
            review.save_note(self.project, me, run_id, doc, reference, tags, str(form.get("memo") or ""))

        back = f"/review/{run_id}/doc?{_query(doc=doc, reference=reference)}"
        return await change(request, self.project, save, back, lead_only=True)

    def adjudicate_page(self, request: Request, me: SignedIn) -> Response:
        gold = request.query_params.get("gold", adjudicate.DEFAULT_GOLD)
        if not adjudicate.opened(self.project, gold):
            workbench = {a.name for a in list_coders(self.project) if not a.revoked}
            return page(
                request,
                "adjudicate_open.html",
                who=me,
                gold=gold,
                coders=adjudicate.candidates(self.project),
                workbench=workbench,
                runs=review.models(self.project),
            )
        state = adjudicate.state(self.project, gold)
        book = self.review_codebook(state.codebook)
        return page(
            request,
            "adjudicate.html",
            who=me,
            s=state,
            item=state.pending[0] if state.pending else None,
            book=book,
        )

    def review_codebook(self, ref: str) -> Any:
        from annotator.services.workbench.coding import codebook

        return codebook(self.project, ref.split("@")[0])

    async def adjudicate_post(self, request: Request) -> Response:
        form = await request.form()
        gold = str(form.get("gold") or adjudicate.DEFAULT_GOLD)

        def decide(me: SignedIn, form: Any) -> None:
            adjudicate.decide(
                self.project,
                me,
                str(form.get("doc") or ""),
                str(form.get("label") or ""),
                str(form.get("note") or ""),
                gold,
            )

        return await change(request, self.project, decide, f"/adjudicate?{_query(gold=gold)}", lead_only=True)

    def assign_page(self, request: Request, me: SignedIn) -> Response:
        made = _int(request.query_params.get("made", ""))
        done = assign.history(self.project)
        return page(request, "assign.html", who=me, c=assign.choices(self.project), batches=done, made=made)

    async def assign_post(self, request: Request) -> Response:
        def queue(me: SignedIn, form: Any) -> int:
            column = str(form.get("stratify_by") or "").strip() or None
            book = str(form.get("codebook") or "").strip() or None
            coders = [str(c) for c in form.getlist("coder")]
            n, overlap = _whole(form, "n"), _whole(form, "overlap", 0)
            split, seed = str(form.get("split") or "dev"), _whole(form, "seed", 0)
            return assign.assign(self.project, coders, n, overlap, split, column, seed, book).batch

        return await change(
            request,
            self.project,
            queue,
            lambda batch: f"/assign?made={batch}",
            lead_only=True,
            retry="/assign",
        )

    async def adjudicate_open(self, request: Request) -> Response:
        form = await request.form()
        gold = str(form.get("gold") or adjudicate.DEFAULT_GOLD)

        def start(me: SignedIn, form: Any) -> None:
            run = str(form.get("run") or "").strip()
            split = str(form.get("split") or "").strip() or None
            coders = [str(c) for c in form.getlist("coder")]
            adjudicate.open_adjudication(
                self.project, coders, gold, _whole(form, "run") if run else None, split
            )

        back = f"/adjudicate?{_query(gold=gold)}"
        return await change(request, self.project, start, back, lead_only=True)

    def routes(self) -> list[Route]:
        return [
            Route("/assign", self.guarded(self.assign_page), methods=["GET"]),
            Route("/assign", self.assign_post, methods=["POST"]),
            Route("/review", self.guarded(self.runs_page)),
            Route("/review/{run_id}", self.guarded(self.matrix_page)),
            Route("/review/{run_id}/cell", self.guarded(self.cell_page)),
            Route("/review/{run_id}/doc", self.guarded(self.doc_page), methods=["GET"]),
            Route("/review/{run_id}/doc", self.doc_post, methods=["POST"]),
            Route("/adjudicate", self.guarded(self.adjudicate_page), methods=["GET"]),
            Route("/adjudicate", self.adjudicate_post, methods=["POST"]),
            Route("/adjudicate/open", self.adjudicate_open, methods=["POST"]),
        ]


def routes(project: Project) -> list[Route]:
    return _LeadPages(project).routes()


def _query(**params: str) -> str:
    from urllib.parse import urlencode

    return urlencode(params)
