"""Render the service configuration files from the templates into the state directory."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from breakwater.settings import ROOT, Settings
from breakwater_tools.stack.cluster import Host
from breakwater_tools.stack.errors import StackError
from breakwater_tools.stack.layout import Layout
from breakwater_tools.stack.programs import nginx_mime_types, rabbitmq_bin, which
from breakwater_tools.stack.users import ROOT_STARTED, hand_over

_TEMPLATE_DIRS = [ROOT / "nginx", ROOT / "db" / "replication", Path(__file__).parent / "templates"]
_env = Environment(loader=FileSystemLoader([str(d) for d in _TEMPLATE_DIRS]), undefined=StrictUndefined)


@dataclass
class Program:
    """One supervisord program; ``role`` and ``port`` feed `breakwater stack status`."""

    name: str
    role: str
    command: str
    port: int | None
    autostart: bool = True
    startsecs: int = 2
    stopsignal: str = "TERM"
    stopwaitsecs: int = 30
    priority: int = 100  # started in ascending, stopped in descending order
    #: its working directory, inside the state folder (filled in by :func:`programs`): what a program leaves
    #: in its cwd (a crash dump: RabbitMQ's MnesiaCore.*, erl_crash.dump, core) stays with the stack
    directory: str = ""
    environment: str = ""
    stopasgroup: bool = True
    host: Host | None = None  # in a cluster: the host (network namespace) it runs on
    address: str = ""  # where it listens (`breakwater stack status` checks the port there); empty = HOST
    #: the OS user it runs as when the stack starts as root (filled in by :func:`programs`; see
    #: :mod:`breakwater_tools.stack.users`); empty: as supervisord runs
    user: str = ""
    group: str = ""

    @property
    def launch(self) -> str:
        """The command supervisord runs: inside its host's network namespace in a cluster, switched to its user
        there by ``setpriv`` (``ip netns exec`` needs root; both exec in place: supervisord's pid stays the
        program's); on one machine supervisord switches (``user =``)."""
        if not self.host:
            return self.command
        switch = f"setpriv --reuid={self.user} --regid={self.group} --init-groups -- " if self.user else ""
        return f"ip netns exec {self.host.netns} {switch}{self.command}"

    @property
    def env_line(self) -> str:
        """Its supervisord ``environment``: a switched program's USER, LOGNAME and HOME are its user's (HOME its
        own folder: the service user has none)."""
        if not self.user:
            return self.environment
        own = {"USER": self.user, "LOGNAME": self.user}
        if "HOME=" not in self.environment:
            own["HOME"] = self.directory
        return ",".join(filter(None, [self.environment, _env_line(own)]))


def _write(path: Path, text: str, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with contextlib.suppress(FileNotFoundError):  # a folder the service user writes: never write through a link
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _bin(name: str) -> str:
    """A console script of this virtualenv (gunicorn, celery)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else (which(name) or name)


def worker_class_args(s) -> list[str]:
    """gunicorn's worker class and its concurrency knob from WEB_WORKER_CLASS: threads only for gthread
    (gunicorn turns ``sync`` with more than one thread into gthread), connections only for gevent."""
    try:
        worker_class = s.web_worker_class
    except ValueError as exc:
        raise StackError(str(exc)) from None
    if worker_class == "gthread":
        return ["--worker-class", "gthread", "--threads", str(s.int("WEB_THREADS"))]
    if worker_class == "gevent":
        return ["--worker-class", "gevent", "--worker-connections", str(s.int("WEB_GEVENT_CONNECTIONS"))]
    return ["--worker-class", "sync", "--threads", "1"]


#: varnishd parameters that size the edge, each from its BREAKWATER_EDGE_* setting (docker-compose.yml passes the same)
EDGE_SIZING = {
    "thread_pools": "EDGE_THREAD_POOLS",
    "thread_pool_min": "EDGE_THREAD_POOL_MIN",
    "thread_pool_max": "EDGE_THREAD_POOL_MAX",
    "workspace_client": "EDGE_WORKSPACE_CLIENT",
    "workspace_backend": "EDGE_WORKSPACE_BACKEND",
    "listen_depth": "EDGE_LISTEN_DEPTH",
}


def edge_sizing_args(s) -> list[str]:
    """``-p name=value`` for each of the edge's sizing parameters (thread pools, workspaces, listen queue)."""
    values = {param: s[setting].strip() for param, setting in EDGE_SIZING.items()}
    for param, value in values.items():
        if not re.fullmatch(r"[0-9]+[kKmM]?" if param.startswith("workspace_") else r"[0-9]+", value):
            raise StackError(f"BREAKWATER_{EDGE_SIZING[param]}={value!r} is not a valid varnishd {param}.")
    if int(values["thread_pool_min"]) > int(values["thread_pool_max"]):
        raise StackError("BREAKWATER_EDGE_THREAD_POOL_MIN must not be above BREAKWATER_EDGE_THREAD_POOL_MAX.")
    return [arg for param, value in values.items() for arg in ("-p", f"{param}={value}")]


def programs(layout: Layout) -> list[Program]:
    s = layout.settings
    c = layout.cluster
    data = c.data_host if c.enabled else None  # where the data services, the origin and beat run
    progs = [
        Program(
            n.name, n.role, f"{which('mariadbd')} --defaults-file={n.cnf}", n.port, stopwaitsecs=60,
            host=n.host, address=n.address,
        )
        for n in layout.nodes
    ]  # fmt: skip
    redis_server = which("redis-server")
    progs.append(
        Program("redis", "broker+gate", f"{redis_server} {layout.redis / 'redis.conf'}", s.int("REDIS_PORT"), host=data)
    )
    progs.append(
        Program(
            "redis-cache", "cache", f"{redis_server} {layout.redis_cache / 'redis.conf'}", s.int("REDIS_CACHE_PORT"),
            host=data,
        )
    )  # fmt: skip
    from breakwater_tools.stack.sentinel import sentinel_programs

    progs += sentinel_programs(layout)
    progs += broker_programs(layout)
    for inst in layout.apps:
        gunicorn = [
            _bin("gunicorn"),
            "--bind",
            f"{inst.address}:{inst.port}",
            "--workers",
            str(s.int("WEB_WORKERS")),
            *worker_class_args(s),
            "--error-logfile",
            "-",
            "--no-control-socket",  # one shared ~/.gunicorn socket would collide between stacks
            "--config",
            "python:breakwater.gunicorn_conf",
            "--graceful-timeout",
            "10",
            "--pid",
            str(inst.pid_file),
            # The benchmark routes live with the tooling, never in the app a deployment installs.
            "breakwater_tools.bench.wsgi:app" if s.flag("BENCH_ROUTES") else "breakwater.wsgi:app",
        ]
        progs.append(
            Program(
                inst.name,
                "web",
                shlex.join(gunicorn),
                inst.port,
                autostart=False,
                priority=300,
                environment=f'PROMETHEUS_MULTIPROC_DIR="{layout.prometheus}"',
                host=inst.host,
                address=inst.address,
            )
        )
    progs += queue_programs(layout)
    # Each flash sale's state file and rejection marker, written into the static folder the origin serves (so on
    # the origin's host); Nginx answers sold-out, ended and not-started purchases from them (flash/markers.py).
    markers = shlex.join([_bin("breakwater"), "flash", "markers"])
    progs.append(Program("flash-markers", "flash sale states", markers, None, autostart=False, priority=350, host=data))
    if s.float("DB_FAILOVER_AFTER") > 0:
        watch = [_bin("breakwater"), "db", "watch"]
        watcher = c.watcher_host if c.enabled else None  # not on the primary's host: it must outlive it
        progs.append(Program("db-watch", "automatic failover", shlex.join(watch), None, priority=200, host=watcher))
    nginx = [
        which("nginx") or "nginx",
        "-p",
        str(layout.nginx),
        "-c",
        str(layout.nginx / "nginx.conf"),
        "-g",
        "daemon off;",
    ]
    progs.append(
        Program(
            "nginx",
            "origin",
            shlex.join(nginx),
            s.int("ORIGIN_PORT"),
            autostart=False,
            stopsignal="QUIT",
            stopwaitsecs=10,
            priority=400,
            host=data,
        )
    )
    edge = c.edge_host if c.enabled else None
    varnishd = [
        which("varnishd") or "varnishd",
        "-F",
        "-n",
        str(layout.edge_workdir),
        "-a",
        f"{edge.address if edge else s['HOST']}:{s.int('EDGE_PORT')}",
        "-f",
        str(layout.edge_vcl),
        "-s",
        f"malloc,{s['EDGE_MEMORY']}",
        "-t",
        str(s.int("EDGE_DEFAULT_TTL")),
        # Stale-while-revalidate only when the origin says so; the VCL adds the long grace for outages.
        "-p",
        "default_grace=0",
        "-P",
        str(layout.edge / "varnishd.pid"),
        # Started as root: the manager drops to the service user and jails the child as that user too (the
        # varnish/vcache users could not reach the private state folder); otherwise it runs as the invoker.
        "-j",
        f"unix,user={layout.run_as.name},workuser={layout.run_as.name}" if layout.run_as.switch else "none",
        # Sized for a sudden crowd (BREAKWATER_EDGE_THREAD_POOLS and the rest; `make bench-spike` measures it).
        *edge_sizing_args(s),
    ]
    progs.append(
        Program(
            "edge",
            "edge/CDN",
            shlex.join(varnishd),
            s.int("EDGE_PORT"),
            autostart=False,
            stopwaitsecs=10,
            priority=500,
            host=edge,
            address=edge.address if edge else "",
        )
    )
    from breakwater_tools.stack.monitoring import monitoring_programs

    progs += monitoring_programs(layout, Program, _env_line)  # BREAKWATER_PROMETHEUS: after the edge
    folders = program_folders(layout)
    for prog in progs:
        prog.directory = prog.directory or str(folders.get(prog.name, layout.state / "run" / prog.name))
    if layout.run_as.switch:
        for prog in progs:
            if prog.name not in ROOT_STARTED:
                prog.user, prog.group = layout.run_as.name, layout.run_as.group
    return progs


def program_folders(layout: Layout) -> dict[str, Path]:
    """Each program's own state folder, its working directory; a program without one (gunicorn, Celery, the
    failover watcher) runs in ``<state>/run/<program>``."""
    folders = {n.name: n.dir for n in layout.nodes}
    folders |= {name: directory for name, _port, directory, _host in layout.sentinels()}
    folders |= {
        "redis": layout.redis,
        "redis-cache": layout.redis_cache,
        "redis-replica": layout.redis_replica,
        "rabbitmq": layout.rabbitmq,
        "smtp": layout.mail,
        "nginx": layout.nginx,
        "edge": layout.edge,
    }
    return folders


def origin_options(s: Settings) -> dict[str, object]:
    """The origin's tunables from the settings (microcache, Cache-Control numbers, rate limits)."""
    html_cc = (
        f"public, max-age={s.int('HTML_MAX_AGE')}, s-maxage={s.int('EDGE_MAX_AGE')}, "
        f"stale-while-revalidate={s.int('HTML_STALE_WHILE_REVALIDATE')}, "
        f"stale-if-error={s.int('HTML_STALE_IF_ERROR')}"
    )
    microcache = s.int("ORIGIN_MICROCACHE")
    if microcache < 0:
        raise ValueError(f"BREAKWATER_ORIGIN_MICROCACHE={microcache} must be 0 (off) or a number of seconds.")
    return {
        "microcache": microcache,
        "log_static": s.flag("ORIGIN_LOG_STATIC"),
        "html_cc": html_cc,
        "login_rate": s.rate("ORIGIN_LOGIN_RATE"),
        "login_burst": s.int("ORIGIN_LOGIN_BURST"),
        "write_rate": s.rate("ORIGIN_WRITE_RATE"),
        "write_burst": s.int("ORIGIN_WRITE_BURST"),
        "media_body_max": s.int("MEDIA_MAX_BYTES") + 1024 * 1024,
        "trusted_proxies": s.origin_trusted_proxies,
        "operator_network": s.origin_operator_network,
        "flash_rejections": flash_rejections(),
    }


def flash_rejections() -> list[tuple[str, int, str]]:
    """(marker file, status, JSON body) of each purchase attempt the origin answers from a sale's marker
    (flash/markers.py): the app's own answer, from REJECTIONS in flash/api.py in error_response's shape and
    Flask's compact JSON (the template adds the newline jsonify ends with). Ended before not started before
    sold out, the gate's order; a sale has one marker at most anyway."""
    import json

    from breakwater.flash.api import REJECTIONS

    out = []
    for code in ("ended", "not_started", "sold_out"):
        status, message = REJECTIONS[code]
        body = json.dumps({"error": {"code": code, "message": message}}, separators=(",", ":"))
        out.append((f"closed-{code}", status, body.replace("\\", "\\\\").replace("'", "\\'")))
    return out


def app_upstreams(layout: Layout) -> list[str]:
    """Every app server Nginx balances over: the local gunicorns, then BREAKWATER_APP_SERVERS."""
    s = layout.settings
    local = [f"{inst.address}:{inst.port}" for inst in layout.apps]
    return local + [f"{h}:{p}" for h, p in s.app_servers]


def rabbitmq_env(layout: Layout) -> dict[str, str]:
    """Everything that makes the node the stack's own: name, ports, config, data and logs under the state dir."""
    s, d = layout.settings, layout.rabbitmq
    return {
        "HOME": str(d),  # its .erlang.cookie lives here (rabbitmqctl with the same HOME finds it)
        "RABBITMQ_CONF_ENV_FILE": str(d / "rabbitmq-env.conf"),  # never read /etc/rabbitmq/rabbitmq-env.conf
        "RABBITMQ_NODENAME": layout.rabbitmq_nodename,
        "RABBITMQ_USE_LONGNAME": "false",
        "RABBITMQ_NODE_IP_ADDRESS": s["HOST"],
        "RABBITMQ_NODE_PORT": str(s.int("RABBITMQ_PORT")),
        "RABBITMQ_DIST_PORT": str(s.int("RABBITMQ_DIST_PORT")),
        "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(d / "advanced.config"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
        "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
        "RABBITMQ_LOG_BASE": str(d / "log"),
        "RABBITMQ_PID_FILE": str(layout.rabbitmq_pidfile),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
        # Node-to-CLI traffic (rabbitmqctl) stays on the loopback; only AMQP listens on HOST. No scheduler
        # busy-waiting: the node shares its cores with MariaDB, Redis and the Python processes, and
        # spinning idle schedulers would take CPU from them (RabbitMQ's runtime tuning guide).
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": (
            "-kernel inet_dist_use_interface {127,0,0,1} +sbwt none +sbwtdcpu none +sbwtdio none"
        ),
    }


def _env_line(env: dict[str, str]) -> str:
    return ",".join(f'{k}="{v}"' for k, v in env.items())


def broker_programs(layout: Layout) -> list[Program]:
    """The stack's own RabbitMQ node and the SMTP sink: started with the data services."""
    s = layout.settings
    data = layout.cluster.data_host if layout.cluster.enabled else None
    return [
        Program(
            "rabbitmq",
            "broker (AMQP)",
            rabbitmq_bin("rabbitmq-server"),
            s.int("RABBITMQ_PORT"),
            startsecs=5,
            stopwaitsecs=60,
            priority=20,
            environment=_env_line(rabbitmq_env(layout)),
            host=data,
        ),
        Program(
            "smtp",
            "mail sink",
            shlex.join([sys.executable, "-m", "breakwater_tools.mail_sink", "--host", s["HOST"], "--port",
                        str(s.int("SMTP_PORT")), "--dir", str(layout.mail)]),
            s.int("SMTP_PORT"),
            stopwaitsecs=10,
            priority=30,
            host=data,
        ),
    ]  # fmt: skip


def worker_command(layout: Layout, queue: str, pool: str, concurrency: int, program: str = "") -> list[str]:
    s = layout.settings
    program = program or f"worker-{queue}"
    suffix = program.removeprefix(f"worker-{queue}")  # "-h3" for a second app host's worker
    return [
        _bin("celery"), "-A", "breakwater.worker", "worker",
        "--queues", queue,
        "--pool", pool,
        "--concurrency", str(concurrency),
        "-O", "fair",
        "--loglevel", s["LOG_LEVEL"],
        "--hostname", f"{queue}-{s.int('APP_PORT')}{suffix}@%%h",
        "--pidfile", str(layout.worker_pidfile(program)),
        "--without-gossip", "--without-mingle",
    ]  # fmt: skip


def queue_programs(layout: Layout) -> list[Program]:
    """One Celery worker program per queue (pool and concurrency from settings), beat, Flower."""
    from breakwater.queues.routing import QUEUES

    s = layout.settings
    data = layout.cluster.data_host if layout.cluster.enabled else None
    progs = []
    for program, queue, host in layout.workers():
        pool, setting = QUEUES[queue]
        progs.append(worker_program(layout, program, queue, pool, s.int(setting), host))
    beat = [
        _bin("celery"), "-A", "breakwater.worker", "beat", "--loglevel", s["LOG_LEVEL"],
        "--schedule", str(layout.celery / "beat-schedule"), "--pidfile", str(layout.celery / "beat.pid"),
    ]  # fmt: skip
    progs.append(
        Program("beat", "celery beat (outbox relay)", shlex.join(beat), None, autostart=False, priority=310, host=data)
    )
    if s.flag("FLOWER"):
        progs.append(flower_program(layout, data))
    return progs


def flower_program(layout: Layout, host: Host | None) -> Program:
    """Flower shows every task's arguments (buyers' names and addresses among them): on a loopback HOST it
    listens there; on any other address (a cluster's data host) it asks for the user ``breakwater`` and
    FLOWER_PASSWORD, passed in its environment (a command line is visible to every user in `ps`). Without a
    generated password yet it stays on loopback."""
    s = layout.settings
    address, environment = s["HOST"], ""
    if not _loopback(address):
        if s["FLOWER_PASSWORD"]:
            password = s["FLOWER_PASSWORD"].replace("%", "%%")  # supervisord expands %(...)s
            environment = _env_line({"FLOWER_BASIC_AUTH": f"breakwater:{password}"})
        else:
            address = "127.0.0.1"
    flower = [
        _bin("celery"), "-A", "breakwater.worker", "flower",
        f"--address={address}", f"--port={s.int('FLOWER_PORT')}", "--persistent=False",
    ]  # fmt: skip
    return Program(
        "flower", "queue monitor", shlex.join(flower), s.int("FLOWER_PORT"), autostart=False, priority=320,
        environment=environment, host=host, address=address if address != s["HOST"] else "",
    )  # fmt: skip


def _loopback(address: str) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


def worker_program(layout: Layout, program: str, queue: str, pool: str, concurrency: int, host) -> Program:
    return Program(
        program,
        f"celery {queue} ({pool})" + (f" on {host.name}" if host else ""),
        shlex.join(worker_command(layout, queue, pool, concurrency, program)),
        None,
        autostart=False,
        startsecs=3,
        priority=300,
        # SIGQUIT = soft shutdown: running tasks get WORKER_SHUTDOWN_TIMEOUT to finish, the rest go back
        # to the queue (late acks). Only the main process is signalled; it stops its pool itself.
        stopsignal="QUIT",
        stopwaitsecs=layout.settings.int("WORKER_SHUTDOWN_TIMEOUT") + 20,
        stopasgroup=False,
        host=host,
    )


def _acl_entry(entry: str) -> str:
    """``10.0.0.0/8`` -> ``"10.0.0.0"/8`` (VCL ACL syntax)."""
    address, _, bits = entry.partition("/")
    return f'"{address}"/{bits}' if bits else f'"{address}"'


def render_edge(*, backend: str, purge_acl: list[str], grace: int, edge_dir: str) -> str:
    """The edge's VCL; also used by docker-compose through `breakwater stack render-edge`."""
    host, _, port = backend.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"edge backend {backend!r} must look like host:port, e.g. 127.0.0.1:8080.")
    if not purge_acl:
        raise ValueError("the edge's purge ACL is empty; set BREAKWATER_EDGE_PURGE_ACL to the purging addresses.")
    return _env.get_template("edge.vcl.j2").render(
        backend_host=host,
        backend_port=port,
        purge_acl=[_acl_entry(e) for e in purge_acl],
        grace=grace,
        edge_dir=edge_dir,
    )


def render_nginx(
    *,
    upstreams: list[str],
    listen: str,
    static_dir: str,
    nginx_dir: str,
    access_log: str,
    settings: Settings,
    os_user: str = "",
    mime_types: str | None = None,
    status_listen: str = "",
) -> str:
    """The origin configuration; also used by docker-compose through `breakwater stack render-nginx`."""
    if not upstreams:
        raise ValueError("the origin needs at least one app server.")
    return _env.get_template("origin.conf.j2").render(
        upstreams=upstreams,
        listen=listen,
        static_dir=static_dir,
        nginx_dir=nginx_dir,
        access_log=access_log,
        buffered_log=access_log.startswith("/") and not access_log.startswith("/dev/"),
        os_user=os_user,
        mime_types=mime_types or nginx_mime_types(),
        status_listen=status_listen,
        **origin_options(settings),
    )


def render_nodes(layout: Layout) -> None:
    """Each MariaDB node's my.cnf; a replica's (or a fenced former primary's) says read-only."""
    s = layout.settings
    for n in layout.nodes:
        _write(
            n.cnf,
            _env.get_template("node.cnf.j2").render(
                node_dir=n.dir,
                socket=n.socket,
                log_dir=layout.logs,
                name=n.name,
                role=n.role,
                port=n.port,
                host=n.address,
                server_id=n.server_id,
                semisync_timeout_ms=s.int("DB_SEMISYNC_TIMEOUT_MS"),
                os_user=layout.run_as.name,
                buffer_pool="64M",
            ),
        )
        hand_over(n.cnf, layout.run_as)  # the server reads it as the service user


def render_all(layout: Layout) -> list[Program]:
    from breakwater_tools.stack.monitoring import enabled as monitoring_enabled
    from breakwater_tools.stack.monitoring import nginx_status_listen

    s = layout.settings
    run = layout.run_as
    for d in layout.dirs():
        d.mkdir(parents=True, exist_ok=True)
    render_nodes(layout)
    _write(
        layout.redis / "redis.conf",
        _env.get_template("redis.conf.j2").render(
            port=s.int("REDIS_PORT"), host=s["HOST"], redis_dir=layout.redis, password=s["REDIS_PASSWORD"],
            role="durable", replica_of="",
        ),
    )  # fmt: skip
    _write(
        layout.redis_cache / "redis.conf",
        _env.get_template("redis.conf.j2").render(
            port=s.int("REDIS_CACHE_PORT"), host=s["HOST"], redis_dir=layout.redis_cache,
            password=s["REDIS_PASSWORD"], role="cache", maxmemory=s["REDIS_CACHE_MAXMEMORY"], replica_of="",
        ),
    )  # fmt: skip
    from breakwater_tools.stack.sentinel import render_sentinels

    render_sentinels(layout)
    _write(
        layout.nginx / "nginx.conf",
        render_nginx(
            upstreams=app_upstreams(layout),
            listen=f"{s['HOST']}:{s.int('ORIGIN_PORT')}",
            static_dir=s["STATIC_DIR"],
            nginx_dir=str(layout.nginx),
            access_log=str(layout.logs / "nginx-access.log"),
            settings=s,
            os_user=f"{run.name} {run.group}" if run.switch else "",  # the workers'; the master binds as root
            status_listen=nginx_status_listen(layout),
        ),
    )
    _write(
        layout.edge_vcl,
        render_edge(
            backend=f"{s['HOST']}:{s.int('ORIGIN_PORT')}",
            purge_acl=s.edge_purge_acl,
            grace=s.int("EDGE_GRACE"),
            edge_dir=str(layout.edge),
        ),
    )
    _write(
        layout.rabbitmq / "rabbitmq.conf",
        _env.get_template("rabbitmq.conf.j2").render(
            host=s["HOST"], port=s.int("RABBITMQ_PORT"), password=s["RABBITMQ_PASSWORD"],
            consumer_timeout_ms=(s.int("TASK_TIME_LIMIT") + s.int("WORKER_SHUTDOWN_TIMEOUT") + 600) * 1000,
            prometheus_port=s.int("RABBITMQ_PROMETHEUS_PORT") if monitoring_enabled(layout) else 0,
        ),
    )  # fmt: skip
    _write(layout.rabbitmq / "enabled_plugins", "[rabbitmq_prometheus].\n" if monitoring_enabled(layout) else "[].\n")
    _write(layout.rabbitmq / "rabbitmq-env.conf", "# the stack passes every setting in the environment\n")
    from breakwater_tools.stack.monitoring import render_monitoring

    render_monitoring(layout, _write)
    progs = programs(layout)
    for prog in progs:
        Path(prog.directory).mkdir(parents=True, exist_ok=True)
    _write(
        layout.supervisor_conf,
        _env.get_template("supervisord.conf.j2").render(
            sup_dir=layout.supervisor,
            sup_sock=layout.supervisor_sock,
            log_dir=layout.logs,
            programs=progs,
            ident=s.int("APP_PORT"),
        ),
    )
    return progs
