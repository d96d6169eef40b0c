"""Visitor pages: an article, a category with pagination.

The same views serve the app's fallback and feed the static builder, so they render nothing per
visitor, and each names what it shows in an ``xkey`` header (the edge purges by these keys).
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, abort, redirect, render_template, request, url_for

from breakwater import extensions
from breakwater.cache.http import cached_data
from breakwater.common.errors import ApiError
from breakwater.content import services
from breakwater.content.api import ARTICLE_TTL, LIST_TTL
from breakwater.extensions import db
from breakwater.web.pages import page_response

bp = Blueprint("content", __name__)


@bp.get("/articles/<slug>")
def article(slug: str):
    if not services.SLUG_RE.match(slug):
        abort(404)
    try:
        data, status = cached_data(
            "article",
            f"article:{slug}",
            (f"article:{slug}",),
            lambda: services.published_article(db.session, slug),
            ARTICLE_TTL,
        )
    except ApiError:
        from breakwater.pages.builder import redirect_for

        target = redirect_for(Path(extensions.settings()["STATIC_DIR"]), request.path)
        if target:
            return redirect(target, 301)
        raise
    keys = [f"article-{data['id']}", f"category-{data['category']['slug']}"]
    return page_response(render_template("content/article.html", article=data), status, keys)


@bp.get("/categories/<slug>")
@bp.get("/categories/<slug>/page/<int:page>")
def category(slug: str, page: int = 1):
    if not services.SLUG_RE.match(slug):
        abort(404)
    if "page" in request.args:  # the old query-string form: one canonical (static) URL per page
        try:
            wanted = services.parse_page(request.args.get("page"))
        except ApiError:
            abort(404)
        return redirect(_category_url(slug, wanted), 301)
    if page < 1 or page > 10_000:
        abort(404)
    if page == 1 and request.path.endswith("/page/1"):
        return redirect(_category_url(slug, 1), 301)
    data, status = cached_data(
        "articles",
        f"articles:{slug}:{page}",
        ("articles",),
        lambda: services.published_page(db.session, slug, page),
        LIST_TTL,
    )
    if page > data["pages"]:
        abort(404)
    keys = [f"category-{slug}", *(f"article-{a['id']}" for a in data["articles"])]
    return page_response(render_template("content/category.html", listing=data), status, keys)


def _category_url(slug: str, page: int) -> str:
    return url_for("content.category", slug=slug, page=page) if page > 1 else url_for("content.category", slug=slug)
