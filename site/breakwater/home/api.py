from __future__ import annotations

from flask import Blueprint

from breakwater.cache.http import cached_json
from breakwater.extensions import db
from breakwater.home import services

bp = Blueprint("home_api", __name__, url_prefix="/api")


@bp.get("/home")
def home():
    return cached_json(
        "home", "home", services.DEPS, lambda: services.home_data(db.session), services.SOFT_TTL,
        ttl_from=services.soft_ttl,
    )  # fmt: skip
