"""Who may edit: an editor's session (with a CSRF token on writes) or an editor's bearer token."""

from __future__ import annotations

import hashlib
import secrets
from functools import wraps

from flask import g, redirect, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session

from breakwater.accounts.models import ApiToken, User
from breakwater.accounts.session import current_user
from breakwater.common.errors import ApiError
from breakwater.extensions import csrf, db


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, user: User, label: str = "") -> str:
    """Create a bearer token for ``user``; only its hash is stored, so show it once."""
    token = "bw_" + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_hash=hash_token(token), label=label[:64]))
    session.commit()
    return token


def _bearer_user() -> User | None:
    header = request.headers.get("Authorization", "")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "invalid_token", "Send the token as 'Authorization: Bearer <token>'.")
    with db.primary():  # a freshly issued token must work at once
        row = db.session.scalars(select(ApiToken).where(ApiToken.token_hash == hash_token(token.strip()))).first()
    if row is None:
        raise ApiError(401, "invalid_token", "The bearer token is unknown or revoked.")
    return row.user


def require_editor_api() -> User:
    """For /api/editor: a bearer token, or a session plus the CSRF token on writes."""
    bearer = _bearer_user()
    user = bearer or current_user()
    if user is None:
        raise ApiError(401, "not_authenticated", "Log in as an editor or send a bearer token.")
    if not user.is_editor:  # role before CSRF: a visitor gets 403, not a token error
        raise ApiError(403, "not_editor", "Only editors may do this.")
    if bearer is None and request.method not in ("GET", "HEAD", "OPTIONS"):
        csrf.protect()  # X-CSRFToken header (from the page's meta tag) for session-authenticated writes
    g.editor = user
    return user


def editor_page(view):
    """HTML views: log in first (redirect), editors only (403)."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        user = current_user()
        if user is None:
            return redirect(url_for("accounts.login", next=request.full_path.rstrip("?")))
        if not user.is_editor:
            raise ApiError(403, "not_editor", "Only editors may open the editor.")
        g.editor = user
        return view(*args, **kwargs)

    return wrapper
