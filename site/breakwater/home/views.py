from __future__ import annotations

from flask import Blueprint, render_template

from breakwater.cache.http import cached_page
from breakwater.extensions import db
from breakwater.home import services
from breakwater.web.pages import page_response

bp = Blueprint("home", __name__)


@bp.get("/")
def index():
    (html, keys), status = cached_page(
        "home", "home", services.DEPS, lambda: services.home_data(db.session), services.SOFT_TTL, _render,
        ttl_from=services.soft_ttl,
    )  # fmt: skip
    return page_response(html, status, keys)


def _render(data: dict) -> tuple[str, list[str]]:
    """The homepage and its surrogate keys, from the cached data alone (base.html holds nothing per visitor)."""
    shown = [f"article-{a['id']}" for cat in data["categories"] for a in cat["articles"]]
    return render_template("home/index.html", home=data), ["home", "ads", *shown]
