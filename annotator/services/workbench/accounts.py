"""Workbench accounts: `annotator coders add/list/revoke/link`.

A coder signs in with a personal link that carries a random token (``secrets.token_urlsafe``, 192 bits). The
database keeps only the token's sha256, so neither the database, a backup nor an export holds a way in; a lost
link is replaced with `coders link NAME`, which makes the old one stop working. A coder is an ordinary human
coder: one that was imported (`import codes --coder alice`) can be given an account and goes on coding under
the same name.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from annotator.data.codes import get_or_create_coder
from annotator.errors import InputError, arg
from annotator.project import Project
from annotator.services.results import Result
from annotator.store import coding as rows
from annotator.store.models import CODER_ROLES, CoderAccount, CoderRole

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Account(Result):
    """A workbench account as listed (`coders list`); never its token."""

    name: str
    role: CoderRole
    created_at: str  # ISO time, UTC
    revoked: bool


@dataclass(frozen=True)
class NewLink(Result):
    """A sign-in token, shown once (`coders add`, `coders link`): the link is the server's URL + ``path``."""

    name: str
    role: CoderRole
    token: str
    path: str  # "/signin/<token>"


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="seconds")


def _check_role(role: str) -> CoderRole:
    if role not in CODER_ROLES:
        raise InputError(f"{arg('role', role)}: use one of {', '.join(CODER_ROLES)}")
    return role


def _new_token() -> tuple[str, str]:
    token = secrets.token_urlsafe(24)
    return token, rows.token_hash(token)


def add_coder(project: Project, name: str, role: str = "coder") -> NewLink:
    """A new account for coder ``name`` (a human coder, created if new); returns its sign-in token, once."""
    checked = _check_role(role)
    if not NAME.match(name):
        raise InputError(
            f"{arg('name', name)}: a coder name is 1-64 letters, digits, '.', '_' or '-', starting with a letter "
            "or digit"
        )
    token, hashed = _new_token()
    with project.transaction() as session:
        if rows.account_by_name(session, name) is not None:
            raise InputError(
                f"coder {name!r} already has an account; `annotator coders link {name}` makes a new sign-in link"
            )
        coder = get_or_create_coder(session, name, "human")
        assert coder.id is not None
        session.add(CoderAccount(coder_id=coder.id, role=checked, token_hash=hashed))
    return NewLink(name, checked, token, f"/signin/{token}")


def new_link(project: Project, name: str) -> NewLink:
    """A new sign-in token for ``name`` (the old link stops working; a revoked account is re-opened)."""
    token, hashed = _new_token()
    with project.transaction() as session:
        found = rows.account_by_name(session, name)
        if found is None:
            raise InputError(_no_account(session, name))
        account = session.get(CoderAccount, found.account_id)
        assert account is not None
        account.token_hash, account.revoked_at = hashed, None
        session.add(account)
    return NewLink(name, found.role, token, f"/signin/{token}")  # type: ignore[arg-type]


def _no_account(session: Session, name: str) -> str:
    known = [a.name for a in rows.accounts(session)]
    return f"no coder {name!r} has an account (accounts: {', '.join(known) or 'none yet'}); add one with `annotator coders add {name}`"


def list_coders(project: Project) -> list[Account]:
    with project.transaction() as session:
        found = rows.accounts(session)
    return [Account(a.name, a.role, _iso(a.created_at), a.revoked_at is not None) for a in found]  # type: ignore[arg-type]


def revoke_coder(project: Project, name: str) -> Account:
    """Close ``name``'s account: its link no longer signs in and its open sessions end; its codes stay."""
    with project.transaction() as session:
        found = rows.account_by_name(session, name)
        if found is None:
            raise InputError(_no_account(session, name))
        rows.revoke(session, found.account_id)
    return Account(found.name, found.role, _iso(found.created_at), True)  # type: ignore[arg-type]


@dataclass(frozen=True)
class SignedIn:
    """Who a session belongs to (looked up again on every request, so a revoke takes effect at once)."""

    account_id: int
    coder_id: int
    name: str
    role: CoderRole

    @property
    def lead(self) -> bool:
        return self.role == "lead"


def _signed_in(found: rows.AccountRow | None) -> SignedIn | None:
    if found is None or found.revoked_at is not None:
        return None
    return SignedIn(found.account_id, found.coder_id, found.name, found.role)  # type: ignore[arg-type]


def sign_in(project: Project, token: str) -> SignedIn | None:
    """The account a token opens, or None (unknown, replaced or revoked)."""
    if not token or len(token) > 128:
        return None
    with project.transaction() as session:
        return _signed_in(rows.account_by_token(session, token))


def signed_in(project: Project, account_id: int) -> SignedIn | None:
    """The account a session names, or None when it was revoked (or never existed)."""
    with project.transaction() as session:
        return _signed_in(rows.account_by_id(session, account_id))


def has_accounts(project: Project) -> bool:
    with project.transaction() as session:
        return any(a.revoked_at is None for a in rows.accounts(session))
