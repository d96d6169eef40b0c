"""Images editors upload, served to visitors as small immutable files from the CDN.

Contract, in the order a byte travels:

- ``POST /api/editor/media`` (multipart ``file``; editors only; session callers send X-CSRFToken):
  over ``BREAKWATER_MEDIA_MAX_BYTES`` 413 before the body is parsed; the format decided by decoding
  with Pillow's JPEG/PNG/WebP/GIF decoders only (415 otherwise: SVG, PDF, HTML, whatever the name or
  Content-Type says); more than ``BREAKWATER_MEDIA_MAX_PIXELS`` 413 from the header alone; damaged
  data or bytes after the image's end (polyglots) 400. Nothing is written before all of that passed.
- The accepted image is re-encoded (:mod:`.processing`): upright, RGB, no EXIF/GPS/ICC/comments. Its
  master's SHA-256 names it: the same picture uploaded twice is one image (200 instead of 201).
- Variants ``<hash16>-<width>.webp|.jpg`` for each of ``BREAKWATER_MEDIA_WIDTHS`` below the image's own
  width (plus that width, capped) go atomically into the media folder (the source of truth), then the
  row is committed (a failed commit removes the files), then they are emitted into
  ``static_build/media/`` through the build manifest (:mod:`.variants`). Full builds copy them again.
- Content refers to an image by its canonical URL, the largest JPEG variant (``/media/<hash16>-1280.jpg``);
  ``responsive_img`` (:mod:`.html`) expands it into srcset/sizes/width/height/loading=lazy.
- Visitors get ``Cache-Control: public, max-age=31536000, immutable`` from the origin (static file or
  the app's fallback) and the edge; a replaced image has a new name, so nothing is purged.
- ``DELETE /api/editor/media/<id>``: 409 while an article (cover or body), ad or product refers to it.
"""

from __future__ import annotations

from flask import Flask
from PIL import Image

from breakwater import extensions


def init_media(app: Flask) -> None:
    from breakwater.extensions import csrf
    from breakwater.media import api, html, pages, variants, views  # noqa: F401  (pages registers)

    # Pillow's own guard as well (the explicit check in processing answers first, with a clear 413).
    Image.MAX_IMAGE_PIXELS = extensions.settings(app).int("MEDIA_MAX_PIXELS")
    csrf.exempt(api.bp)  # require_editor_api checks the CSRF token of session callers itself
    app.register_blueprint(api.bp)
    app.register_blueprint(variants.bp)
    app.register_blueprint(views.bp)
    app.jinja_env.globals["responsive_img"] = html.responsive_img
