"""Visitor pages: an article, a category with pagination."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request

from breakwater.cache.http import cached_data
from breakwater.content import services
from breakwater.content.api import ARTICLE_TTL, LIST_TTL
from breakwater.errors import ApiError
from breakwater.extensions import db

bp = Blueprint("content", __name__)


@bp.get("/articles/<slug>")
def article(slug: str):
    if not services.SLUG_RE.match(slug):
        abort(404)
    data, status = cached_data(
        "article",
        f"article:{slug}",
        (f"article:{slug}",),
        lambda: services.published_article(db.session, slug),
        ARTICLE_TTL,
    )
    return render_template("content/article.html", article=data), 200, {"X-Cache": status}


@bp.get("/categories/<slug>")
def category(slug: str):
    if not services.SLUG_RE.match(slug):
        abort(404)
    try:
        page = services.parse_page(request.args.get("page"))
    except ApiError:
        abort(404)
    data, status = cached_data(
        "articles",
        f"articles:{slug}:{page}",
        ("articles",),
        lambda: services.published_page(db.session, slug, page),
        LIST_TTL,
    )
    return render_template("content/category.html", listing=data), 200, {"X-Cache": status}
