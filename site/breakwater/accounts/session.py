"""The signed session cookie: who is logged in."""

from __future__ import annotations

from flask import g, session

from breakwater.accounts.models import User
from breakwater.accounts.services import get_user
from breakwater.extensions import db


def login_user(user: User) -> None:
    session.clear()  # a new session on login: no fixation
    session.permanent = True
    session["uid"] = user.id
    g.current_user = user


def logout_user() -> None:
    session.clear()
    g.current_user = None


def current_user() -> User | None:
    if "current_user" not in g:
        uid = session.get("uid")
        g.current_user = get_user(db.session, uid) if isinstance(uid, int) else None
    return g.current_user
