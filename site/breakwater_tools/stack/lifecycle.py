"""Bring the whole stack up, report on it and take it down again.

The order matters: databases and Redis first, then users and replication, then migrations
and seed data on the primary, and only then the app, the worker, Nginx and the Varnish edge. Any failure on
the way shuts supervisord down again, so a failed start leaves no processes behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from breakwater.settings import Settings, env_name
from breakwater_tools.stack import mariadb, permissions, users
from breakwater_tools.stack.errors import StackError
from breakwater_tools.stack.files import venv_bin, write_private
from breakwater_tools.stack.layout import Layout
from breakwater_tools.stack.ports import accepts, port_in_use
from breakwater_tools.stack.programs import ensure_programs
from breakwater_tools.stack.render import render_all
from breakwater_tools.stack.secrets import ensure_secrets
from breakwater_tools.stack.supervised import programs
from breakwater_tools.stack.supervisor import Supervisor, read_pid

#: started once the data is in place, after every gunicorn instance (app, app2, ...) and every worker
LATE_PROGRAMS = ("beat", "flower", "flash-markers", "nginx", "edge")


class Stack:
    def __init__(self, env: Mapping[str, str] | None = None, echo: Callable[[str], None] = print):
        self.env = dict(os.environ if env is None else env)
        self.echo = echo
        self._load()

    def _load(self) -> None:
        self.settings = Settings.load(self.env)
        self.layout = Layout(self.settings)
        cluster = self.layout.cluster
        if cluster.enabled:
            # Every address a program dials is its service's host address; HOST is the data host's.
            edge = f"http://{cluster.edge_host.address}:{self.settings.int('EDGE_PORT')}"
            self.settings = self.settings.with_values(
                HOST=cluster.data_host.address,
                EDGE_URL=self.settings["EDGE_URL"] or edge,
                CDN_PURGE_URLS=self.settings["CDN_PURGE_URLS"] or edge + "/",
                EDGE_PURGE_ACL=self.settings["EDGE_PURGE_ACL"]
                or ",".join(h.address for h in self.layout.purging_hosts()),
                ORIGIN_TRUSTED_PROXIES=self.settings["ORIGIN_TRUSTED_PROXIES"] or cluster.edge_host.address,
            )
            if self.settings.flag("PROMETHEUS") and not self.settings["OPS_PROMETHEUS_URL"]:
                # Prometheus runs on the machine, on the bridge's address: an app host's 127.0.0.1 is its own.
                port = self.settings.int("PROMETHEUS_PORT")
                self.settings = self.settings.with_values(OPS_PROMETHEUS_URL=f"http://{cluster.gateway}:{port}")
            self.layout = Layout(self.settings)
        if self.layout.sentinel_enabled and not self.settings["REDIS_SENTINELS"]:
            addresses = [f"{h.address if h else self.settings['HOST']}:{p}" for _n, p, _d, h in self.layout.sentinels()]
            self.settings = self.settings.with_values(REDIS_SENTINELS=",".join(addresses))
            self.layout = Layout(self.settings)
        primary = self.layout.primary
        if (cluster.enabled or primary.name != "mariadb-primary") and not self.settings["DB_PRIMARY"]:
            # `breakwater db promote` moved the primary, or the nodes live on several hosts: every program
            # (and migrations) writes to the current primary's address.
            self.settings = self.settings.with_values(
                DB_PRIMARY=f"{primary.address}:{primary.port}",
                DB_REPLICAS=",".join(f"{n.address}:{n.port}" for n in self.layout.replicas),
            )
            self.layout = Layout(self.settings)
        self.supervisor = Supervisor(self.layout)

    # ------------------------------------------------------------------ checks
    def _ports(self) -> list[tuple[str, int]]:
        s = self.settings
        ports = [("PRIMARY_PORT", s.int("PRIMARY_PORT"))]
        ports += [("REPLICA_PORTS", p) for p in s.replica_ports]
        ports += [(k, s.int(k)) for k in ("REDIS_PORT", "REDIS_CACHE_PORT")]
        if self.layout.sentinel_enabled:
            ports += [("REDIS_REPLICA_PORT", s.int("REDIS_REPLICA_PORT"))]
            ports += [("SENTINEL_PORTS", p) for p in s.sentinel_ports]
        ports += [("APP_PORT", a.port) for a in self.layout.apps]  # app2... listen on APP_PORT+1...
        ports += [(k, s.int(k)) for k in ("ORIGIN_PORT", "EDGE_PORT")]
        ports += [(k, s.int(k)) for k in ("RABBITMQ_PORT", "RABBITMQ_DIST_PORT", "SMTP_PORT")]
        ports += [("FLOWER_PORT", s.int("FLOWER_PORT"))] if s.flag("FLOWER") else []
        from breakwater_tools.stack.monitoring import ports as monitoring_ports

        return ports + monitoring_ports(self.layout)

    @property
    def _web(self) -> list[str]:
        """The programs started after the data services: every gunicorn, the workers, beat, Flower,
        Nginx, the edge."""
        rendered = {p.name for p in programs(self.layout)}  # Flower only when BREAKWATER_FLOWER is on
        late = [p for p in LATE_PROGRAMS if p in rendered]
        late += sorted(p for p in rendered if p.startswith("exporter-")) + ["prometheus"] * ("prometheus" in rendered)
        return [a.name for a in self.layout.apps] + [w for w, _q, _h in self.layout.workers()] + late

    def _pid_files(self) -> dict[str, Path]:
        files = {n.name: n.dir / "mariadb.pid" for n in self.layout.nodes}
        files["redis"] = self.layout.redis / "redis.pid"
        files["redis-cache"] = self.layout.redis_cache / "redis.pid"
        if self.layout.sentinel_enabled:
            files["redis-replica"] = self.layout.redis_replica / "redis.pid"
            for name, _port, directory, _host in self.layout.sentinels():
                files[name] = directory / "sentinel.pid"
        files["nginx"] = self.layout.nginx / "nginx.pid"
        files["edge"] = self.layout.edge / "varnishd.pid"
        for inst in self.layout.apps:
            files[inst.name] = inst.pid_file
        files["rabbitmq"] = self.layout.rabbitmq_pidfile
        files["smtp"] = self.layout.mail / "sink.pid"
        files["beat"] = self.layout.celery / "beat.pid"
        for worker, _queue, _host in self.layout.workers():
            files[worker] = self.layout.worker_pidfile(worker)
        return files

    def orphans(self) -> dict[str, int]:
        """Services of this state dir still alive although supervisord is gone."""
        return {name: pid for name, path in self._pid_files().items() if (pid := read_pid(path))}

    def preflight(self, install: bool = True) -> None:
        pid = self.supervisor.pid
        if pid:
            raise StackError(
                f"The stack in {self.layout.state} is already running (supervisord pid {pid}); "
                "see it with `make status` or stop it with `make down`."
            )
        orphans = self.orphans()
        if orphans:
            listed = ", ".join(f"{n} (pid {p})" for n, p in orphans.items())
            raise StackError(f"Processes from an earlier run are still alive: {listed}; stop them with `make down`.")
        ensure_programs(install=install)
        ports, address = self._ports(), self.settings["HOST"]
        if self.layout.cluster.enabled:
            # The hosts' namespaces are the stack's own: nothing else listens there. Prometheus and its exporters
            # run on the machine itself (monitoring.py; a listener on every address would take their ports).
            from breakwater_tools.stack.monitoring import machine_ports

            ports, address = machine_ports(self.layout), "127.0.0.1"  # `make run`'s own, too: one of them moves
        if len(set(p for _, p in ports)) != len(ports):
            raise StackError("Two BREAKWATER_*_PORT settings name the same port; give each service its own port.")
        command = "make cluster" if self.layout.cluster.enabled else "make run"
        for key, port in ports:
            if port_in_use(address, port):
                name = env_name(key)
                raise StackError(
                    f"Port {port} ({name}) is already in use by another program; "
                    f"stop that program or choose another port, e.g. `{name}={port + 100} {command}`."
                )

    # ------------------------------------------------------------------ up/down
    def up(self, install: bool = True, echo_steps: bool = True) -> None:
        say = self.echo if echo_steps else (lambda _msg: None)
        self.preflight(install=install)
        users.prepare(self.layout, install=install, echo=say)  # as root: the service user, and its way in
        if self.layout.cluster.enabled:
            say(f"creating {self.layout.cluster.count} hosts (network namespaces) on {self.layout.cluster.network}")
            self.layout.cluster.up()
        ensure_secrets(self.layout.state)
        self._load()  # pick up the generated secrets
        render_all(self.layout)
        permissions.secure_state(self.layout)
        run = self.layout.run_as
        with ThreadPoolExecutor(len(self.layout.nodes)) as pool:  # mariadb-install-db, one per node at once
            created = list(pool.map(lambda node: mariadb.init_datadir(node, run), self.layout.nodes))
        for node, made in zip(self.layout.nodes, created, strict=True):
            if made:
                say(f"created data directory for {node.name}")
        say("starting supervisord, MariaDB nodes and Redis")
        self.supervisor.start_daemon(self._child_env())
        try:
            self._start_data_services(say)
            say("running migrations and seed data on the primary")
            self.migrate()
            self.seed()
            mariadb.wait_replicas_caught_up(self.layout)
            self._wait_rabbitmq()  # booting since the data services started
            self._start_web(say)
            self.wait_healthy()
        except BaseException:
            self.down(quiet=True)
            raise

    def _start_web(self, say: Callable[[str], None]) -> None:
        """Gunicorn, the workers, Nginx and the edge start while the full static build runs (they do not
        need it, and nothing asks for a page before the stack is up); the pages worker and beat, which
        would write pages or ask for builds, start once the build is done."""
        builders = {w for w, queue, _h in self.layout.workers() if queue == "pages"} | {"beat"}
        build = self.settings.flag("PAGES_BUILD_ON_START")
        first = [n for n in self._web if not (build and n in builders)]
        say("starting gunicorn, the Celery workers, Nginx and the Varnish edge")
        for name in first:  # all at once: seven Celery programs would take half a minute in turn
            self.supervisor.start(name, wait=False)
        if build:
            say("emitting static pages")
            self.build_pages()
            for name in self._web:
                if name in builders:
                    self.supervisor.start(name, wait=False)
        for name in self._web:
            self.supervisor.wait_running(name)

    def _child_env(self) -> dict[str, str]:
        env = self.settings.child_env()
        env["PROMETHEUS_MULTIPROC_DIR"] = str(self.layout.prometheus)
        for f in self.layout.prometheus.glob("*.db"):
            f.unlink()
        return env

    def _start_data_services(self, say: Callable[[str], None]) -> None:
        for node in self.layout.nodes:
            self.supervisor.wait_running(node.name)
        for node in self.layout.nodes:
            mariadb.wait_ready(node, alive=self.supervisor.alive_check(node.name))
        self.supervisor.wait_running("redis")
        self.supervisor.wait_running("redis-cache")
        if self.layout.sentinel_enabled:
            for name in ("redis-replica", *(n for n, _p, _d, _h in self.layout.sentinels())):
                self.supervisor.wait_running(name)
        self.supervisor.wait_running("smtp")
        if not self.layout.bootstrapped_marker.exists():
            say("creating users and configuring GTID replication")
            mariadb.bootstrap_primary(self.layout)
            for node in self.layout.replicas:
                mariadb.configure_replica(self.layout, node)
            write_private(self.layout.bootstrapped_marker, "ok\n", 0o644)
        if self.layout.run_as.switch:  # the failover watcher administers as the service user
            mariadb.ensure_socket_account(self.layout, self.layout.run_as.name)
        mariadb.wait_replicas_caught_up(self.layout)

    def _wait_rabbitmq(self, timeout: float = 90.0) -> None:
        """The node takes a few seconds to boot (longer the first time); wait until it takes an AMQP login."""
        import kombu

        self.supervisor.wait_running("rabbitmq")
        alive = self.supervisor.alive_check("rabbitmq")
        deadline = time.monotonic() + timeout
        url = self.settings.with_values(BROKER_URL="").broker_url  # the node itself, whichever broker is in use
        while time.monotonic() < deadline:
            if not alive():
                break
            if accepts(self.settings["HOST"], self.settings.int("RABBITMQ_PORT")):
                try:
                    with kombu.Connection(url, connect_timeout=2) as conn:
                        conn.ensure_connection(max_retries=1)
                    return
                except Exception:
                    pass
            time.sleep(0.3)
        raise StackError(
            f"rabbitmq did not accept a login within {timeout:.0f}s; last lines of its log:\n"
            f"{self.supervisor.tail('rabbitmq')}"
        )

    def migrate(self, revision: str = "head") -> None:
        from breakwater.database.migrations import upgrade

        upgrade(self.settings, revision)

    def seed(self) -> None:
        """The seed data, as ``breakwater db seed`` in a process of its own (see :meth:`_cli`)."""
        self._cli("db", "seed", what="loading the seed data")

    def build_pages(self) -> str:
        """A full static build (the worker rebuilds incrementally afterwards)."""
        return self._cli("pages", "build", what="the static build")

    def _cli(self, *args: str, what: str) -> str:
        """``breakwater ARGS`` against this stack, in a process of its own: creating an app in this one
        would point the process-wide ``db`` at this stack, behind the back of any app the caller (a test
        session, a benchmark) already runs."""
        as_user = {}
        if self.layout.run_as.switch:  # as the services: the static build writes the service user's folder
            pw = pwd.getpwnam(self.layout.run_as.name)
            as_user = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": [], "umask": 0o027, "cwd": "/"}
        result = subprocess.run(
            [venv_bin("breakwater"), *args], env=self.settings.child_env(), capture_output=True, text=True, timeout=600,
            **as_user,
        )  # fmt: skip
        if result.returncode != 0:
            raise StackError(f"{what} failed: {(result.stderr or result.stdout).strip()[-600:]}")
        return result.stdout.strip()

    def wait_healthy(self, timeout: float = 60.0) -> dict:
        url = self.settings.origin_url + "/healthz"
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            for name in self._web:
                if not self.supervisor.alive_check(name)():
                    raise StackError(
                        f"{name} crashed while starting; last lines of its log:\n{self.supervisor.tail(name)}"
                    )
            try:
                # The operator token: the problems are shown to the operator only, and in a cluster this machine
                # is not on the origin's operator network.
                request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.settings['OPS_TOKEN']}"})
                with urllib.request.urlopen(request, timeout=5) as resp:
                    body = json.load(resp)
                    if body.get("status") == "ok" and self._edge_sees_origin():
                        return body
                    last = json.dumps(body.get("problems")) if body.get("status") != "ok" else "edge: origin sick"
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}: {exc.read()[:300]!r}"
            except (OSError, ValueError) as exc:
                last = str(exc)
            time.sleep(0.5)
        raise StackError(f"{url} did not report healthy within {timeout:.0f}s (last: {last}); see {self.layout.logs}.")

    def _edge_sees_origin(self) -> bool:
        """The edge's health probe has found the origin (until then Varnish answers 503): it may start
        probing before Nginx listens, on another host of a cluster too."""
        edge = self.settings.edge_url
        if edge is None:
            return True
        try:
            with urllib.request.urlopen(edge + "/healthz", timeout=5) as resp:
                return resp.status == 200
        except (OSError, ValueError):
            return False

    def down(self, quiet: bool = False, kill: bool = False) -> bool:
        """Stop everything; returns False when nothing was running. ``kill`` skips the graceful stop
        (SIGKILL): only for a stack whose state is thrown away afterwards, as the test session's."""
        was_running = self.supervisor.pid is not None
        if kill:
            self.supervisor.kill()
        else:
            self.supervisor.shutdown()
        for name, pid in self.orphans().items():
            if not quiet:
                self.echo(f"stopping leftover {name} (pid {pid})")
            _terminate(pid, timeout=0 if kill else 20.0)
        if self.layout.cluster.enabled and self.layout.cluster.exists():
            self.layout.cluster.down()  # the hosts go with the stack; `make cluster` makes them again
        return was_running

    def start_host(self, host) -> list[str]:
        """Start every program of a cluster host that is not running (after ``cluster restore``)."""
        info = self.supervisor.processes()
        started = []
        for prog in programs(self.layout):
            if prog.host == host and info.get(prog.name, {}).get("statename") != "RUNNING":
                self.supervisor.start(prog.name, wait=False)
                started.append(prog.name)
        for name in started:
            self.supervisor.wait_running(name)
        return started

    # ------------------------------------------------------------------ status
    def status(self) -> list[dict]:
        host = self.settings["HOST"]
        info: dict[str, dict] = {}
        if self.supervisor.pid:
            try:
                info = self.supervisor.processes()
            except OSError:
                info = {}
        rows = []
        for prog in programs(self.layout):
            p = info.get(prog.name, {})
            state = p.get("statename", "STOPPED")
            pid = p.get("pid") or None
            healthy = state == "RUNNING" and (prog.port is None or accepts(prog.address or host, prog.port))
            rows.append(
                {
                    "name": prog.name,
                    "role": prog.role,
                    "host": prog.host.name if prog.host else "",
                    "pid": pid,
                    "port": prog.port,
                    "state": state,
                    "healthy": healthy,
                }
            )
        return rows

    # ------------------------------------------------------------------ run
    def follow_logs(self, stop: Callable[[], bool]) -> None:
        """Print new lines of every service log, prefixed with the service name, until ``stop()``."""
        files: dict[Path, int] = {}
        for path in sorted(self.layout.logs.glob("*.log")):
            files[path] = path.stat().st_size
        width = max((len(p.stem) for p in files), default=8)
        while not stop():
            for path in sorted(self.layout.logs.glob("*.log")):
                offset = files.setdefault(path, 0)
                try:
                    size = path.stat().st_size
                    if size < offset:  # rotated
                        offset = 0
                    if size > offset:
                        with path.open("rb") as f:
                            f.seek(offset)
                            data = f.read(size - offset)
                        end = data.rfind(b"\n") + 1  # print whole lines only
                        for line in data[:end].decode(errors="replace").splitlines():
                            self.echo(f"{path.stem:<{width}} | {line}")
                        files[path] = offset + end
                except OSError:
                    continue
            time.sleep(0.3)


def _terminate(pid: int, timeout: float = 20.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
