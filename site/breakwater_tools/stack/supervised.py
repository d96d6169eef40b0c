"""The supervisord programs of the local stack: what runs where, as whom, with which command line.

Each entry of :func:`programs` is a :class:`Program`; :mod:`.render` writes their configurations and
supervisord.conf, :mod:`.lifecycle` starts them in order.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

from breakwater_tools.stack.cluster import Host
from breakwater_tools.stack.errors import StackError
from breakwater_tools.stack.files import env_line, venv_bin
from breakwater_tools.stack.layout import Layout
from breakwater_tools.stack.programs import rabbitmq_bin, which
from breakwater_tools.stack.supervisor import Program
from breakwater_tools.stack.users import ROOT_STARTED


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
            venv_bin("gunicorn"),
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
    markers = shlex.join([venv_bin("breakwater"), "flash", "markers"])
    progs.append(Program("flash-markers", "flash sale states", markers, None, autostart=False, priority=350, host=data))
    if s.float("DB_FAILOVER_AFTER") > 0:
        watch = [venv_bin("breakwater"), "db", "watch"]
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

    progs += monitoring_programs(layout, Program, env_line)  # BREAKWATER_PROMETHEUS: after the edge
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
            environment=env_line(rabbitmq_env(layout)),
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
        venv_bin("celery"), "-A", "breakwater.worker", "worker",
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
        venv_bin("celery"), "-A", "breakwater.worker", "beat", "--loglevel", s["LOG_LEVEL"],
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
            environment = env_line({"FLOWER_BASIC_AUTH": f"breakwater:{password}"})
        else:
            address = "127.0.0.1"
    flower = [
        venv_bin("celery"), "-A", "breakwater.worker", "flower",
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
