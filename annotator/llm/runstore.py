"""A run's rows: create or find it by its spec, hold its lease, and write its answers in batches.

The lease makes 'the same run started twice at once' safe: the process working on a run renews it while
it works; a second process refuses while the holder is alive, and takes over when it is gone (a crash or
kill -9 on this machine is detected at once through its pid; elsewhere the lease expires).
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, col, select

from annotator.data.corpus import get_or_create_coder
from annotator.errors import AnnotatorError, arg
from annotator.llm.providers import ModelRef
from annotator.llm.spec import ResolvedRun
from annotator.project import Project
from annotator.redaction import safe_url
from annotator.store.asked import store_asked
from annotator.store.cache_rows import CacheRow, cached_rows
from annotator.store.db import insert_ignore, upsert
from annotator.store.lease import lease_alive as lease_alive  # re-exported (it lives in the store)
from annotator.store.models import (
    Annotation,
    CodebookVersion,
    Coder,
    LLMCache,
    PromptVersion,
    Run,
    RunDocument,
    RunStatus,
    utcnow,
)
from annotator.store.registry import (
    find_codebook_version,
    find_prompt_version,
    register_codebook,
    register_prompt,
)
from annotator.store.versions import software_versions as software_versions  # re-exported

LEASE_S = 60
LOCKED_WAIT_S = 600.0  # how long a batch of answers waits for a database another process holds
# The packages that produce an LLM run's answers (recorded with the run): the engine's HTTP client, the
# answer schema, the prompt templates, the database; a local model adds the llama.cpp server.
PACKAGES = ("annotator", "pydantic", "jinja2", "sqlalchemy")


def run_packages(model: ModelRef) -> tuple[str, ...]:
    """The packages whose versions a run of ``model`` records: those that produced its answers (the client
    that sent its requests: openai, groq or the provider's own SDK, with instructor where it structured them;
    and for a local model the llama.cpp server)."""
    client = (*(("instructor",) if model.info.instructed else ()), model.info.sdk)
    return (*PACKAGES[:1], *client, *PACKAGES[1:], *(("xllamacpp",) if model.embedded else ()))


class RunBusy(AnnotatorError):
    """Another live process is working on this run."""


def _while_locked(write: Callable[[], None], budget_s: float = LOCKED_WAIT_S) -> None:
    """Run ``write``, again while SQLite says another process holds the database (beyond its 30 s busy
    timeout: a million-document import holds its one transaction for about 50 s). Answers already paid for
    must not be lost to a neighbour's long write; after ``budget_s`` the error stands."""
    deadline = time.monotonic() + budget_s
    while True:
        try:
            write()
            return
        except OperationalError as exc:
            if "locked" not in str(exc.orig) or time.monotonic() > deadline:
                raise
            time.sleep(1.0)


class RunStore:
    def __init__(self, project: Project, resolved: ResolvedRun) -> None:
        self.project = project
        self.resolved = resolved
        self.owner = uuid.uuid4().hex
        self.run_id: int | None = None
        # rows this process created (the run, and the prompt, codebook and coder rows it was the first to
        # use): a run that fails before its first answer removes them again (see discard)
        self.created: dict[str, Any] = {}

    def open(self, existing_id: int | None = None) -> tuple[Run, dict[tuple[int, int], str]]:
        """Create or find the run, take its lease, and return it with the statuses already stored."""
        r = self.resolved
        try:
            with self.project.transaction() as session:
                run = self._find_or_create(session, existing_id)
        except IntegrityError:  # the same spec was created by another process a moment ago
            with self.project.transaction() as session:
                run = self._find_or_create(session, existing_id)
        self.run_id = run.id
        self._take_lease(run)
        with self.project.transaction() as session:
            done = {
                (d, rep): status
                for d, rep, status in session.exec(
                    select(Annotation.document_id, Annotation.repeat, Annotation.status).where(
                        col(Annotation.run_id) == run.id
                    )
                )
            }
            run = session.get(Run, run.id)  # type: ignore[assignment]
            assert run is not None
            run.status = "running"
            run.error = None
            run.n_items = len(r.documents) * r.request.repeats
            session.add(run)
        return run, done

    def _find_or_create(self, session: Session, existing_id: int | None) -> Run:
        r = self.resolved
        created: dict[str, Any] = {
            "codebook": find_codebook_version(session, r.codebook.name, r.codebook.version) is None,
            "prompt": find_prompt_version(session, r.template.ref) is None,
            "coder": session.exec(select(Coder.id).where(col(Coder.name) == str(r.model))).first() is None,
        }
        cb_row = register_codebook(session, r.codebook, str(self.project.codebook_path(r.codebook.name)))
        prompt_row = register_prompt(session, r.template)
        if existing_id is not None:
            run = session.get(Run, existing_id)
            if run is None:
                raise AnnotatorError(f"no run {existing_id}; `annotator runs` lists them")
            if run.spec_sha256 != r.spec_sha256:
                raise AnnotatorError(
                    f"run {existing_id} was made with other settings (its codebook, prompt or model changed "
                    "since); start a new run instead"
                )
            return run
        run = session.exec(select(Run).where(col(Run.spec_sha256) == r.spec_sha256)).first()
        if run is not None and run.archived_at is not None:  # its answers would go where nothing shows them
            raise AnnotatorError(
                f"these settings are archived run {run.id}: `annotator runs restore {run.id}` to continue it, or "
                f"add {arg('tag', 'NAME')} for a separate run of the same settings"
            )
        if run is not None:
            return run
        coder = get_or_create_coder(session, str(r.model), "llm")
        request = {**{k: v for k, v in asdict(r.request).items() if k != "base_url"}, "model": str(r.model)}
        run = Run(
            coder_id=coder.id,  # type: ignore[arg-type]
            kind="llm",
            codebook_id=cb_row.id,
            prompt_id=prompt_row.id,
            model=str(r.model),
            params={
                "model_params": r.params,
                "logprobs": r.logprobs,
                "reasks": r.request.reasks,
                "retries": r.request.retries,
                "base_url": safe_url(r.model.base_url)
                if r.model.provider != "local" and r.model.base_url
                else None,
                "request": request,
                "spec": r.spec,
            },
            split=r.request.split,
            sample={
                "n": r.request.sample,
                "seed": r.request.seed,
                "repeats": r.request.repeats,
                "documents": len(r.documents),
            },
            spec_sha256=r.spec_sha256,
            versions=software_versions(run_packages(r.model)),
        )
        session.add(run)
        session.flush()
        assert run.id is not None
        store_asked(session, run.id, (d.id for d in r.documents))
        self.created = {
            "run": run.id,
            "codebook": cb_row.id if created["codebook"] else None,
            "prompt": prompt_row.id if created["prompt"] else None,
            "coder": coder.id if created["coder"] else None,
        }
        return run

    def _take_lease(self, run: Run) -> None:
        with self.project.transaction() as session:
            current = session.get(Run, run.id)
            assert current is not None
            if current.lease_owner and current.lease_owner != self.owner and lease_alive(current):
                raise RunBusy(
                    f"run {run.id} is being labeled by another annotator process (pid {current.lease_pid} on "
                    f"{current.lease_host}); wait for it to finish, or stop it and `annotator run --resume {run.id}`"
                )
            previous = current.lease_owner
            condition = (
                col(Run.lease_owner).is_(None) if previous is None else col(Run.lease_owner) == previous
            )
            result = session.connection().execute(
                update(Run)
                .where(col(Run.id) == run.id, condition)
                .values(
                    lease_owner=self.owner,
                    lease_pid=os.getpid(),
                    lease_host=socket.gethostname(),
                    lease_until=utcnow() + timedelta(seconds=LEASE_S),
                )
            )
            if result.rowcount != 1:
                raise RunBusy(f"run {run.id} was taken by another annotator process a moment ago")

    def write(self, annotations: list[dict[str, Any]], cache_rows: list[dict[str, Any]], cost: float) -> None:
        """Store a batch of answers in one transaction (waiting out another process's long write)."""

        def once() -> None:
            with self.project.transaction() as session:
                upsert(session, Annotation, annotations, ["run_id", "document_id", "repeat"])
                insert_ignore(session, LLMCache, cache_rows, ["key"])
                if cost:
                    session.connection().execute(
                        update(Run).where(col(Run.id) == self.run_id).values(cost_usd=Run.cost_usd + cost)
                    )

        _while_locked(once)

    def cached(self, keys: list[str]) -> dict[str, CacheRow]:
        """The cached responses for ``keys`` (one read, in chunks of `cache_rows.LOOKUP_CHUNK` keys)."""
        with self.project.engine.connect() as connection:
            return cached_rows(connection, keys)

    def renew(self) -> None:
        """Extend the lease (called on a timer while the engine runs, answers or not)."""

        def once() -> None:
            with self.project.transaction() as session:
                session.connection().execute(
                    update(Run)
                    .where(col(Run.id) == self.run_id, col(Run.lease_owner) == self.owner)
                    .values(lease_until=utcnow() + timedelta(seconds=LEASE_S))
                )

        _while_locked(once)

    def spent(self) -> float:
        """What the run has cost so far, over every session that worked on it."""
        with self.project.transaction() as session:
            run = session.get(Run, self.run_id)
            return run.cost_usd if run is not None else 0.0

    def discard(self) -> bool:
        """Remove the run this process created, and the prompt, codebook and coder rows it registered, when
        the run has no answer yet: a run that fails before its first answer (a refused key, a server that is
        not running) leaves nothing behind. Returns whether it did (a run with answers is kept, as failed)."""
        run_id = self.created.get("run")
        if run_id is None:
            return False
        removed = False

        def once() -> None:
            nonlocal removed
            with self.project.transaction() as session:
                connection = session.connection()
                # a write first, so the check below and the delete are one write transaction: SQLite takes its
                # write lock here (PostgreSQL locks the run's row), and no answer can be stored in between
                connection.execute(update(Run).where(col(Run.id) == run_id).values(status=Run.status))
                answered = select(Annotation.id).where(col(Annotation.run_id) == run_id).limit(1)
                removed = session.exec(answered).first() is None
                if removed:
                    self._delete_created(session, run_id)

        _while_locked(once)
        if removed:
            self.created = {}
        return removed

    def _delete_created(self, session: Session, run_id: int) -> None:
        """Delete the run and the rows it registered that no other run uses (inside discard's transaction)."""
        connection = session.connection()
        connection.execute(delete(RunDocument).where(col(RunDocument.run_id) == run_id))
        connection.execute(delete(Run).where(col(Run.id) == run_id))
        for model, column, key in (
            (PromptVersion, Run.prompt_id, "prompt"),
            (CodebookVersion, Run.codebook_id, "codebook"),
            (Coder, Run.coder_id, "coder"),
        ):
            row_id = self.created.get(key)
            if (
                row_id is not None
                and session.exec(select(Run.id).where(col(column) == row_id)).first() is None
            ):
                connection.execute(delete(model).where(col(model.id) == row_id))

    def finish(self, status: RunStatus, error: str | None, server_model: str | None) -> Run:
        with self.project.transaction() as session:
            run = session.get(Run, self.run_id)
            assert run is not None
            counts = dict(
                session.exec(
                    select(Annotation.status, func.count())
                    .where(col(Annotation.run_id) == self.run_id)
                    .group_by(col(Annotation.status))
                ).all()
            )
            run.n_ok, run.n_invalid, run.n_error = (counts.get(s, 0) for s in ("ok", "invalid", "error"))
            tokens_in, tokens_out = session.exec(
                select(
                    func.coalesce(func.sum(Annotation.tokens_in), 0),
                    func.coalesce(func.sum(Annotation.tokens_out), 0),
                ).where(col(Annotation.run_id) == self.run_id, col(Annotation.cached).is_(False))
            ).one()
            run.tokens_in, run.tokens_out = int(tokens_in or 0), int(tokens_out or 0)
            run.status = status
            run.error = error
            run.finished_at = utcnow()
            if server_model:
                run.versions = {**run.versions, "server_model": server_model}
            if run.lease_owner == self.owner:
                run.lease_owner = run.lease_pid = run.lease_host = run.lease_until = None
            session.add(run)
        return run
