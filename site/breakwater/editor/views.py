"""The editor web UI: articles (with preview), ad slots and ads, publish history. Plain forms + CSRF."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from sqlalchemy import select

from breakwater.ads import services as ads
from breakwater.cache.invalidation import invalidate
from breakwater.common.errors import ApiError
from breakwater.content import services as content
from breakwater.content.models import Article
from breakwater.content.rendering import render_markdown
from breakwater.database.consistency import consistency
from breakwater.editor.api import article_namespaces
from breakwater.editor.auth import editor_page
from breakwater.extensions import db
from breakwater.localtime import form_value

bp = Blueprint("editor", __name__, url_prefix="/editor")


def _form_article() -> dict:
    f = request.form
    data = {k: f.get(k, "") for k in ("title", "slug", "summary", "cover_url", "category", "body")}
    data["publish"] = f.get("action") == "publish"
    return data


@bp.get("")
@editor_page
@consistency("causal")
def dashboard():
    rows = db.session.scalars(select(Article).order_by(Article.updated_at.desc(), Article.id.desc()).limit(200))
    return render_template("editor/dashboard.html", articles=list(rows))


@bp.route("/articles/new", methods=["GET", "POST"])
@editor_page
def new_article():
    cats = content.categories(db.session)
    if request.method == "GET":
        return render_template("editor/article_form.html", article=None, data={}, categories=cats, preview=None)
    data = _form_article()
    if request.form.get("action") == "preview":
        return _preview(None, data, cats)
    try:
        invalidate(db.session, *article_namespaces(data["slug"].strip()))
        article = content.create_article(db.session, g.editor, data, current_app.config["ARTICLE_MAX_BYTES"])
    except ApiError as exc:
        return render_template(
            "editor/article_form.html", article=None, data=data, categories=cats, preview=None, error=exc.message
        ), exc.status
    flash(f"{'Published' if data['publish'] else 'Saved draft'}: {article.title}")
    return redirect(url_for("editor.dashboard"))


@bp.route("/articles/<int:article_id>", methods=["GET", "POST"])
@editor_page
@consistency("causal")
def edit_article(article_id: int):
    article = content.get_article(db.session, article_id)
    cats = content.categories(db.session)
    if request.method == "GET":
        data = {
            "title": article.title, "slug": article.slug, "summary": article.summary,
            "cover_url": article.cover_url, "category": article.category.slug, "body": article.body_md,
        }  # fmt: skip
        return render_template("editor/article_form.html", article=article, data=data, categories=cats, preview=None)
    data = _form_article()
    if request.form.get("action") == "preview":
        return _preview(article, data, cats)
    try:
        invalidate(db.session, *article_namespaces(article.slug, data["slug"].strip()))
        content.update_article(db.session, g.editor, article, data, current_app.config["ARTICLE_MAX_BYTES"])
        if data["publish"]:
            invalidate(db.session, *article_namespaces(article.slug))
            content.set_published(db.session, g.editor, article, True)
    except ApiError as exc:
        db.session.rollback()
        return render_template(
            "editor/article_form.html", article=article, data=data, categories=cats, preview=None, error=exc.message
        ), exc.status
    flash(f"Saved: {article.title}")
    return redirect(url_for("editor.dashboard"))


def _preview(article, data, cats):
    limit = current_app.config["ARTICLE_MAX_BYTES"]
    if len(data["body"].encode()) > limit:
        error = f"The body is larger than {limit} bytes; shorten it."
        return render_template(
            "editor/article_form.html", article=article, data=data, categories=cats, preview=None, error=error
        ), 413
    html = render_markdown(data["body"])
    return render_template("editor/article_form.html", article=article, data=data, categories=cats, preview=html)


@bp.post("/articles/<int:article_id>/<any(publish, unpublish, delete):action>")
@editor_page
def article_action(article_id: int, action: str):
    article = content.get_article(db.session, article_id)
    invalidate(db.session, *article_namespaces(article.slug))
    if action == "delete":
        content.delete_article(db.session, g.editor, article)
        flash(f"Deleted: {article.title}")
    else:
        content.set_published(db.session, g.editor, article, action == "publish")
        flash(f"{action.capitalize()}ed: {article.title}")
    return redirect(url_for("editor.dashboard"))


@bp.get("/ads")
@editor_page
@consistency("causal")
def ads_page():
    return render_template("editor/ads.html", slots=ads.all_slots(db.session), now=datetime.utcnow())


def _form_ad() -> dict:
    f = request.form
    data = {k: f.get(k, "") for k in ("slot", "title", "link", "image_url")}
    data.update({k: form_value(f.get(k)) for k in ("starts_at", "ends_at")})  # local wall-clock -> offset
    order = f.get("sort_order", "0").strip() or "0"
    data["sort_order"] = int(order) if order.lstrip("-").isdigit() else order
    data["enabled"] = f.get("enabled") == "on"
    return data


@bp.post("/ads")
@editor_page
def create_ad():
    try:
        invalidate(db.session, "ads")
        ads.create_ad(db.session, g.editor, _form_ad())
    except ApiError as exc:
        db.session.rollback()
        flash(f"Not saved: {exc.message}")
        return redirect(url_for("editor.ads_page")), 303
    flash("Ad created.")
    return redirect(url_for("editor.ads_page"))


@bp.post("/ads/<int:ad_id>")
@editor_page
def update_ad(ad_id: int):
    ad = ads.get_ad(db.session, ad_id)
    try:
        invalidate(db.session, "ads")
        if request.form.get("action") == "delete":
            ads.delete_ad(db.session, g.editor, ad)
            flash("Ad deleted.")
        else:
            ads.update_ad(db.session, g.editor, ad, _form_ad())
            flash("Ad saved.")
    except ApiError as exc:
        db.session.rollback()
        flash(f"Not saved: {exc.message}")
    return redirect(url_for("editor.ads_page"))


@bp.post("/slots")
@editor_page
def create_slot():
    try:
        invalidate(db.session, "ads")
        ads.create_slot(
            db.session, g.editor, {"key": request.form.get("key", ""), "name": request.form.get("name", "")}
        )
    except ApiError as exc:
        db.session.rollback()
        flash(f"Not saved: {exc.message}")
    return redirect(url_for("editor.ads_page"))


@bp.get("/history")
@editor_page
def history():
    return render_template("editor/history.html", events=content.history(db.session))
