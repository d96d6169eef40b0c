from __future__ import annotations

from flask import Blueprint, Response, jsonify

from breakwater.health.access import is_operator
from breakwater.health.checks import cached_health_report
from breakwater.observability.metrics import render_metrics

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """Whether the site can serve (status and HTTP code) for everybody; every node, address, position and error
    only for the operator (breakwater/health/access.py)."""
    report, can_serve = cached_health_report()
    response = jsonify(report if is_operator() else {"status": report["status"]})
    response.status_code = 200 if can_serve else 503
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/metrics")
def metrics():
    if not is_operator():
        return Response("forbidden\n", status=403, content_type="text/plain; charset=utf-8")
    body, content_type = render_metrics()
    return Response(body, content_type=content_type)
