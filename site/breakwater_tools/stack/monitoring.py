"""Prometheus and the distribution's exporters beside the stack (BREAKWATER_PROMETHEUS): one program each.

Prometheus listens on loopback (PROMETHEUS_PORT) and keeps its data in ``<state>/prometheus-server``; the
exporters listen on loopback from PROMETHEUS_EXPORTER_PORT up, one port each (:func:`exporters`). It scrapes
every gunicorn's /metrics (loopback callers are operators: health/access.py; it also carries the Celery
workers' series, written into the same PROMETHEUS_MULTIPROC_DIR: queues/metrics.py), one mysqld exporter per MariaDB
node (the monitor user), one redis exporter per Redis server, the varnish exporter on the edge's working
directory and RabbitMQ's own rabbitmq_prometheus endpoint per queue (RABBITMQ_PROMETHEUS_PORT).

In a cluster (BREAKWATER_CLUSTER_HOSTS) Prometheus and every exporter run on the machine itself, in the root
namespace, which reaches every host over the bridge (cluster.py); each server stays on its host. Prometheus listens
on the bridge's address (the gateway, :func:`listen_address`), where the operator's browser, `breakwater cluster
status` and the /ops/ dashboard of every app host reach it (an app host's 127.0.0.1 is its own); the exporters on
the machine's loopback. Every gunicorn is scraped at its host's address with the operator token
(``authorization`` with a ``credentials_file``: ``<state>/prometheus-server/ops-token``, 0600, the service user's;
the root namespace is the visitors' address, not the operator network); each mysqld and redis exporter dials its
server's host address (and the gate Redis's replica, with REDIS_SENTINEL); the origin's stub_status listens on the
data host's address and allows only the gateway (the exporter's source); RabbitMQ's endpoint listens on the data
host's address; the varnish exporter reads the edge's working directory (the namespaces share the file system).
Every target carries a ``host`` label: the host of the server it watches (``machine`` for Prometheus itself).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

import yaml

from breakwater_tools.stack.cluster import Host
from breakwater_tools.stack.layout import Layout
from breakwater_tools.stack.programs import which
from breakwater_tools.stack.users import hand_over

LOOPBACK = "127.0.0.1"
#: the ``host`` label of what runs on the machine itself in a cluster (Prometheus)
MACHINE = "machine"
RULES = Path(__file__).parent / "templates" / "alerts.yml"


@dataclass
class Exporter:
    name: str  # its supervisord program
    job: str  # its Prometheus job
    target: str  # what it watches (the instance label)
    port: int
    argv: list[str]
    environment: dict[str, str]
    host: Host | None = None  # in a cluster: the host of the server it watches (the exporter runs on the machine)


def enabled(layout: Layout) -> bool:
    return layout.settings.flag("PROMETHEUS")


def listen_address(layout: Layout) -> str:
    """Where Prometheus listens: loopback; in a cluster the machine's address on the bridge, which the app hosts'
    dashboards reach too."""
    return layout.cluster.gateway if layout.cluster.enabled else LOOPBACK


def url(layout: Layout) -> str:
    return f"http://{listen_address(layout)}:{layout.settings.int('PROMETHEUS_PORT')}"


def rabbitmq_address(layout: Layout) -> str:
    """Where RabbitMQ's rabbitmq_prometheus endpoint listens: loopback; in a cluster the data host's address."""
    return layout.cluster.data_host.address if layout.cluster.enabled else LOOPBACK


def token_file(layout: Layout) -> Path:
    """The operator token Prometheus sends to a gunicorn off loopback (a cluster's app hosts)."""
    return server_dir(layout) / "ops-token"


def _labels(layout: Layout, instance: str, host: Host | None) -> dict[str, str]:
    """A target's labels: its instance, and in a cluster the host it lives on."""
    if not layout.cluster.enabled:
        return {"instance": instance}
    return {"instance": instance, "host": host.name if host else MACHINE}


def _redis_servers(layout: Layout) -> list[tuple[str, str, int, Host | None]]:
    """(name, address, port, host) of each Redis server: the gate/broker, the cache, and with REDIS_SENTINEL the
    gate's replica."""
    s = layout.settings
    data = layout.cluster.data_host if layout.cluster.enabled else None
    servers = [
        ("redis", s["HOST"], s.int("REDIS_PORT"), data),
        ("redis-cache", s["HOST"], s.int("REDIS_CACHE_PORT"), data),
    ]
    if layout.sentinel_enabled:
        replica = layout.redis_replica_host
        address = replica.address if replica else s["HOST"]
        servers.append(("redis-replica", address, s.int("REDIS_REPLICA_PORT"), replica))
    return servers


def server_dir(layout: Layout) -> Path:
    return layout.state / "prometheus-server"


def exporters(layout: Layout) -> list[Exporter]:
    s = layout.settings
    port = s.int("PROMETHEUS_EXPORTER_PORT")
    out: list[Exporter] = []

    def listen() -> str:
        return f"{LOOPBACK}:{port + len(out)}"

    for node in layout.nodes:
        cnf = server_dir(layout) / f"{node.name}.my.cnf"
        out.append(
            Exporter(
                f"exporter-{node.name}", "mariadb", node.name, port + len(out),
                [which("prometheus-mysqld-exporter") or "prometheus-mysqld-exporter",
                 f"--config.my-cnf={cnf}", f"--web.listen-address={listen()}", "--collect.slave_status"],
                {}, node.host,
            )
        )  # fmt: skip
    for name, address, server_port, host in _redis_servers(layout):
        out.append(
            Exporter(
                f"exporter-{name}", "redis", name, port + len(out),
                [which("prometheus-redis-exporter") or "prometheus-redis-exporter",
                 f"-redis.addr=redis://{address}:{server_port}", f"-web.listen-address={listen()}"],
                {"REDIS_PASSWORD": s["REDIS_PASSWORD"]},  # never on the command line (`ps` shows it to everyone)
                host,
            )
        )  # fmt: skip
    cluster = layout.cluster
    out.append(
        Exporter(
            "exporter-nginx", "nginx", "nginx", port + len(out),
            [which("prometheus-nginx-exporter") or "prometheus-nginx-exporter",
             f"-nginx.scrape-uri=http://{nginx_status_listen(layout)}/stub_status", f"-web.listen-address={listen()}"],
            {}, cluster.data_host if cluster.enabled else None,
        )
    )  # fmt: skip
    out.append(
        Exporter(
            "exporter-edge", "varnish", "edge", port + len(out),
            [which("prometheus-varnish-exporter") or "prometheus-varnish-exporter",
             "-n", str(layout.edge_workdir), f"-web.listen-address={listen()}"],
            {}, cluster.edge_host if cluster.enabled else None,
        )
    )  # fmt: skip
    return out


def nginx_status_listen(layout: Layout) -> str:
    """Where the origin's stub_status listens (the port after the exporters'): loopback; in a cluster the data
    host's address (:func:`nginx_status_allow` is the only caller let in). Empty when off."""
    if not enabled(layout):
        return ""
    s = layout.settings
    count = len(layout.nodes) + len(_redis_servers(layout)) + 2  # the exporters: mysqld per node, redis, nginx, varnish
    address = layout.cluster.data_host.address if layout.cluster.enabled else LOOPBACK
    return f"{address}:{s.int('PROMETHEUS_EXPORTER_PORT') + count}"


def nginx_status_allow(layout: Layout) -> str:
    """The one address stub_status answers: the nginx exporter's (in a cluster the machine's, the gateway)."""
    return layout.cluster.gateway if layout.cluster.enabled else LOOPBACK


def scrape_config(layout: Layout) -> dict:
    """Prometheus's configuration: every gunicorn and every exporter, the alert rules."""
    s = layout.settings
    jobs: dict[str, list[dict]] = {
        "app": [
            {"targets": [f"{a.address or s['HOST']}:{a.port}"], "labels": _labels(layout, a.name, a.host)}
            for a in layout.apps
        ]
    }
    for e in exporters(layout):
        jobs.setdefault(e.job, []).append(
            {"targets": [f"{LOOPBACK}:{e.port}"], "labels": _labels(layout, e.target, e.host)}
        )
    # RabbitMQ's own endpoint, per queue (rabbitmq_prometheus: messages ready and unacked, consumers)
    rabbitmq = {
        "targets": [f"{rabbitmq_address(layout)}:{s.int('RABBITMQ_PROMETHEUS_PORT')}"],
        "labels": _labels(layout, "rabbitmq", layout.cluster.data_host if layout.cluster.enabled else None),
    }
    jobs["prometheus"] = [{"targets": [f"{listen_address(layout)}:{s.int('PROMETHEUS_PORT')}"]}]
    if layout.cluster.enabled:
        jobs["prometheus"][0]["labels"] = {"host": MACHINE}
    scrape = [{"job_name": job, "static_configs": targets} for job, targets in jobs.items()]
    if app_needs_token(layout):  # a gunicorn off loopback: only the operator token gets /metrics (health/access.py)
        scrape[0]["authorization"] = {"type": "Bearer", "credentials_file": str(token_file(layout))}
    scrape.append({"job_name": "rabbitmq", "metrics_path": "/metrics/per-object", "static_configs": [rabbitmq]})
    return {
        "global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
        "rule_files": [str(RULES)] if RULES.exists() else [],
        "scrape_configs": scrape,
    }


def app_needs_token(layout: Layout) -> bool:
    """Prometheus reaches some gunicorn off loopback (a cluster's app hosts), where the app wants the token."""
    import ipaddress

    def loopback(address: str) -> bool:
        try:
            return ipaddress.ip_address(address).is_loopback
        except ValueError:
            return address == "localhost"

    return not all(loopback(a.address or layout.settings["HOST"]) for a in layout.apps)


def render_monitoring(layout: Layout, write) -> None:
    """prometheus.yml and each mysqld exporter's client file (the monitor user's password, 0600, the service
    user's)."""
    if not enabled(layout):
        return
    s = layout.settings
    d = server_dir(layout)
    (d / "data").mkdir(parents=True, exist_ok=True)
    write(d / "prometheus.yml", yaml.safe_dump(scrape_config(layout), sort_keys=False))
    hand_over(d / "prometheus.yml", layout.run_as)
    if app_needs_token(layout):  # read by Prometheus (the service user) only; never on a command line
        write(token_file(layout), s["OPS_TOKEN"])
        hand_over(token_file(layout), layout.run_as)
    for node in layout.nodes:
        cnf = d / f"{node.name}.my.cnf"
        write(
            cnf,
            f"[client]\nuser={s['DB_MONITOR_USER']}\npassword={s['DB_MONITOR_PASSWORD']}\n"
            f"host={node.address or s['HOST']}\nport={node.port}\n",
        )
        hand_over(cnf, layout.run_as)


def monitoring_programs(layout: Layout, program_cls, env_line) -> list:
    """Prometheus and the exporters: started last (after the edge), as the service user."""
    if not enabled(layout):
        return []
    s = layout.settings
    d = server_dir(layout)
    progs = [
        program_cls(
            e.name, f"exporter ({e.job} {e.target})", shlex.join(e.argv), e.port, autostart=False, priority=600,
            environment=env_line({k: v.replace("%", "%%") for k, v in e.environment.items()}), address=LOOPBACK,
            directory=str(d),
        )
        for e in exporters(layout)
    ]  # fmt: skip
    prometheus = [
        which("prometheus") or "prometheus",
        f"--config.file={d / 'prometheus.yml'}",
        f"--storage.tsdb.path={d / 'data'}",
        f"--storage.tsdb.retention.time={s['PROMETHEUS_RETENTION']}",
        f"--web.listen-address={listen_address(layout)}:{s.int('PROMETHEUS_PORT')}",
        "--web.enable-lifecycle",
    ]
    progs.append(
        program_cls(
            "prometheus", "monitoring", shlex.join(prometheus), s.int("PROMETHEUS_PORT"), autostart=False,
            priority=610, address=listen_address(layout), directory=str(d),
        )
    )  # fmt: skip
    return progs


def ports(layout: Layout) -> list[tuple[str, int]]:
    """The ports the monitoring programs listen on, for the stack's preflight check."""
    if not enabled(layout):
        return []
    s = layout.settings
    return [
        ("PROMETHEUS_PORT", s.int("PROMETHEUS_PORT")),
        ("RABBITMQ_PROMETHEUS_PORT", s.int("RABBITMQ_PROMETHEUS_PORT")),
        ("PROMETHEUS_EXPORTER_PORT", int(nginx_status_listen(layout).rpartition(":")[2])),  # the origin's stub_status
    ] + [("PROMETHEUS_EXPORTER_PORT", e.port) for e in exporters(layout)]


def machine_ports(layout: Layout) -> list[tuple[str, int]]:
    """In a cluster, the exporters' ports on the machine's own loopback, which `make run`'s exporters may hold (the
    stack's preflight checks them; the hosts' namespaces are the stack's own, and Prometheus listens on the bridge's
    address, the stack's own too)."""
    if not enabled(layout):
        return []
    return [("PROMETHEUS_EXPORTER_PORT", e.port) for e in exporters(layout)]


def targets(layout: Layout, timeout: float = 3.0) -> list[dict]:
    """Prometheus's scrape targets with their health, from its /api/v1/targets (`make status` lists them);
    raises OSError when Prometheus does not answer."""
    import json
    import urllib.request

    with urllib.request.urlopen(f"{url(layout)}/api/v1/targets?state=active", timeout=timeout) as resp:
        active = json.load(resp)["data"]["activeTargets"]
    rows = [
        {
            "job": t["labels"].get("job", ""),
            "instance": t["labels"].get("instance", ""),
            "host": t["labels"].get("host", ""),
            "health": t.get("health", "unknown"),
            "error": t.get("lastError", ""),
        }
        for t in active
    ]
    return sorted(rows, key=lambda r: (r["job"], r["host"], r["instance"]))
