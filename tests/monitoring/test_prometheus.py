"""Prometheus in the stack (BREAKWATER_PROMETHEUS): every target up within a minute, and `breakwater stack
status` showing the targets' health."""

from __future__ import annotations

import time

import requests

from breakwater_tools.stack.lifecycle import Stack


def _targets(st: Stack) -> list[dict]:
    url = f"http://127.0.0.1:{st.settings.int('PROMETHEUS_PORT')}/api/v1/targets"
    return requests.get(url, timeout=5).json()["data"]["activeTargets"]


def test_prometheus_scrapes_every_tier_and_every_target_is_up_within_a_minute(monitored):
    deadline = time.monotonic() + 60
    while True:
        targets = _targets(monitored)
        down = [
            (t["labels"]["job"], t["labels"].get("instance"), t.get("lastError"))
            for t in targets
            if t["health"] != "up"
        ]
        if not down or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert not down, f"targets not up after a minute: {down}"
    jobs = {t["labels"]["job"] for t in targets}
    assert {"app", "mariadb", "redis", "nginx", "varnish", "rabbitmq", "prometheus"} <= jobs
    instances = {t["labels"]["instance"] for t in targets if t["labels"]["job"] == "mariadb"}
    assert instances == {n.name for n in monitored.layout.nodes}
    # the exporters really reach their servers (an exporter answers /metrics even when its server is gone)
    query = f"http://127.0.0.1:{monitored.settings.int('PROMETHEUS_PORT')}/api/v1/query"
    queues = len({q for _w, q, _h in monitored.layout.workers()})
    checks = [
        ("mysql_up == 1", len(monitored.layout.nodes)),
        ("redis_up == 1", 2),
        ("varnish_up == 1", 1),
        ("nginx_up == 1", 1),
    ]
    checks += [('count by (queue) (rabbitmq_queue_messages_ready{queue!~"celery.*|.*pidbox.*"})', queues)]
    for expr, count in checks:
        deadline = time.monotonic() + 30
        while True:
            result = requests.get(query, params={"query": expr}, timeout=5).json()["data"]["result"]
            if len(result) >= count or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert len(result) >= count, (expr, result)


def test_status_lists_prometheus_and_its_targets(monitored):
    from breakwater_tools.stack import monitoring

    rows = monitored.status()
    assert any(r["name"] == "prometheus" and r["healthy"] for r in rows), rows
    targets = monitoring.targets(monitored.layout)
    assert {t["job"] for t in targets} >= {"app", "mariadb", "redis", "varnish"}
    assert all(t["health"] in ("up", "down", "unknown") for t in targets)


def _firing(st: Stack, alert: str) -> list[dict]:
    url = f"http://127.0.0.1:{st.settings.int('PROMETHEUS_PORT')}/api/v1/alerts"
    alerts = requests.get(url, timeout=5).json()["data"]["alerts"]
    return [a for a in alerts if a["labels"]["alertname"] == alert and a["state"] == "firing"]


def _wait(predicate, timeout: float) -> float:
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, f"not within {timeout:.0f} s"
        time.sleep(1)
    return time.monotonic() - started


def test_a_killed_replica_fires_the_node_down_alert_within_a_minute_and_it_clears_once_back(monitored):
    replica = monitored.layout.replicas[0].name
    assert not _firing(monitored, "MariaDBNodeDown")
    monitored.supervisor.take_down(replica)
    try:
        fired = _wait(
            lambda: any(a["labels"]["instance"] == replica for a in _firing(monitored, "MariaDBNodeDown")), 60
        )
    finally:
        monitored.supervisor.bring_back(replica)
    assert fired < 60
    _wait(lambda: not _firing(monitored, "MariaDBNodeDown"), 60)


def test_the_start_banner_names_the_dashboard_and_prometheus(monitored, capsys):
    """What `make run` and `make up` print once the stack is up (breakwater_tools.cli.stack.banner)."""
    from breakwater_tools.cli.stack import banner

    banner(monitored)
    out = capsys.readouterr().out
    s = monitored.settings
    assert f"ops:     {s.origin_url}/ops/" in out, out
    assert f"http://127.0.0.1:{s.int('PROMETHEUS_PORT')}/" in out, out
