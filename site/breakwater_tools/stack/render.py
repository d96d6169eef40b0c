"""Render the service configuration files from the templates into the state directory."""

from __future__ import annotations

from pathlib import Path

from breakwater.settings import Settings
from breakwater_tools.stack.files import templates, write_private
from breakwater_tools.stack.layout import Layout
from breakwater_tools.stack.programs import nginx_mime_types
from breakwater_tools.stack.supervised import app_upstreams, programs
from breakwater_tools.stack.supervisor import Program
from breakwater_tools.stack.users import hand_over


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
    (flash/markers.py): the app's own answer, from REJECTIONS in flash/purchase.py in error_response's shape and
    Flask's compact JSON (the template adds the newline jsonify ends with). Ended before not started before
    sold out, the gate's order; a sale has one marker at most anyway."""
    import json

    from breakwater.flash.purchase import REJECTIONS

    out = []
    for code in ("ended", "not_started", "sold_out"):
        status, message = REJECTIONS[code]
        body = json.dumps({"error": {"code": code, "message": message}}, separators=(",", ":"))
        out.append((f"closed-{code}", status, body.replace("\\", "\\\\").replace("'", "\\'")))
    return out


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
    return templates.get_template("edge.vcl.j2").render(
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
    status_allow: str = "127.0.0.1",
) -> str:
    """The origin configuration; also used by docker-compose through `breakwater stack render-nginx`."""
    if not upstreams:
        raise ValueError("the origin needs at least one app server.")
    return templates.get_template("origin.conf.j2").render(
        upstreams=upstreams,
        listen=listen,
        static_dir=static_dir,
        nginx_dir=nginx_dir,
        access_log=access_log,
        buffered_log=access_log.startswith("/") and not access_log.startswith("/dev/"),
        os_user=os_user,
        mime_types=mime_types or nginx_mime_types(),
        status_listen=status_listen,
        status_allow=status_allow,
        **origin_options(settings),
    )


def render_nodes(layout: Layout) -> None:
    """Each MariaDB node's my.cnf; a replica's (or a fenced former primary's) says read-only."""
    s = layout.settings
    for n in layout.nodes:
        write_private(
            n.cnf,
            templates.get_template("node.cnf.j2").render(
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
    from breakwater_tools.stack.monitoring import nginx_status_allow, nginx_status_listen, rabbitmq_address

    s = layout.settings
    run = layout.run_as
    for d in layout.dirs():
        d.mkdir(parents=True, exist_ok=True)
    render_nodes(layout)
    write_private(
        layout.redis / "redis.conf",
        templates.get_template("redis.conf.j2").render(
            port=s.int("REDIS_PORT"), host=s["HOST"], redis_dir=layout.redis, password=s["REDIS_PASSWORD"],
            role="durable", replica_of="",
        ),
    )  # fmt: skip
    write_private(
        layout.redis_cache / "redis.conf",
        templates.get_template("redis.conf.j2").render(
            port=s.int("REDIS_CACHE_PORT"), host=s["HOST"], redis_dir=layout.redis_cache,
            password=s["REDIS_PASSWORD"], role="cache", maxmemory=s["REDIS_CACHE_MAXMEMORY"], replica_of="",
        ),
    )  # fmt: skip
    from breakwater_tools.stack.sentinel import render_sentinels

    render_sentinels(layout)
    write_private(
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
            status_allow=nginx_status_allow(layout),
        ),
    )
    write_private(
        layout.edge_vcl,
        render_edge(
            backend=f"{s['HOST']}:{s.int('ORIGIN_PORT')}",
            purge_acl=s.edge_purge_acl,
            grace=s.int("EDGE_GRACE"),
            edge_dir=str(layout.edge),
        ),
    )
    write_private(
        layout.rabbitmq / "rabbitmq.conf",
        templates.get_template("rabbitmq.conf.j2").render(
            host=s["HOST"], port=s.int("RABBITMQ_PORT"), password=s["RABBITMQ_PASSWORD"],
            consumer_timeout_ms=(s.int("TASK_TIME_LIMIT") + s.int("WORKER_SHUTDOWN_TIMEOUT") + 600) * 1000,
            prometheus_port=s.int("RABBITMQ_PROMETHEUS_PORT") if monitoring_enabled(layout) else 0,
            prometheus_ip=rabbitmq_address(layout),
        ),
    )  # fmt: skip
    plugins = "[rabbitmq_prometheus].\n" if monitoring_enabled(layout) else "[].\n"
    write_private(layout.rabbitmq / "enabled_plugins", plugins)
    write_private(layout.rabbitmq / "rabbitmq-env.conf", "# the stack passes every setting in the environment\n")
    from breakwater_tools.stack.monitoring import render_monitoring

    render_monitoring(layout, write_private)
    progs = programs(layout)
    for prog in progs:
        Path(prog.directory).mkdir(parents=True, exist_ok=True)
    write_private(
        layout.supervisor_conf,
        templates.get_template("supervisord.conf.j2").render(
            sup_dir=layout.supervisor,
            sup_sock=layout.supervisor_sock,
            log_dir=layout.logs,
            programs=progs,
            ident=s.int("APP_PORT"),
        ),
    )
    return progs
