"""The stack over four hosts (network namespaces joined by a bridge): every service listens on its own host's
address and nothing crosses hosts over 127.0.0.1; a publish on the origin's host is rebuilt there, purged at the
edge's host by workers on the app hosts; an app host dying under Locust load fails no read, and what it was
writing answers one clear error or succeeds; a worker host dying mid-task hands the task to another host, which
finishes it once; a welcome mail crosses from an app host's notify worker to the SMTP sink on the data host."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
from sqlalchemy import bindparam, text

from fault_recorder import FaultRecorder
from routing_helpers import wait_for

LOADTESTS = Path(__file__).resolve().parents[2] / "loadtests"
DRAFT = {"title": "Cluster draft", "summary": "A summary", "category": "tech", "body": "Saved under load."}
#: dynamic reads: the app answers them, never a static file
READS = ("/api/home", "/api/regions", "/api/articles?page=1")


def listening(netns: str) -> set[tuple[str, int, str]]:
    """(address, port, program) of every listening TCP socket in a host's namespace."""
    out = subprocess.run(["ip", "netns", "exec", netns, "ss", "-ltnpH"], capture_output=True, text=True).stdout
    found = set()
    for line in out.splitlines():
        fields = line.split()
        address, _, port = fields[3].rpartition(":")
        program = fields[5].split('"')[1] if len(fields) > 5 and '"' in fields[5] else "?"
        found.add((address.strip("[]"), int(port), program))
    return found


#: programs that keep a management port on their host's own loopback: Erlang's port mapper and RabbitMQ's
#: distribution port (rabbitmqctl), Varnish's CLI (varnishadm)
LOOPBACK_ONLY = {"epmd", "beam.smp", "varnishd"}


def test_every_service_listens_on_its_own_hosts_address(stack, cluster):
    s = stack.settings
    data, apps, edge = cluster.data_host, cluster.app_hosts, cluster.edge_host
    expected = {
        data: {s.int("PRIMARY_PORT"), s.int("REDIS_PORT"), s.int("REDIS_CACHE_PORT"), s.int("RABBITMQ_PORT"),
               s.int("ORIGIN_PORT"), s.int("SMTP_PORT")},
        edge: {s.int("EDGE_PORT")},
    }  # fmt: skip
    for i, host in enumerate(apps, start=1):
        expected[host] = {s.int("APP_PORT"), s.replica_ports[i - 1]}
    for host, ports in expected.items():
        sockets = listening(host.netns)
        assert {(host.address, p) for p in ports} <= {(a, p) for a, p, _prog in sockets}, (host.name, sockets)
        elsewhere = {(a, p, prog) for a, p, prog in sockets if a != host.address}
        # Nothing listens on every address; only management ports stay on the host's own loopback.
        assert all(a in ("127.0.0.1", "::1") and prog in LOOPBACK_ONLY for a, _p, prog in elsewhere), elsewhere
    rows = stack.status()
    assert all(r["healthy"] for r in rows), [r for r in rows if not r["healthy"]]
    assert {r["host"] for r in rows} - {""} == {h.name for h in cluster.hosts}
    # on the machine itself: Prometheus and its exporters only (test_cluster_prometheus.py)
    assert all(r["name"] == "prometheus" or r["name"].startswith("exporter-") for r in rows if not r["host"]), rows


def test_a_publish_is_rebuilt_at_the_origin_and_purged_at_the_edge_across_hosts(editor_api, edge, origin, slug):
    home = requests.get(edge + "/", timeout=10)
    assert home.status_code == 200
    requests.get(edge + "/", timeout=10)  # now cached at the edge
    title = f"Cluster {slug}"
    resp = editor_api("POST", "/articles", json={**DRAFT, "title": title, "slug": slug, "publish": True})
    assert resp.status_code == 201, resp.text
    # The pages worker on the data host rebuilds /, purge workers on the app hosts purge the edge host.
    wait_for(lambda: title in requests.get(edge + "/", timeout=10).text, timeout=30, what="the new article at the edge")
    assert title in requests.get(f"{origin}/articles/{slug}", timeout=10).text


def test_the_origin_sees_the_visitors_address_through_the_edge_and_believes_no_one_else(stack, cluster, edge, origin):
    tag = uuid.uuid4().hex[:10]
    forged = {"X-Forwarded-For": "203.0.113.9"}
    assert requests.get(f"{edge}/api/regions?via=edge-{tag}", headers=forged, timeout=10).status_code == 200
    assert requests.get(f"{origin}/api/regions?via=direct-{tag}", headers=forged, timeout=10).status_code == 200
    log = stack.layout.logs / "nginx-access.log"

    def clients() -> dict[str, str]:
        lines = [line for line in log.read_text().splitlines() if tag in line]
        return {line.split("via=")[1].split("-")[0]: line.split()[0] for line in lines}

    wait_for(lambda: len(clients()) == 2, timeout=10, what="both requests in the origin's access log")
    # This machine is the visitor (the bridge's address); the edge is a trusted proxy, the forged header is not.
    assert clients() == {"edge": cluster.gateway, "direct": cluster.gateway}


@pytest.fixture()
def restore(stack, cluster):
    """Brings every host back after a test that crashed one."""
    yield
    for host in cluster.hosts:
        cluster.connect(host)
        stack.start_host(host)
    stack.wait_healthy(timeout=120)


def locust(stack, host: str, seconds: int, out: Path) -> subprocess.Popen:
    cmd = [
        sys.executable, "-m", "locust", "-f", "scenarios/visitor.py", "--headless", "-u", "6", "-r", "6",
        "-t", f"{seconds}s", "--stop-timeout", "20", "--host", host, "--json-file", str(out),
        "--only-summary", "--visitor-wait", "0.1",
    ]  # fmt: skip
    log = out.with_suffix(".log").open("w")
    return subprocess.Popen(cmd, cwd=LOADTESTS, env=stack.settings.child_env(), stdout=log, stderr=subprocess.STDOUT)


def test_an_app_host_dying_under_load_fails_no_read_and_no_write_answers_twice(
    app, stack, cluster, origin, editor_token, restore, tmp_path
):
    from breakwater.extensions import db

    victim = cluster.app_hosts[-1]
    stop = threading.Event()
    writes: list[tuple[str, list[tuple[int, str]]]] = []

    def write() -> None:  # drafts saved one after another; an unclear answer is sent again as it was
        with requests.Session() as http:
            http.headers["Authorization"] = f"Bearer {editor_token}"
            while not stop.is_set():
                slug, answers = "cl-" + uuid.uuid4().hex[:10], []
                for _attempt in range(10):
                    try:
                        resp = http.post(f"{origin}/api/editor/articles", json={**DRAFT, "slug": slug}, timeout=30)
                        code = resp.json()["error"]["code"] if resp.status_code >= 400 else ""
                        answers.append((resp.status_code, code))
                    except requests.RequestException:
                        answers.append((0, "no answer"))
                    if answers[-1][0] < 500 and answers[-1][0] != 0:
                        break
                    time.sleep(0.2)
                writes.append((slug, answers))
                # An editor's pace, under the origin's write limit for one address (20/s, burst 40): saving
                # back to back, a fast run met Nginx's 429 before the host was even killed.
                stop.wait(0.1)

    run = locust(stack, origin, 20, tmp_path / "visitor")
    reads = FaultRecorder(origin, READS, readers=3, pause=0).start()
    threads = [threading.Thread(target=write)]
    for t in threads:
        t.start()
    try:
        time.sleep(6)
        reads.mark("fault")
        killed = cluster.crash(victim, stack.supervisor.pid)
        reads.mark("recovered")  # the host is gone: the site answers from the other app host
        assert killed
        time.sleep(8)
    finally:
        stop.set()
        reads.stop()
        for t in threads:
            t.join(timeout=60)
    reads.assert_all_served(max_seconds=3)
    assert run.wait(timeout=120) == 0, (tmp_path / "visitor.log").read_text()[-3000:]
    stats = json.loads((tmp_path / "visitor.json").read_text())
    assert sum(e["num_requests"] for e in stats) > 50
    assert [(e["name"], e["num_failures"]) for e in stats if e["num_failures"]] == []
    # Each save ends stored once. It answered 201, or first an error that says the outcome is unknown, then
    # (sent again as it was) 201 if it had not been applied, or 409 slug_taken if it had.
    assert writes
    unclear = {(502, "upstream_failed"), (503, "primary_unavailable"), (503, "database_unavailable")}
    for _slug, answers in writes:
        *before, last = answers
        assert set(before) <= unclear and last in ({(201, "")} | ({(409, "slug_taken")} if before else set())), answers
    with app.app_context(), db.primary():
        rows = db.session.execute(
            text("SELECT slug, COUNT(*) FROM articles WHERE slug IN :slugs GROUP BY slug").bindparams(
                bindparam("slugs", expanding=True)
            ),
            {"slugs": [slug for slug, _a in writes]},
        ).all()
    assert dict(rows) == {slug: 1 for slug, _a in writes}


def test_a_worker_host_dying_mid_task_hands_it_to_another_host_which_finishes_it_once(app, stack, cluster, restore):
    redis = app.extensions["breakwater.redis"]
    celery = app.extensions["celery"]
    key = uuid.uuid4().hex
    prefix = f"bw:probe:{key}:"
    celery.send_task("breakwater.health.probe", kwargs={"key": key, "seconds": 4.0}, queue="default")
    wait_for(lambda: redis.llen(prefix + "starts"), timeout=30, interval=0.05, what="the task to start")
    first = json.loads(redis.lindex(prefix + "starts", 0))
    host = next(h for h in cluster.app_hosts if first["pid"] in cluster.pids(h))
    cluster.crash(host, stack.supervisor.pid)
    wait_for(lambda: redis.get(prefix + "done"), timeout=60, interval=0.1, what="the task on another host")
    starts = [json.loads(s) for s in redis.lrange(prefix + "starts", 0, -1)]
    assert len(starts) == 2, starts  # delivered again, once
    survivor = next(h for h in cluster.app_hosts if h != host)
    assert starts[1]["pid"] in cluster.pids(survivor)
    time.sleep(1)
    assert int(redis.get(prefix + "completions")) == 1


def test_a_welcome_mail_crosses_from_an_app_hosts_notify_worker_to_the_sink_on_the_data_host(stack, cluster, origin):
    notify_hosts = {h for _name, queue, h in stack.layout.workers() if queue == "notify"}
    assert notify_hosts == set(cluster.app_hosts)  # none on the data host: the mail has to cross
    name = "m" + uuid.uuid4().hex[:10]
    address = f"{name}@example.org"
    resp = requests.post(
        f"{origin}/api/auth/register", json={"name": name, "password": "long enough", "email": address}, timeout=15
    )
    assert resp.status_code == 201, resp.text

    def mailed() -> list:
        out = subprocess.run(
            [str(Path(sys.executable).parent / "breakwater"), "mail", "list", "--json", "--to", address],
            env=stack.settings.child_env(), capture_output=True, text=True, timeout=60,
        ).stdout  # fmt: skip
        return json.loads(out or "[]")

    messages = wait_for(mailed, timeout=30, interval=0.5, what="the welcome mail at the sink")
    assert len(messages) == 1 and messages[0]["subject"] == "Welcome to Breakwater"
