"""Visitor JSON API for articles, cached per page and per article."""

from __future__ import annotations

from flask import Blueprint, request

from breakwater.cache.http import cached_json
from breakwater.common.errors import ApiError
from breakwater.content import services
from breakwater.extensions import db

bp = Blueprint("content_api", __name__, url_prefix="/api/articles")
LIST_TTL, ARTICLE_TTL = 30.0, 300.0


@bp.get("")
def articles():
    category = request.args.get("category") or None
    if category is not None and not services.SLUG_RE.match(category):
        raise ApiError(400, "invalid_category", "category is a slug like 'news'.")
    page = services.parse_page(request.args.get("page"))
    return cached_json(
        "articles",
        f"articles:{category or '*'}:{page}",
        ("articles",),
        lambda: services.published_page(db.session, category, page),
        LIST_TTL,
    )


@bp.get("/<slug>")
def article(slug: str):
    if not services.SLUG_RE.match(slug) or len(slug) > 120:
        raise ApiError(404, "article_not_found", f"There is no published article {slug[:120]!r}.")
    return cached_json(
        "article",
        f"article:{slug}",
        (f"article:{slug}",),
        lambda: services.published_article(db.session, slug),
        ARTICLE_TTL,
    )
