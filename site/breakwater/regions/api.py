"""GET /api/regions (provinces) and GET /api/regions/<code> (a node and its children), cached."""

from __future__ import annotations

from flask import Blueprint

from breakwater.cache.http import cached_json
from breakwater.extensions import db
from breakwater.regions import services

bp = Blueprint("regions_api", __name__, url_prefix="/api/regions")
SOFT_TTL = 3600.0  # regions change only with a new seed; the generation handles that


@bp.get("")
def provinces():
    return cached_json(
        "regions", "regions:root", ("regions",), lambda: {"regions": services.provinces(db.session)}, SOFT_TTL
    )


@bp.get("/<code>")
def node(code: str):
    services.validate_code(code)  # 400 before touching the cache
    return cached_json(
        "regions", f"regions:{code}", ("regions",), lambda: services.node_with_children(db.session, code), SOFT_TTL
    )
