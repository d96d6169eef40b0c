from __future__ import annotations

from flask import Blueprint, render_template

from breakwater.cache.http import cached_data
from breakwater.extensions import db
from breakwater.home import services
from breakwater.pages.http import page_response

bp = Blueprint("home", __name__)


@bp.get("/")
def index():
    data, status = cached_data(
        "home", "home", services.DEPS, lambda: services.home_data(db.session), services.SOFT_TTL,
        ttl_from=services.soft_ttl,
    )  # fmt: skip
    shown = [f"article-{a['id']}" for cat in data["categories"] for a in cat["articles"]]
    return page_response(render_template("home/index.html", home=data), status, ["home", "ads", *shown])
