"""JSON editor API under /api/editor (bearer token, or session + X-CSRFToken)."""

from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, request
from sqlalchemy import select

from breakwater.ads import services as ads
from breakwater.cache.invalidation import invalidate
from breakwater.common.errors import ApiError
from breakwater.content import services as content
from breakwater.content.models import Article
from breakwater.content.rendering import render_markdown
from breakwater.database.consistency import consistency
from breakwater.editor import slugs
from breakwater.editor.auth import require_editor_api
from breakwater.extensions import db
from breakwater.web.json_api import json_body, require_json_for_writes

bp = Blueprint("editor_api", __name__, url_prefix="/api/editor")
require_json_for_writes(bp)


@bp.before_request
def _auth():
    require_editor_api()


def _limit() -> int:
    return current_app.config["ARTICLE_MAX_BYTES"]


def article_namespaces(*slugs: str) -> tuple[str, ...]:
    return ("articles", *(f"article:{s}" for s in slugs))


@bp.get("/articles")
@consistency("causal")
def list_articles():
    rows = db.session.scalars(select(Article).order_by(Article.updated_at.desc(), Article.id.desc()).limit(200))
    return jsonify({"articles": [a.to_editor_json() for a in rows]})


@bp.post("/articles")
def create_article():
    data = json_body()
    invalidate(db.session, *article_namespaces(str(data.get("slug", ""))))
    article = content.create_article(db.session, g.editor, data, _limit())
    return jsonify({"article": article.to_editor_json()}), 201


@bp.get("/articles/<int:article_id>")
def get_article(article_id: int):
    return jsonify({"article": content.get_article(db.session, article_id).to_editor_json()})


@bp.patch("/articles/<int:article_id>")
def update_article(article_id: int):
    data = json_body()
    article = content.get_article(db.session, article_id)
    invalidate(db.session, *article_namespaces(article.slug, str(data.get("slug", article.slug))))
    content.update_article(db.session, g.editor, article, data, _limit())
    return jsonify({"article": article.to_editor_json()})


@bp.post("/articles/<int:article_id>/<any(publish, unpublish):action>")
def publish(article_id: int, action: str):
    article = content.get_article(db.session, article_id)
    invalidate(db.session, *article_namespaces(article.slug))
    content.set_published(db.session, g.editor, article, action == "publish")
    return jsonify({"article": article.to_editor_json()})


@bp.delete("/articles/<int:article_id>")
def delete(article_id: int):
    article = content.get_article(db.session, article_id)
    invalidate(db.session, *article_namespaces(article.slug))
    content.delete_article(db.session, g.editor, article)
    return jsonify({"deleted": article_id})


@bp.post("/preview")
def preview():
    body = json_body().get("body")
    if not isinstance(body, str):
        raise ApiError(400, "missing_field", "body is required.", field="body")
    if len(body.encode()) > _limit():
        raise ApiError(413, "body_too_large", f"The body is larger than {_limit()} bytes; shorten it.")
    return jsonify({"html": render_markdown(body)})


@bp.get("/slots")
def slots():
    return jsonify(
        {"slots": [{**s.to_json(), "ads": [a.to_editor_json() for a in s.ads]} for s in ads.all_slots(db.session)]}
    )


@bp.post("/slots")
def create_slot():
    data = json_body()
    invalidate(db.session, "ads")
    slot = ads.create_slot(db.session, g.editor, data)
    return jsonify({"slot": slot.to_json()}), 201


@bp.post("/ads")
def create_ad():
    data = json_body()
    invalidate(db.session, "ads")
    ad = ads.create_ad(db.session, g.editor, data)
    return jsonify({"ad": ad.to_editor_json()}), 201


@bp.patch("/ads/<int:ad_id>")
def update_ad(ad_id: int):
    data = json_body()
    ad = ads.get_ad(db.session, ad_id)
    invalidate(db.session, "ads")
    ads.update_ad(db.session, g.editor, ad, data)
    return jsonify({"ad": ad.to_editor_json()})


@bp.delete("/ads/<int:ad_id>")
def delete_ad(ad_id: int):
    ad = ads.get_ad(db.session, ad_id)
    invalidate(db.session, "ads")
    ads.delete_ad(db.session, g.editor, ad)
    return jsonify({"deleted": ad_id})


@bp.get("/slug")
def slug():
    """``?title=`` a proposal (pinyin, made unique); ``?slug=`` whether it is free; ``&article_id=`` ignores
    that article's own slug."""
    args = request.args
    article_id = args.get("article_id", "")
    with db.primary():  # "available" must not miss an article saved a moment ago
        return jsonify(
            slugs.check(
                db.session, args.get("title", "")[:200], args.get("slug", "")[:120],
                int(article_id) if article_id.isdigit() else None,
            )
        )  # fmt: skip


@bp.get("/history")
def history():
    return jsonify({"events": content.history(db.session)})
