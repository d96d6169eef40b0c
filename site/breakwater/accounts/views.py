"""HTML pages: register, log in, log out (forms protected by CSRF tokens)."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for

from breakwater.accounts import services
from breakwater.accounts.session import login_user, logout_user
from breakwater.common.errors import ApiError
from breakwater.database.consistency import consistency
from breakwater.extensions import db
from breakwater.ratelimit import login_attempt, login_limit, register_limit

bp = Blueprint("accounts", __name__)


def _safe_next(target: str | None) -> str:
    # Only local paths: an open redirect would let a link send users anywhere after login.
    # Browsers read "/\\evil.example" as "//evil.example", so backslashes and controls are refused too.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.isprintable():
            return target
    return url_for("home.index")


@bp.route("/register", methods=["GET", "POST"])
@register_limit()
def register():
    if request.method == "POST":
        try:
            user = services.create_user(
                db.session,
                request.form.get("name"),
                request.form.get("password"),
                max_name=current_app.config["MAX_NAME_LENGTH"],
                email=request.form.get("email"),
            )
        except ApiError as exc:
            return render_template(
                "accounts/register.html", error=exc.message, name=request.form.get("name", "")
            ), exc.status
        login_user(user)
        flash(f"欢迎 {user.name}！")  # noqa: RUF001
        return redirect(url_for("home.index"))
    return render_template("accounts/register.html", error=None, name="")


@bp.route("/login", methods=["GET", "POST"])
@login_limit()
@consistency("strong")
def login():
    if request.method == "POST":
        try:
            with login_attempt(request.form.get("name")):
                user = services.authenticate(db.session, request.form.get("name"), request.form.get("password"))
        except ApiError as exc:
            return render_template(
                "accounts/login.html", error=exc.message, name=request.form.get("name", "")
            ), exc.status
        login_user(user)
        return redirect(_safe_next(request.args.get("next")))
    return render_template("accounts/login.html", error=None, name="")


@bp.post("/logout")
def logout():
    logout_user()
    return redirect(url_for("home.index"))
