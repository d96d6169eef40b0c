from __future__ import annotations

from flask import Blueprint, Response, jsonify

from breakwater.health.checks import health_report
from breakwater.observability.metrics import render_metrics

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    report, can_serve = health_report()
    response = jsonify(report)
    response.status_code = 200 if can_serve else 503
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/metrics")
def metrics():
    body, content_type = render_metrics()
    return Response(body, content_type=content_type)
