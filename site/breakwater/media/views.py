"""The media library page: earlier uploads with their size and where they are used; upload; delete."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for

from breakwater import extensions
from breakwater.common.errors import ApiError
from breakwater.database.consistency import consistency
from breakwater.editor.auth import editor_page
from breakwater.extensions import db
from breakwater.media import services

bp = Blueprint("media", __name__, url_prefix="/editor/media")


@bp.get("")
@editor_page
@consistency("causal")
def library():
    limit = extensions.settings().int("MEDIA_MAX_BYTES")
    return render_template("editor/media.html", rows=services.library(db.session), max_bytes=limit)


@bp.post("/<int:media_id>/delete")
@editor_page
def delete(media_id: int):
    try:
        with db.primary():
            services.remove(db.session, current_app, services.get(db.session, media_id))
        flash("Image deleted.")
    except ApiError as exc:
        db.session.rollback()
        flash(f"Not deleted: {exc.message}")
    return redirect(url_for("media.library", **({"pick": request.args["pick"]} if "pick" in request.args else {})))
