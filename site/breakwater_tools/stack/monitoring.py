"""Prometheus and the distribution's exporters beside the stack (BREAKWATER_PROMETHEUS): one program each.

Prometheus listens on loopback (PROMETHEUS_PORT) and keeps its data in ``<state>/prometheus-server``; the
exporters listen on loopback from PROMETHEUS_EXPORTER_PORT up, one port each (:func:`exporters`). It scrapes
every gunicorn's /metrics (loopback callers are operators: health/access.py; it also carries the Celery
workers' series, written into the same PROMETHEUS_MULTIPROC_DIR: queues/metrics.py), one mysqld exporter per MariaDB
node (the monitor user), one redis exporter per Redis server, the varnish exporter on the edge's working
directory and RabbitMQ's own rabbitmq_prometheus endpoint per queue (RABBITMQ_PROMETHEUS_PORT). A cluster
(BREAKWATER_CLUSTER) runs none of them yet.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

import yaml

from breakwater_tools.stack.layout import Layout
from breakwater_tools.stack.programs import which
from breakwater_tools.stack.users import hand_over

LOOPBACK = "127.0.0.1"
RULES = Path(__file__).parent / "templates" / "alerts.yml"


@dataclass
class Exporter:
    name: str  # its supervisord program
    job: str  # its Prometheus job
    target: str  # what it watches (the instance label)
    port: int
    argv: list[str]
    environment: dict[str, str]


def enabled(layout: Layout) -> bool:
    return layout.settings.flag("PROMETHEUS") and not layout.cluster.enabled


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
                {},
            )
        )  # fmt: skip
    for name, key in (("redis", "REDIS_PORT"), ("redis-cache", "REDIS_CACHE_PORT")):
        out.append(
            Exporter(
                f"exporter-{name}", "redis", name, port + len(out),
                [which("prometheus-redis-exporter") or "prometheus-redis-exporter",
                 f"-redis.addr=redis://{s['HOST']}:{s.int(key)}", f"-web.listen-address={listen()}"],
                {"REDIS_PASSWORD": s["REDIS_PASSWORD"]},  # never on the command line (`ps` shows it to everyone)
            )
        )  # fmt: skip
    out.append(
        Exporter(
            "exporter-nginx", "nginx", "nginx", port + len(out),
            [which("prometheus-nginx-exporter") or "prometheus-nginx-exporter",
             f"-nginx.scrape-uri=http://{nginx_status_listen(layout)}/stub_status", f"-web.listen-address={listen()}"],
            {},
        )
    )  # fmt: skip
    out.append(
        Exporter(
            "exporter-edge", "varnish", "edge", port + len(out),
            [which("prometheus-varnish-exporter") or "prometheus-varnish-exporter",
             "-n", str(layout.edge_workdir), f"-web.listen-address={listen()}"],
            {},
        )
    )  # fmt: skip
    return out


def nginx_status_listen(layout: Layout) -> str:
    """Where the origin's stub_status listens (loopback, the port after the exporters'); empty when off."""
    if not enabled(layout):
        return ""
    s = layout.settings
    return f"{LOOPBACK}:{s.int('PROMETHEUS_EXPORTER_PORT') + len(layout.nodes) + 4}"


def scrape_config(layout: Layout) -> dict:
    """Prometheus's configuration: every gunicorn and every exporter, the alert rules."""
    s = layout.settings
    jobs: dict[str, list[dict]] = {
        "app": [
            {"targets": [f"{a.address or s['HOST']}:{a.port}"], "labels": {"instance": a.name}} for a in layout.apps
        ]
    }
    for e in exporters(layout):
        jobs.setdefault(e.job, []).append({"targets": [f"{LOOPBACK}:{e.port}"], "labels": {"instance": e.target}})
    # RabbitMQ's own endpoint, per queue (rabbitmq_prometheus: messages ready and unacked, consumers)
    rabbitmq = {"targets": [f"{LOOPBACK}:{s.int('RABBITMQ_PROMETHEUS_PORT')}"], "labels": {"instance": "rabbitmq"}}
    jobs["prometheus"] = [{"targets": [f"{LOOPBACK}:{s.int('PROMETHEUS_PORT')}"]}]
    return {
        "global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
        "rule_files": [str(RULES)] if RULES.exists() else [],
        "scrape_configs": [{"job_name": job, "static_configs": targets} for job, targets in jobs.items()]
        + [{"job_name": "rabbitmq", "metrics_path": "/metrics/per-object", "static_configs": [rabbitmq]}],
    }


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
        f"--web.listen-address={LOOPBACK}:{s.int('PROMETHEUS_PORT')}",
        "--web.enable-lifecycle",
    ]
    progs.append(
        program_cls(
            "prometheus", "monitoring", shlex.join(prometheus), s.int("PROMETHEUS_PORT"), autostart=False,
            priority=610, address=LOOPBACK, directory=str(d),
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


def targets(layout: Layout, timeout: float = 3.0) -> list[dict]:
    """Prometheus's scrape targets with their health, from its /api/v1/targets (`make status` lists them);
    raises OSError when Prometheus does not answer."""
    import json
    import urllib.request

    url = f"http://{LOOPBACK}:{layout.settings.int('PROMETHEUS_PORT')}/api/v1/targets?state=active"
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        active = json.load(resp)["data"]["activeTargets"]
    rows = [
        {
            "job": t["labels"].get("job", ""),
            "instance": t["labels"].get("instance", ""),
            "health": t.get("health", "unknown"),
            "error": t.get("lastError", ""),
        }
        for t in active
    ]
    return sorted(rows, key=lambda r: (r["job"], r["instance"]))
