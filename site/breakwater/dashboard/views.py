"""/ops/: the operator's dashboard, live charts of every tier from Prometheus (panels.py), firing alerts on top.

Who may open it: the operator as /healthz's details and /metrics decide it (health/access.py: a loopback caller
of the app that forwards nobody's request, a direct caller on the origin's operator network, or the operator
token), or a signed-in editor. Anyone else:

* the page: a visitor who is not signed in is sent to the login (as /editor does); a signed-in non-editor
  gets 404;
* the JSON API (``/ops/api/...``): 404 with a JSON error, as if it did not exist, like /metrics.

The browser never sends PromQL: it names a panel (``/ops/api/panels/<name>?minutes=N``) and the server runs
that panel's fixed range queries; ``/ops/api/alerts`` lists the alerts firing now. Prometheus is
``BREAKWATER_OPS_PROMETHEUS_URL`` (empty: the stack's own, http://127.0.0.1:PROMETHEUS_PORT); when it does not
answer within about two seconds the API says 503 ``prometheus_unavailable`` and the page shows that.

Nothing here is cached anywhere: every answer says ``Cache-Control: private, no-store`` (the edge passes /ops
to the origin with its cookies, the origin sends it to the app without its microcache).
"""

from __future__ import annotations

import math
import time

from flask import Blueprint, Response, abort, jsonify, redirect, render_template, request, url_for

from breakwater import extensions
from breakwater.accounts.session import current_user
from breakwater.dashboard import panels
from breakwater.dashboard.prometheus import Client, PrometheusUnavailable, number
from breakwater.health.access import is_operator

bp = Blueprint("dashboard", __name__, url_prefix="/ops")

#: what the page's range picker offers, minutes; the API accepts any whole number in between
MINUTES = (5, 15, 60, 360)
DEFAULT_MINUTES = 15
MAX_MINUTES = 1440
#: points per line at most (the step grows with the range)
MAX_POINTS = 240
#: the page refreshes every chart this often, milliseconds
REFRESH_MS = 5000
SEVERITY_ORDER = {"page": 0, "warn": 1}


class OpsError(Exception):
    """A JSON error of the dashboard's API: ``{"error": {"code", "message"[, "details"]}}``."""

    def __init__(self, status: int, code: str, message: str, **details: object):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def prometheus_url() -> str:
    settings = extensions.settings()
    return settings["OPS_PROMETHEUS_URL"].strip() or f"http://127.0.0.1:{settings.int('PROMETHEUS_PORT')}"


def _editor() -> bool:
    user = current_user()
    return user is not None and user.is_editor


def allowed() -> bool:
    return is_operator() or _editor()


@bp.after_request
def _never_cached(response: Response) -> Response:
    response.headers["Cache-Control"] = "private, no-store"
    response.vary.add("Cookie")
    return response


@bp.errorhandler(OpsError)
def _json_error(exc: OpsError):
    body: dict = {"error": {"code": exc.code, "message": exc.message}}
    if exc.details:
        body["error"]["details"] = exc.details
    return jsonify(body), exc.status


@bp.errorhandler(PrometheusUnavailable)
def _unavailable(exc: PrometheusUnavailable):
    message = str(exc)
    settings = extensions.settings()
    if not settings["OPS_PROMETHEUS_URL"].strip() and not settings.flag("PROMETHEUS"):
        message += " (this stack runs without it: BREAKWATER_PROMETHEUS=0)"
    response = jsonify({"error": {"code": "prometheus_unavailable", "message": message}})
    response.status_code = 503
    response.headers["Retry-After"] = "5"
    return response


def _api_guard() -> None:
    if not allowed():
        raise OpsError(404, "not_found", "The requested URL was not found on the server.")


@bp.get("/")
def index():
    if not allowed():
        if current_user() is None:
            return redirect(url_for("accounts.login", next=request.full_path.rstrip("?")))
        abort(404)
    return render_template(
        "dashboard/index.html",
        panels=panels.PANELS,
        minutes=MINUTES,
        default_minutes=DEFAULT_MINUTES,
        refresh_ms=REFRESH_MS,
        prometheus=prometheus_url(),
    )


def _minutes() -> int:
    raw = request.args.get("minutes", str(DEFAULT_MINUTES))
    try:
        minutes = int(raw)
    except ValueError:
        minutes = 0
    if not 1 <= minutes <= MAX_MINUTES:
        raise OpsError(400, "invalid_minutes", f"minutes must be a whole number from 1 to {MAX_MINUTES}.")
    return minutes


def grid(minutes: int, now: float | None = None) -> tuple[float, float, float]:
    """(start, end, step): the step a whole number of seconds, at least the scrape interval, at most
    MAX_POINTS points; start and end on multiples of it, so a refresh keeps the same timestamps."""
    step = max(panels.SCRAPE_SECONDS, math.ceil(minutes * 60 / MAX_POINTS))
    end = math.floor((time.time() if now is None else now) / step) * step
    return end - minutes * 60, end, step


def panel_data(client: Client, panel: panels.Panel, minutes: int) -> dict:
    start, end, step = grid(minutes)
    count = int((end - start) // step) + 1
    series: list[dict] = []
    for line in panel.lines:
        results = client.query_range(panels.expression(line, step), start, end, step)
        if not results and line.label:
            series.append({"label": line.label, "values": [None] * count})  # not there yet: an empty line
        for result in results:
            values: list[float | None] = [None] * count
            for t, v in result.get("values", []):
                i = round((float(t) - start) / step)
                if 0 <= i < count:
                    values[i] = number(v)
            label = line.label or result.get("metric", {}).get(line.label_from) or "value"
            series.append({"label": label, "values": values})
    return {
        "name": panel.name,
        "title": panel.title,
        "unit": panel.unit,
        "note": panel.note,
        "start": start,
        "end": end,
        "step": step,
        "timestamps": [start + i * step for i in range(count)],
        "series": series,
        "points": sum(v is not None for s in series for v in s["values"]),
    }


@bp.get("/api/panels/<name>")
def panel(name: str):
    _api_guard()
    found = panels.BY_NAME.get(name)
    if found is None:
        raise OpsError(404, "unknown_panel", f"There is no panel {name!r}.", panels=sorted(panels.BY_NAME))
    return jsonify(panel_data(Client(prometheus_url()), found, _minutes()))


@bp.get("/api/alerts")
def alerts():
    _api_guard()
    firing = [a for a in Client(prometheus_url()).alerts() if a.get("state") == "firing"]
    rows = [
        {
            "name": a.get("labels", {}).get("alertname", ""),
            "severity": a.get("labels", {}).get("severity", ""),
            "since": a.get("activeAt", ""),
            "summary": a.get("annotations", {}).get("summary", ""),
            "runbook": a.get("annotations", {}).get("runbook", ""),
            "labels": {k: v for k, v in a.get("labels", {}).items() if k not in ("alertname", "severity")},
        }
        for a in firing
    ]
    rows.sort(key=lambda r: (SEVERITY_ORDER.get(r["severity"], 2), r["name"], sorted(r["labels"].items())))
    return jsonify({"alerts": rows})
