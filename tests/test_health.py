"""/healthz and /metrics through Nginx, as the operator reads them: /healthz's details with the operator token
(``http`` is a visitor of its own), /metrics from 127.0.0.1. What visitors see: tests/test_exposure.py."""

from __future__ import annotations

import requests

from operator_token import ops_headers


def test_healthz_through_nginx_reports_three_nodes_replicating(http, origin, stack):
    stack.wait_healthy(timeout=60)  # earlier tests restart services; give them time to settle
    resp = http.get(f"{origin}/healthz", headers=ops_headers(stack.settings), timeout=10)
    assert resp.status_code == 200
    assert resp.headers["Server"].startswith("nginx")
    body = resp.json()
    assert body["status"] == "ok", body["problems"]
    nodes = body["database"]
    assert [n["role"] for n in nodes] == ["primary", "replica", "replica"]
    assert len({n["server_id"] for n in nodes}) == 3
    primary, *replicas = nodes
    assert primary["read_only"] is False and primary["gtid_binlog_pos"]
    for replica in replicas:
        assert replica["read_only"] is True
        assert replica["io_running"] and replica["sql_running"] and replica["replicating"]
        assert replica["lag_seconds"] is not None
        assert isinstance(replica["lag_transactions"], int)
    assert body["redis"]["up"] is True and body["redis_cache"]["up"] is True
    assert body["worker"]["up"] is True and body["worker"]["workers"]


def test_metrics_are_prometheus_text(http, origin):
    http.get(f"{origin}/api/auth/me", timeout=5)
    resp = requests.get(f"{origin}/metrics", timeout=5)  # from 127.0.0.1, the operator's network
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    assert 'breakwater_http_requests_total{endpoint="auth_api.me",method="GET",status="401"}' in resp.text


def test_request_id_is_echoed_and_generated(http, origin):
    resp = http.get(f"{origin}/api/auth/me", headers={"X-Request-ID": "test-req-123"}, timeout=5)
    # Nginx replaces the client's id with its own $request_id, which the app then echoes.
    assert len(resp.headers["X-Request-ID"]) == 32
    direct = http.get(f"{origin}/healthz", timeout=10)
    assert direct.headers["X-Request-ID"] != resp.headers["X-Request-ID"]


def test_unknown_api_path_is_json_404_and_html_path_is_a_page(http, origin):
    resp = http.get(f"{origin}/api/does-not-exist", timeout=5)
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "not_found"
    page = http.get(f"{origin}/does-not-exist", timeout=5)
    assert page.status_code == 404
    assert page.headers["Content-Type"].startswith("text/html")
    assert "<h1>404</h1>" in page.text
