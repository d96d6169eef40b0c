"""Variant files: ``<hash>-<width>.webp`` and ``.jpg`` in the media folder, emitted into ``static_build/media/``.

The media folder (``BREAKWATER_MEDIA_DIR``) is the source of truth; ``static_build/media/`` is what the
origin serves, written through the build manifest (atomically, like pages) at upload time and again
by every full build, so ``breakwater pages build`` reproduces it. Until a file is there the app serves
it from the media folder (:func:`serve`), with the same year-long immutable Cache-Control.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from flask import Blueprint, Flask, Response, abort, send_file

from breakwater import extensions
from breakwater.media.processing import Master, encode_variant
from breakwater.pages import writer

PREFIX = "/media/"
YEAR = "public, max-age=31536000, immutable"
NAME_RE = re.compile(r"^(?P<key>[0-9a-f]{16})-(?P<width>[0-9]{1,5})\.(?P<ext>webp|jpg)$")
log = logging.getLogger(__name__)

bp = Blueprint("media_files", __name__)


def media_root(app: Flask | None = None) -> Path:
    return extensions.settings(app).media_dir


def write_variants(root: Path, key: str, master: Master, widths: list[int]) -> list[str]:
    """Encode and write every variant atomically; returns the file names (all or none are left)."""
    names: list[str] = []
    try:
        for width in widths:
            for ext in ("webp", "jpg"):
                name = f"{key}-{width}.{ext}"
                writer.write_file(root, name, encode_variant(master.image, width, ext))
                names.append(name)
    except BaseException:
        remove_variants(root, names)
        raise
    return names


def remove_variants(root: Path, names: list[str]) -> None:
    for name in names:
        (root / name).unlink(missing_ok=True)


def all_files(root: Path) -> list[tuple[str, Path]]:
    """(URL, file) of every variant in the media folder, for full builds."""
    if not root.is_dir():
        return []
    return [(PREFIX + p.name, p) for p in sorted(root.iterdir()) if NAME_RE.match(p.name)]


def emit(app: Flask, names: list[str]) -> None:
    """Copy variants into static_build through the manifest. A failure is logged, not raised: the
    files are safe in the media folder and the app serves them until the next build emits them."""
    from breakwater.pages.builder import Builder, BuildError

    root = media_root(app)
    files = {PREFIX + n: (lambda p=root / n: (p.read_bytes(), ["media"])) for n in names}
    try:
        Builder(app).emit_files(files)
    except (BuildError, OSError) as exc:
        log.warning("media not emitted into the static folder yet: %s", exc)


def withdraw(app: Flask, names: list[str]) -> None:
    from breakwater.pages.builder import Builder, BuildError

    try:
        Builder(app).remove_urls([PREFIX + n for n in names])
    except (BuildError, OSError) as exc:
        log.warning("media not removed from the static folder: %s", exc)


@bp.get("/media/<name>")
def serve(name: str) -> Response:
    if not NAME_RE.match(name):
        abort(404)
    path = media_root() / name
    if not path.is_file():
        abort(404)
    response = send_file(path, max_age=None, conditional=True)
    response.headers["Cache-Control"] = YEAR
    return response
