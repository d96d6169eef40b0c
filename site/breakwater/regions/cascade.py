"""The address picker's data as content-hashed JSON files: ``/regions-data/<parent>.<hash>.json``.

One file per parent (``root`` for the provinces), each listing its children; a child that has
children of its own names the hashed file holding them (``"next"``). Hashes are computed bottom-up,
so a change anywhere renames its file and every file above it, and each file is cacheable for a
year. The first screen loads only the root (34 provinces, about 2 KB); each further level loads on
demand: a province's cities, a city's districts, a district's streets/townships (about 3,400 files
in all, most under 2 KB). Obsolete codes are left out.
"""

from __future__ import annotations

import json
from collections import defaultdict

from flask import Blueprint, Response, abort
from sqlalchemy import select

from breakwater.cache.http import cached_data
from breakwater.extensions import db
from breakwater.regions.models import LEVELS, Region
from breakwater.web.assets import YEAR, content_hash

PREFIX = "/regions-data/"
SOFT_TTL = 3600.0

bp = Blueprint("regions_data", __name__)


def _dumps(data: object) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def compute_files() -> dict:
    """{"root": "<name>", "files": {name: json text}} from the regions table."""
    children: dict[str | None, list] = defaultdict(list)
    rows = db.session.execute(
        select(Region.code, Region.name, Region.level, Region.parent_code)
        .where(Region.obsolete.is_(False))
        .order_by(Region.code)
    )  # plain rows, not ORM objects: about 45,000 of them
    for row in rows:
        children[row.parent_code].append(row)
    files: dict[str, str] = {}

    def emit(parent: str | None) -> str:
        items = []
        for r in children[parent]:
            item = {"code": r.code, "name": r.name, "level": LEVELS.get(r.level, str(r.level))}
            if children.get(r.code):
                item["next"] = PREFIX + emit(r.code)
            items.append(item)
        text = _dumps({"parent": parent, "regions": items})
        name = f"{parent or 'root'}.{content_hash(text.encode())}.json"
        files[name] = text
        return name

    root = emit(None) if children.get(None) else ""
    return {"root": PREFIX + root if root else "", "files": files}


def region_files() -> dict:
    data, _status = cached_data("regions", "regions:files", ("regions",), compute_files, SOFT_TTL)
    return data


def root_url() -> str:
    return region_files()["root"]


@bp.get("/regions-data/<name>")
def serve(name: str) -> Response:
    text = region_files()["files"].get(name)
    if text is None:
        abort(404)
    response = Response(text, mimetype="application/json")
    response.headers["Cache-Control"] = YEAR
    return response
