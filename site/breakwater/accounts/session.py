"""The signed session cookie: who is logged in.

Beside it, a plain ``bw_signed_in=1`` cookie (no secret, readable by scripts) tells the static pages'
script that asking ``/api/auth/me`` is worth it: anonymous page views, the bulk of a spike, then
make no API call at all.
"""

from __future__ import annotations

from flask import after_this_request, current_app, g, session

from breakwater import extensions
from breakwater.accounts.models import User
from breakwater.accounts.services import get_user
from breakwater.extensions import db


def login_user(user: User) -> None:
    session.clear()  # a new session on login: no fixation
    session.permanent = True
    session["uid"] = user.id
    g.current_user = user
    _signed_in_hint(True)


def logout_user() -> None:
    session.clear()
    _signed_in_hint(False)
    g.current_user = None


def current_user() -> User | None:
    if "current_user" not in g:
        uid = session.get("uid")
        g.current_user = get_user(db.session, uid) if isinstance(uid, int) else None
    return g.current_user


SIGNED_IN_COOKIE = "bw_signed_in"


def _signed_in_hint(signed_in: bool) -> None:
    secure = extensions.settings().flag("COOKIE_SECURE")

    @after_this_request
    def _set(response):
        if signed_in:
            lifetime = int(current_app.permanent_session_lifetime.total_seconds())
            response.set_cookie(SIGNED_IN_COOKIE, "1", max_age=lifetime, samesite="Lax", secure=secure)
        else:
            response.delete_cookie(SIGNED_IN_COOKIE, samesite="Lax", secure=secure)
        return response
