"""Static assets (CSS, JS, images) under content-hashed names, cacheable for a year.

``asset_url("site.css")`` -> ``/assets/site.3f2a9c1b7d.css``. A changed file gets a new name, so no
purge is ever needed for assets. The builder copies every asset into ``static_build/assets/``; until
a build ran (or on a missing file) the app serves the same bytes from ``/assets/<hashed name>``.
"""

from __future__ import annotations

import hashlib
import re
from functools import cache
from pathlib import Path

from flask import Blueprint, Response, abort, send_file

STATIC_ROOT = Path(__file__).resolve().parents[1] / "static"
PREFIX = "/assets/"
YEAR = "public, max-age=31536000, immutable"
_HASHED = re.compile(r"^(?P<stem>.+)\.(?P<hash>[0-9a-f]{10})(?P<ext>\.[A-Za-z0-9]+)$")

bp = Blueprint("assets", __name__)


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:10]


@cache
def _table() -> dict[str, tuple[str, Path]]:
    """{relative source path: (hashed relative path, source file)} for every file under static/."""
    table = {}
    for path in sorted(STATIC_ROOT.rglob("*")):
        if path.is_file():
            rel = path.relative_to(STATIC_ROOT).as_posix()
            stem, dot, ext = rel.rpartition(".")
            hashed = f"{stem}.{content_hash(path.read_bytes())}.{ext}" if dot else rel
            table[rel] = (hashed, path)
    return table


def asset_url(name: str) -> str:
    entry = _table().get(name.lstrip("/"))
    if entry is None:
        raise KeyError(f"no asset {name!r} under {STATIC_ROOT}")
    return PREFIX + entry[0]


def static_url(url: str | None) -> str:
    """Editor-supplied image URLs may point at shipped assets (``/static/img/x.svg``): give their
    hashed name; any other URL is returned unchanged."""
    if url and url.startswith("/static/"):
        entry = _table().get(url.removeprefix("/static/"))
        if entry is not None:
            return PREFIX + entry[0]
    return url or ""


def all_assets() -> list[tuple[str, Path]]:
    """(URL path, source file) for the builder."""
    return [(PREFIX + hashed, source) for hashed, source in _table().values()]


@bp.get("/assets/<path:name>")
def serve(name: str) -> Response:
    match = _HASHED.match(name)
    if not match:
        abort(404)
    source = f"{match['stem']}{match['ext']}"
    entry = _table().get(source)
    if entry is None or entry[0] != name:
        abort(404)
    response = send_file(entry[1], max_age=None, conditional=True)
    response.headers["Cache-Control"] = YEAR
    return response
