"""Where each piece of stack state lives under the state directory."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from breakwater.settings import Settings
from breakwater_tools.stack.cluster import DATA_HOST_QUEUES, Cluster, Host
from breakwater_tools.stack.users import RunAs, run_as


@dataclass(frozen=True)
class AppInstance:
    """One gunicorn: program ``app`` on APP_PORT, ``app2`` on APP_PORT+1, ... (in a cluster: one per app
    host, each on APP_PORT at its host's address)."""

    name: str
    port: int
    pid_file: Path
    address: str
    host: Host | None = None


@dataclass(frozen=True)
class Node:
    """One MariaDB server of the stack."""

    name: str
    role: str  # "primary" or "replica"
    port: int
    server_id: int
    dir: Path
    address: str
    host: Host | None = None

    @property
    def socket(self) -> Path:
        return short_socket(self.dir / "mariadb.sock")

    @property
    def datadir(self) -> Path:
        return self.dir / "data"

    @property
    def cnf(self) -> Path:
        return self.dir / "my.cnf"


def short_socket(path: Path) -> Path:
    """``path``, unless it is too long for a unix socket (about 107 bytes, deep test folders reach it):
    then a short name in the system's temporary folder, derived from the full path so it stays the same."""
    if len(str(path)) <= 100:
        return path
    import hashlib
    import tempfile

    return Path(tempfile.gettempdir()) / f"bw-{hashlib.sha256(str(path).encode()).hexdigest()[:16]}.sock"


class Layout:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.state = settings.state_dir
        self.logs = self.state / "logs"
        self.supervisor = self.state / "supervisor"
        self.redis = self.state / "redis"
        self.redis_cache = self.state / "redis-cache"
        self.redis_replica = self.state / "redis-replica"  # REDIS_SENTINEL=1
        self.nginx = self.state / "nginx"
        self.edge = self.state / "edge"
        self.prometheus = self.state / "prometheus"
        self.mariadb = self.state / "mariadb"
        self.rabbitmq = self.state / "rabbitmq"
        self.celery = self.state / "celery"  # worker and beat pid files, beat's schedule
        self.mail = self.state / "mail"  # what the SMTP sink received
        self.cluster = Cluster(settings)
        #: who the services run as (the service user when started as root; a test may render for another)
        self.run_as: RunAs = run_as()

    @property
    def nodes(self) -> list[Node]:
        """The MariaDB nodes, the current primary first (the configured one, unless ``breakwater db
        promote`` recorded another in the topology file)."""
        s = self.settings
        primary = self.topology().get("primary", "mariadb-primary")
        c = self.cluster
        first = c.data_host if c.enabled else None
        nodes = [Node("mariadb-primary", "", s.int("PRIMARY_PORT"), 1, self.mariadb / "primary", *self._at(first))]
        for i, port in enumerate(s.replica_ports, start=1):
            host = c.replica_host(i) if c.enabled else None
            nodes.append(Node(f"mariadb-replica{i}", "", port, 1 + i, self.mariadb / f"replica{i}", *self._at(host)))
        if primary not in {n.name for n in nodes}:
            primary = "mariadb-primary"
        nodes = [replace(n, role="primary" if n.name == primary else "replica") for n in nodes]
        return sorted(nodes, key=lambda n: n.role != "primary")

    def _at(self, host: Host | None) -> tuple[str, Host | None]:
        """(address, host) of a service on ``host``, or on HOST when the stack is on one machine."""
        return (host.address if host else self.settings["HOST"]), host

    @property
    def topology_file(self) -> Path:
        return self.mariadb / "topology.json"

    def topology(self) -> dict:
        """``{"primary": node name, "fenced": [...], "epoch": n}`` once a promotion happened, else ``{}``."""
        try:
            return json.loads(self.topology_file.read_text())
        except (OSError, ValueError):
            return {}

    @property
    def apps(self) -> list[AppInstance]:
        s = self.settings
        count = s.int("WEB_INSTANCES")
        if count < 1:
            raise ValueError(f"BREAKWATER_WEB_INSTANCES={count} must be at least 1.")
        if self.cluster.enabled:  # WEB_INSTANCES per app host would only crowd two cores further
            return [
                AppInstance("app" if i == 1 else f"app{i}", s.int("APP_PORT"), self._gunicorn_pid(i), *self._at(host))
                for i, host in enumerate(self.cluster.app_hosts, start=1)
            ]
        first = AppInstance("app", s.int("APP_PORT"), self._gunicorn_pid(1), s["HOST"])
        return [first] + [
            AppInstance(f"app{i}", first.port + i - 1, self._gunicorn_pid(i), s["HOST"]) for i in range(2, count + 1)
        ]

    def _gunicorn_pid(self, i: int) -> Path:
        """In the instance's own folder, which the service user writes (the state folder is root's)."""
        name = "app" if i == 1 else f"app{i}"
        return self.state / "run" / name / ("gunicorn.pid" if i == 1 else f"gunicorn-{name}.pid")

    def workers(self) -> list[tuple[str, str, Host | None]]:
        """(program name, queue, host) of every Celery worker: one per queue on one machine; in a cluster the
        ``pages`` worker on the data host and every other queue's on each app host."""
        from breakwater.queues.routing import QUEUES

        c = self.cluster
        if not c.enabled:
            return [(f"worker-{q}", q, None) for q in QUEUES]
        placed = []
        for q in QUEUES:
            hosts = [c.data_host] if q in DATA_HOST_QUEUES else c.app_hosts
            for i, host in enumerate(hosts):
                placed.append((f"worker-{q}" if i == 0 else f"worker-{q}-{host.name}", q, host))
        return placed

    def purging_hosts(self) -> list[Host]:
        """The cluster hosts that send PURGE to the edge: those running a ``purge`` worker (every app host); the
        edge's purge ACL names them and nobody else (not the bridge network, whose gateway is the visitors')."""
        hosts: list[Host] = []
        for _program, queue, host in self.workers():
            if queue == "purge" and host is not None and host not in hosts:
                hosts.append(host)
        return hosts

    @property
    def primary(self) -> Node:
        return self.nodes[0]

    @property
    def replicas(self) -> list[Node]:
        return self.nodes[1:]

    @property
    def supervisor_conf(self) -> Path:
        return self.supervisor / "supervisord.conf"

    @property
    def supervisor_sock(self) -> Path:
        """In the state dir, unless that path is too long for a unix socket (about 107 bytes): then a
        short name in the system's temporary folder, derived from the state dir so it stays the same."""
        return short_socket(self.supervisor / "supervisord.sock")

    @property
    def supervisor_pid(self) -> Path:
        return self.supervisor / "supervisord.pid"

    @property
    def edge_vcl(self) -> Path:
        return self.edge / "edge.vcl"

    @property
    def edge_workdir(self) -> Path:
        """varnishd's -n directory (shared memory log, compiled VCL)."""
        return self.edge / "varnishd"

    def worker_pidfile(self, worker: str) -> Path:
        """The pid file of a worker program (``worker-orders-h3``), or of a queue's first worker (``orders``)."""
        return self.celery / f"{worker if worker.startswith('worker-') else 'worker-' + worker}.pid"

    @property
    def rabbitmq_pidfile(self) -> Path:
        return self.rabbitmq / "rabbitmq.pid"

    @property
    def rabbitmq_nodename(self) -> str:
        """Its own Erlang node name, so it never meets a RabbitMQ already running on the machine."""
        return f"breakwater-{self.settings.int('RABBITMQ_PORT')}@localhost"

    @property
    def bootstrapped_marker(self) -> Path:
        return self.mariadb / "replication-configured"

    @property
    def sentinel_enabled(self) -> bool:
        return self.settings.flag("REDIS_SENTINEL")

    def sentinels(self) -> list[tuple[str, int, Path, Host | None]]:
        """(name, port, dir, host) of the three Sentinels (in a cluster: on the first three hosts)."""
        if not self.sentinel_enabled:
            return []
        hosts = self.cluster.hosts[:3] if self.cluster.enabled else [None] * 3
        return [
            (f"sentinel{i}", port, self.state / f"sentinel{i}", host)
            for i, (port, host) in enumerate(zip(self.settings.sentinel_ports, hosts, strict=True), start=1)
        ]

    @property
    def redis_replica_host(self) -> Host | None:
        """The gate/broker Redis replica's host: the first app host in a cluster."""
        return self.cluster.app_hosts[0] if self.cluster.enabled else None

    def dirs(self) -> list[Path]:
        return [
            self.logs,
            self.supervisor,
            self.redis,
            self.redis_cache,
            *([self.redis_replica] if self.sentinel_enabled else []),
            *(d for _n, _p, d, _h in self.sentinels()),
            self.nginx,
            self.edge,
            self.prometheus,
            self.rabbitmq,
            self.celery,
            self.mail,
            *(n.dir for n in self.nodes),
            *(n.dir / "tmp" for n in self.nodes),
        ]
