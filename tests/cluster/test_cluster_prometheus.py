"""Issue 23, point 1 on the cluster: Prometheus on this machine (the root namespace, on the bridge's address)
scrapes every host. Every target is up within a minute and carries the host of the server it watches: each app
host's gunicorn (with the operator token: this machine is not on the origin's operator network), one mysqld exporter
per MariaDB node, one redis exporter per Redis server (the gate's replica too), the origin's stub_status, the edge and
RabbitMQ; the exporters really reach their servers across the hosts; `breakwater cluster status` lists the targets;
the /ops/ dashboard on an app host reads this Prometheus."""

from __future__ import annotations

import os
import subprocess
import time

import requests

from breakwater_tools.stack import monitoring
from breakwater_tools.stack.files import venv_bin


def _query(st, expr: str) -> list[dict]:
    response = requests.get(f"{monitoring.url(st.layout)}/api/v1/query", params={"query": expr}, timeout=5)
    return response.json()["data"]["result"]


def _targets(st) -> list[dict]:
    return requests.get(f"{monitoring.url(st.layout)}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]


def _until(predicate, timeout: float):
    """``predicate()``'s last value, once it is truthy or ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(1)


def test_every_target_on_every_host_is_up_within_a_minute_labelled_with_its_host(stack, cluster):
    layout = stack.layout
    data, edge = cluster.data_host.name, cluster.edge_host.name
    expected = {("app", a.name): a.host.name for a in layout.apps}
    expected |= {("mariadb", n.name): n.host.name for n in layout.nodes}
    expected |= {("redis", "redis"): data, ("redis", "redis-cache"): data}
    expected[("redis", "redis-replica")] = layout.redis_replica_host.name
    expected |= {("nginx", "nginx"): data, ("varnish", "edge"): edge, ("rabbitmq", "rabbitmq"): data}
    assert {h for (job, _i), h in expected.items() if job == "app"} == {h.name for h in cluster.app_hosts}

    def all_up() -> bool:
        return all(t["health"] == "up" for t in _targets(stack))

    _until(all_up, 60)
    targets = _targets(stack)
    down = [(t["labels"], t.get("lastError")) for t in targets if t["health"] != "up"]
    assert not down, f"targets not up after a minute: {down}"
    found = {(t["labels"]["job"], t["labels"].get("instance")): t["labels"].get("host") for t in targets}
    assert {k: found.get(k) for k in expected} == expected
    prometheus = [t for t in targets if t["labels"]["job"] == "prometheus"]
    assert [t["labels"].get("host") for t in prometheus] == [monitoring.MACHINE]
    # the gunicorns are scraped at their hosts' addresses, the servers' exporters on this machine's loopback
    urls = {(t["labels"]["job"], t["labels"].get("instance")): t["scrapeUrl"] for t in targets}
    for a in layout.apps:
        assert urls[("app", a.name)].startswith(f"http://{a.host.address}:{a.port}/"), urls

    # what each target says once scraped: `up` for every one, and the exporters reach their servers on their hosts
    for expr, job, count in [
        ('up{job="app"}', "app", len(cluster.app_hosts)),
        ("mysql_up", "mariadb", len(layout.nodes)),
        ("redis_up", "redis", 3),
        ("nginx_up", "nginx", 1),
        ("varnish_up", "varnish", 1),
    ]:

        def answered(expr=expr, count=count) -> list[dict]:
            result = _query(stack, expr)
            return result if len(result) == count and all(r["value"][1] == "1" for r in result) else []

        result = _until(answered, 30) or _query(stack, expr)
        assert len(result) == count and all(r["value"][1] == "1" for r in result), (expr, result)
        assert {(r["metric"]["instance"], r["metric"]["host"]) for r in result} == {
            (i, h) for (j, i), h in expected.items() if j == job
        }, (expr, result)
    # per queue, from RabbitMQ on the data host
    queues = len({q for _w, q, _h in layout.workers()})
    expr = 'count by (queue) (rabbitmq_queue_messages_ready{queue!~"celery.*|.*pidbox.*"})'
    ready = _until(lambda: len(_query(stack, expr)) >= queues, 30)
    assert ready, _query(stack, expr)


def test_cluster_status_lists_prometheus_on_this_machine_and_each_target_with_its_host(stack, cluster):
    env = {**os.environ, **stack.env}

    def status() -> subprocess.CompletedProcess:
        command = [venv_bin("breakwater"), "cluster", "status"]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)

    # exit 0 once every service is healthy (a server an earlier test brought back may still be starting)
    result, deadline = status(), time.monotonic() + 30
    while result.returncode != 0 and time.monotonic() < deadline:
        time.sleep(1)
        result = status()
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert f"machine {cluster.gateway}" in out, out
    assert f"prometheus targets ({monitoring.url(stack.layout)}/targets)" in out, out
    for a in stack.layout.apps:
        assert any(line.split()[:3] == ["app", a.host.name, a.name] for line in out.splitlines()), out


def test_the_dashboard_on_an_app_host_reads_prometheus_on_this_machine(stack, origin):
    """The app's /ops/ API asks Prometheus from an app host's namespace (OPS_PROMETHEUS_URL: the bridge's address)."""
    headers = {"Authorization": f"Bearer {stack.settings['OPS_TOKEN']}"}
    response = requests.get(f"{origin}/ops/api/alerts", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
