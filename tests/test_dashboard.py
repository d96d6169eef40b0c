"""The operator's dashboard (/ops/, breakwater/dashboard): who may open it, its JSON errors, and a Prometheus
that is down or hung. The shared test stack runs without Prometheus (BREAKWATER_PROMETHEUS=0); the charts
with live data are tests/monitoring/test_dashboard_live.py's."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager

import pytest
import requests

from breakwater_tools.stack.ports import free_ports
from visitors import visitor

PAGE = "/ops/"
API = ("/ops/api/alerts", "/ops/api/panels/requests")


def _no_store(resp: requests.Response) -> None:
    assert "no-store" in resp.headers.get("Cache-Control", ""), resp.headers


def _not_found_json(resp: requests.Response) -> None:
    assert resp.status_code == 404, (resp.status_code, resp.text[:200])
    assert resp.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("front", ["edge", "origin"])
def test_an_anonymous_visitor_through_the_edge_or_the_origin_is_refused(http, front, request):
    base = request.getfixturevalue(front)
    page = http.get(base + PAGE, allow_redirects=False, timeout=10)
    assert page.status_code == 302 and "/login?next=/ops/" in page.headers["Location"], page.status_code
    _no_store(page)
    for path in API:
        resp = http.get(base + path, timeout=10)
        _not_found_json(resp)
        _no_store(resp)
        assert "X-Edge-Cache" not in resp.headers or resp.headers["X-Edge-Cache"] != "HIT"


def test_a_signed_in_visitor_who_is_not_an_editor_gets_404(http, origin, unique_name):
    account = {"name": unique_name, "password": "long enough pw"}
    resp = http.post(f"{origin}/api/auth/register", json=account, timeout=10)
    assert resp.status_code == 201, resp.text
    assert http.get(origin + PAGE, allow_redirects=False, timeout=10).status_code == 404
    for path in API:
        _not_found_json(http.get(origin + path, timeout=10))


def test_forwarded_requests_to_the_app_itself_are_refused(settings):
    """From 127.0.0.1, a front server's address, but carrying somebody else's request: a proxy's, not the
    operator's (health/access.py)."""
    with requests.Session() as s:
        for headers in ({"X-Forwarded-For": "203.0.113.7"}, {"Forwarded": "for=203.0.113.7"}):
            _not_found_json(s.get(settings.app_url + API[0], headers=headers, timeout=10))
            page = s.get(settings.app_url + PAGE, headers=headers, allow_redirects=False, timeout=10)
            assert page.status_code == 302, page.status_code


@pytest.mark.parametrize("front", ["edge", "origin"])
def test_an_editor_may_open_it_through_the_edge_and_the_origin(settings, front, request):
    base = request.getfixturevalue(front)
    with visitor() as s:  # the editor, from an address of its own
        login = s.post(f"{base}/api/auth/login", timeout=10,
                       json={"name": settings["EDITOR_NAME"], "password": settings["EDITOR_PASSWORD"]})  # fmt: skip
        assert login.status_code == 200, login.text
        page = s.get(base + PAGE, timeout=10)
        assert page.status_code == 200 and "data-ops" in page.text, page.status_code
        _no_store(page)
        assert "X-Edge-Cache" not in page.headers or page.headers["X-Edge-Cache"] != "HIT"
        for path in API:  # allowed: an answer of the API itself, whether or not a Prometheus listens there
            resp = s.get(base + path, timeout=10)
            assert resp.status_code in (200, 503), (path, resp.status_code, resp.text[:200])
            _no_store(resp)


def test_the_operator_on_loopback_may_open_it_and_every_asset_is_served_hashed(settings):
    with visitor() as s:  # any loopback caller of the app itself that forwards nobody's request
        page = s.get(settings.app_url + PAGE, timeout=10)
        assert page.status_code == 200, page.status_code
        _no_store(page)
        for name in ("vendor/uplot/uPlot.iife.min.js", "vendor/uplot/uPlot.min.css", "dashboard.js", "dashboard.css"):
            stem = name.rpartition(".")[0]
            assert f"/assets/{stem}." in page.text, name
        assets = [part.split('"', 1)[0] for part in page.text.split('="/assets/')[1:]]
        for asset in assets:
            resp = s.get(f"{settings.app_url}/assets/{asset}", timeout=10)
            assert resp.status_code == 200 and "immutable" in resp.headers["Cache-Control"], asset
        assert "<script>" not in page.text  # no inline script: the CSP is default-src 'self'
        for path in API:
            assert s.get(settings.app_url + path, timeout=10).status_code in (200, 503), path


# ---------------------------------------------------------------------------------- the JSON API, in process
@pytest.fixture()
def ops(app, monkeypatch):
    """``ops(path, prometheus=URL)``: the app's answer to a loopback operator, Prometheus being at URL."""
    from breakwater.dashboard import views

    client = app.test_client()

    def call(path: str, prometheus: str):
        monkeypatch.setattr(views, "prometheus_url", lambda: prometheus)
        return client.get(path, environ_base={"REMOTE_ADDR": "127.0.0.1"})

    return call


@contextmanager
def hung_prometheus():
    """A port that accepts connections and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


def test_unknown_panel_is_a_404_json_error_naming_the_panels(ops):
    resp = ops("/ops/api/panels/no_such_panel", "http://127.0.0.1:9")
    assert resp.status_code == 404
    error = resp.get_json()["error"]
    assert error["code"] == "unknown_panel" and "requests" in error["details"]["panels"]
    bad = ops("/ops/api/panels/requests?minutes=0", "http://127.0.0.1:9")
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_minutes"


@pytest.mark.parametrize("path", ["/ops/api/panels/requests", "/ops/api/alerts"])
def test_a_prometheus_that_is_down_is_a_503_json_error(ops, path):
    (closed,) = free_ports(1)
    started = time.monotonic()
    resp = ops(path, f"http://127.0.0.1:{closed}")
    assert resp.status_code == 503, resp.get_data(as_text=True)
    error = resp.get_json()["error"]
    assert error["code"] == "prometheus_unavailable" and str(closed) in error["message"]
    assert "no-store" in resp.headers["Cache-Control"]
    assert time.monotonic() - started < 1


def test_a_hung_prometheus_costs_a_request_about_two_seconds_at_most(ops):
    with hung_prometheus() as url:
        started = time.monotonic()
        resp = ops("/ops/api/panels/hit_ratio", url)  # three queries: they share one deadline
        took = time.monotonic() - started
    assert resp.status_code == 503 and resp.get_json()["error"]["code"] == "prometheus_unavailable"
    assert took < 2.5, took


def test_the_stack_without_prometheus_answers_503_from_its_own_address(app):
    """With the default address (BREAKWATER_OPS_PROMETHEUS_URL empty) the message says the stack runs without
    Prometheus, when it does."""
    from breakwater.dashboard import views

    with app.test_request_context("/ops/api/alerts"):
        settings = app.extensions["breakwater.settings"]
        assert views.prometheus_url() == f"http://127.0.0.1:{settings.int('PROMETHEUS_PORT')}"
    (closed,) = free_ports(1)
    other = app.extensions["breakwater.settings"].with_values(PROMETHEUS_PORT=str(closed))
    app.extensions["breakwater.settings"], saved = other, app.extensions["breakwater.settings"]
    try:
        resp = app.test_client().get("/ops/api/alerts", environ_base={"REMOTE_ADDR": "127.0.0.1"})
    finally:
        app.extensions["breakwater.settings"] = saved
    assert resp.status_code == 503
    assert "BREAKWATER_PROMETHEUS=0" in resp.get_json()["error"]["message"]
