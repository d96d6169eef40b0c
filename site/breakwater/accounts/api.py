"""JSON endpoints under /api/auth."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from breakwater.accounts import services
from breakwater.accounts.session import current_user, login_user, logout_user
from breakwater.common.errors import ApiError
from breakwater.database.consistency import consistency
from breakwater.extensions import db
from breakwater.ratelimit import login_attempt, login_limit, register_limit
from breakwater.web.json_api import json_body, require_json_for_writes

bp = Blueprint("auth_api", __name__, url_prefix="/api/auth")
require_json_for_writes(bp)


@bp.post("/register")
@register_limit()
def register():
    data = json_body()
    user = services.create_user(
        db.session,
        data.get("name"),
        data.get("password"),
        max_name=current_app.config["MAX_NAME_LENGTH"],
        email=data.get("email"),
    )
    login_user(user)
    from flask_wtf.csrf import generate_csrf

    # The static pages' account menu (site.js) needs the token for its log-out form.
    response = jsonify({"user": user.to_json(), "csrf_token": generate_csrf()})
    response.headers["Cache-Control"] = "private, no-store"
    return response, 201


@bp.post("/login")
@login_limit()
@consistency("strong")  # credentials are checked against the primary: a fresh account can log in at once
def login():
    data = json_body()
    with login_attempt(data.get("name")):
        user = services.authenticate(db.session, data.get("name"), data.get("password"))
    login_user(user)
    from flask_wtf.csrf import generate_csrf

    # The static pages' account menu (site.js) needs the token for its log-out form.
    response = jsonify({"user": user.to_json(), "csrf_token": generate_csrf()})
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.post("/logout")
def logout():
    logout_user()
    return jsonify({"ok": True})


@bp.get("/me")
def me():
    user = current_user()
    if user is None:
        raise ApiError(401, "not_authenticated", "Log in first: POST /api/auth/login.")
    from flask_wtf.csrf import generate_csrf

    # The static pages' account menu (site.js) needs the token for its log-out form.
    response = jsonify({"user": user.to_json(), "csrf_token": generate_csrf()})
    response.headers["Cache-Control"] = "private, no-store"
    return response
