"""The lead's pages: disagreement review (a run's confusion matrix against the humans or a gold coder, each
cell's documents, one document with every code, its memo and tags) and adjudication. A coder's session gets
403 on every one of them (blind coding: these pages show LLM labels and every coder's codes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from annotator.errors import AnnotatorError
from annotator.project import Project
from annotator.services.workbench import adjudicate, review
from annotator.services.workbench.accounts import SignedIn
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


def routes(project: Project) -> list[Route]:
    def guarded(render: Callable[[Request, SignedIn], Response]) -> Callable[[Request], Response]:
        def handler(request: Request) -> Response:
            me = _lead(project, request)
            if isinstance(me, Response):
                return me
            try:
                return render(request, me)
            except AnnotatorError as exc:
                return page(
                    request, "error.html", status=400, who=me, message=exc.message(named), back="/review"
                )

        return handler

    def runs_page(request: Request, me: SignedIn) -> Response:
        return page(request, "review_runs.html", who=me, runs=review.models(project))

    def matrix_page(request: Request, me: SignedIn) -> Response:
        run_id = _int(request.path_params["run_id"])
        reference = request.query_params.get("reference", "humans")
        found = review.disagreements(project, run_id, reference)
        options = review.references(project, run_id)
        return page(request, "review_matrix.html", who=me, d=found, references=options)

    def cell_page(request: Request, me: SignedIn) -> Response:
        run_id = _int(request.path_params["run_id"])
        q = request.query_params
        found = review.disagreements(project, run_id, q.get("reference", "humans"))
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

    def doc_page(request: Request, me: SignedIn) -> Response:
        run_id = _int(request.path_params["run_id"])
        q = request.query_params
        found = review.document_review(project, run_id, q.get("doc", ""), q.get("reference", "humans"))
        return page(request, "review_doc.html", who=me, r=found, tags=review.TAGS)

    async def doc_post(request: Request) -> Response:
        run_id = _int(request.path_params["run_id"])
        form = await request.form()
        doc, reference = str(form.get("doc") or ""), str(form.get("reference") or "humans")

        def save(me: SignedIn, form: Any) -> None:
            tags = [str(t) for t in form.getlist("tag")]
            review.save_note(project, me, run_id, doc, reference, tags, str(form.get("memo") or ""))

        back = f"/review/{run_id}/doc?{_query(doc=doc, reference=reference)}"
        return await change(request, project, save, back, lead_only=True)

    def adjudicate_page(request: Request, me: SignedIn) -> Response:
        gold = request.query_params.get("gold", adjudicate.DEFAULT_GOLD)
        state = adjudicate.state(project, gold)
        book = review_codebook(state.codebook)
        return page(request, "adjudicate.html", who=me, s=state, item=state.pending[0] if state.pending else None,
                    book=book)  # fmt: skip

    def review_codebook(ref: str) -> Any:
        from annotator.services.workbench.coding import codebook

        return codebook(project, ref.split("@")[0])

    async def adjudicate_post(request: Request) -> Response:
        form = await request.form()
        gold = str(form.get("gold") or adjudicate.DEFAULT_GOLD)

        def decide(me: SignedIn, form: Any) -> None:
            adjudicate.decide(project, me, str(form.get("doc") or ""), str(form.get("label") or ""),
                              str(form.get("note") or ""), gold)  # fmt: skip

        return await change(request, project, decide, f"/adjudicate?{_query(gold=gold)}", lead_only=True)

    return [
        Route("/review", guarded(runs_page)),
        Route("/review/{run_id}", guarded(matrix_page)),
        Route("/review/{run_id}/cell", guarded(cell_page)),
        Route("/review/{run_id}/doc", guarded(doc_page), methods=["GET"]),
        Route("/review/{run_id}/doc", doc_post, methods=["POST"]),
        Route("/adjudicate", guarded(adjudicate_page), methods=["GET"]),
        Route("/adjudicate", adjudicate_post, methods=["POST"]),
    ]


def _query(**params: str) -> str:
    from urllib.parse import urlencode

    return urlencode(params)
