"""``/api/editor/media``: upload (multipart, field ``file``), list, delete (409 while in use).

Multipart is the one non-JSON write of the editor API, so a cross-site form could send it: session
callers need the ``X-CSRFToken`` header (bearer-token callers need none), checked before the body is
read for anything else.
"""

from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, request

from breakwater import extensions
from breakwater.common.errors import ApiError
from breakwater.database.consistency import consistency
from breakwater.editor.auth import require_editor_api
from breakwater.extensions import db
from breakwater.media import services

bp = Blueprint("media_api", __name__, url_prefix="/api/editor/media")
FORM_SLACK = 64 * 1024  # multipart boundaries and the other fields around the file


@bp.before_request
def _guard():
    limit = extensions.settings().int("MEDIA_MAX_BYTES")
    request.max_content_length = limit + FORM_SLACK
    if request.method == "POST" and (request.content_length or 0) > limit + FORM_SLACK:
        raise ApiError(413, "file_too_large", f"The file is larger than {limit} bytes.")
    require_editor_api()


@bp.post("")
def upload():
    if not request.mimetype.startswith("multipart/form-data"):
        raise ApiError(415, "unsupported_media_type", "Send the image as multipart/form-data in the field 'file'.")
    upload = request.files.get("file")
    if upload is None:
        raise ApiError(400, "missing_file", "Send the image in the multipart field 'file'.", field="file")
    limit = extensions.settings().int("MEDIA_MAX_BYTES")
    data = upload.stream.read(limit + 1)
    with db.primary():  # the hash lookup must see an upload made a moment ago
        image, created = services.accept(db.session, current_app, data, upload.filename or "")
        body = services.to_json(image, services.usage(db.session, image))
    return jsonify({"media": body, "created": created}), 201 if created else 200


@bp.get("")
@consistency("causal")
def listing():
    return jsonify({"media": [services.to_json(i, used) for i, used in services.library(db.session)]})


@bp.get("/<int:media_id>")
@consistency("causal")
def one(media_id: int):
    image = services.get(db.session, media_id)
    return jsonify({"media": services.to_json(image, services.usage(db.session, image))})


@bp.delete("/<int:media_id>")
def remove(media_id: int):
    with db.primary():  # usage checked against the latest writes
        services.remove(db.session, current_app, services.get(db.session, media_id))
    return jsonify({"deleted": media_id, "by": g.editor.name})
