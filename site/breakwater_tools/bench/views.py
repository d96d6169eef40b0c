from __future__ import annotations

import threading

from flask import Blueprint, Response

from breakwater.cache.http import dumps
from breakwater.extensions import db
from breakwater.home.services import home_data
from breakwater.regions import services as regions

bp = Blueprint("bench", __name__, url_prefix="/_bench/memory")
_memory: dict[str, bytes] = {}
_lock = threading.Lock()


def _from_memory(key: str, compute) -> Response:
    payload = _memory.get(key)
    if payload is None:
        with _lock:
            payload = _memory.setdefault(key, dumps(compute()))
    return Response(payload, mimetype="application/json")


@bp.get("/home")
def home():
    return _from_memory("home", lambda: home_data(db.session))


@bp.get("/regions/<code>")
def region(code: str):
    regions.validate_code(code)
    return _from_memory(f"regions:{code}", lambda: regions.node_with_children(db.session, code))
