"""``breakwater stack check|up|run|down|status|render-nginx|render-edge``: the one-machine stack of ``make run``.
See :mod:`breakwater_tools.stack.lifecycle`."""

from __future__ import annotations

import contextlib
import json
import signal
import sys
from pathlib import Path

import click

from breakwater.cli.common import fail
from breakwater_tools.stack.errors import StackError


@click.group(cls=click.Group)
def stack() -> None:
    """Start, stop and inspect the local stack (MariaDB x3, Redis, gunicorn, Celery, Nginx, Varnish edge)."""


@stack.command("check")
@click.option("--no-install", is_flag=True, help="Only report missing programs; never run apt-get.")
@click.option("--browser", is_flag=True, help="Also chromium, for the browser tests.")
def stack_check(no_install: bool, browser: bool) -> None:
    """Make sure mariadbd, redis-server, nginx, varnishd + xkey (and chromium with --browser) are installed; as
    root also the unprivileged system user the services run as, able to reach the interpreter and the state."""
    from breakwater.settings import Settings
    from breakwater_tools.stack.layout import Layout
    from breakwater_tools.stack.programs import ensure_browser, ensure_programs
    from breakwater_tools.stack.users import prepare

    try:
        for prog, path in ensure_programs(install=not no_install).items():
            click.echo(f"{prog:<20} {path}")
        if browser:
            click.echo(f"{'chromium':<20} {ensure_browser(install=not no_install)}")
        layout = Layout(Settings.load())
        prepare(layout, install=not no_install, echo=click.echo)
        click.echo(f"{'services run as':<20} {layout.run_as.name}")
    except StackError as exc:
        fail(str(exc))


def banner(st) -> None:
    s = st.settings
    click.secho(f"\nBreakwater is up: {s.origin_url}/", fg="green", bold=True)
    click.echo(f"  edge:    http://{s['HOST']}:{s.int('EDGE_PORT')}/  (Varnish, the CDN stand-in)")
    click.echo(f"  health:  {s.origin_url}/healthz")
    click.echo(f"  editor:  {s['EDITOR_NAME']} / {s['EDITOR_PASSWORD']}  (log in at {s.origin_url}/login)")
    from breakwater_tools.stack.monitoring import enabled as monitoring_enabled

    if monitoring_enabled(st.layout):
        prometheus = f"http://127.0.0.1:{s.int('PROMETHEUS_PORT')}/"
        click.echo(f"  ops:     {s.origin_url}/ops/  (live charts, firing alerts; as the editor)")
        click.echo(f"  metrics: {prometheus}  (Prometheus, loopback only)")
    click.echo(f"  state:   {st.layout.state}  (`make down` stops, `make reset` wipes)\n")


@stack.command("up")
@click.option("--no-install", is_flag=True, help="Never run apt-get for missing programs.")
def stack_up(no_install: bool) -> None:
    """Start the stack in the background and wait until /healthz is ok."""
    from breakwater_tools.stack import Stack

    st = Stack(echo=click.echo)
    try:
        st.up(install=not no_install)
    except StackError as exc:
        fail(str(exc))
    banner(st)


@stack.command("run")
@click.option("--no-install", is_flag=True, help="Never run apt-get for missing programs.")
def stack_run(no_install: bool) -> None:
    """Start the stack, stream every service's log, stop everything on Ctrl-C."""
    from breakwater_tools.stack import Stack

    st = Stack(echo=_safe_echo)
    stopping = {"flag": False}

    def _stop(_signum, _frame):
        stopping["flag"] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)
    try:
        st.up(install=not no_install)
    except StackError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        _safe_echo("interrupted; everything started so far has been stopped.")
        sys.exit(130)
    try:
        banner(st)
        _safe_echo("Streaming logs; press Ctrl-C to stop the stack.\n")
        st.follow_logs(stop=lambda: stopping["flag"] or st.supervisor.pid is None)
    except (KeyboardInterrupt, BrokenPipeError):
        pass
    finally:
        # Stop first, talk second: the terminal (or a pipe) may already be gone.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        st.down(quiet=True)
        _safe_echo("\nstopped.")


def _safe_echo(message: str) -> None:
    with contextlib.suppress(OSError):
        click.echo(message)


@stack.command("render-nginx")
@click.option("--upstream", "upstreams", required=True, multiple=True, help="App server host:port (repeatable).")
@click.option("--listen", required=True, help="Listen address, e.g. 0.0.0.0:8080.")
@click.option("--static-dir", required=True, help="Folder of emitted pages.")
@click.option("--output", type=click.Path(dir_okay=False), help="Write here instead of stdout.")
@click.option("--mime-types", default="/etc/nginx/mime.types", show_default=True)
@click.option("--status-listen", default="", help="Also serve stub_status here (for the nginx exporter).")
def stack_render_nginx(
    upstreams: tuple[str, ...], listen: str, static_dir: str, output: str | None, mime_types: str, status_listen: str
) -> None:
    """Print the Nginx origin configuration for another host (used by docker-compose).

    Microcache, Cache-Control numbers and rate limits come from the BREAKWATER_* settings.
    """
    from breakwater.settings import Settings
    from breakwater_tools.stack.render import render_nginx

    text = render_nginx(
        upstreams=list(upstreams),
        listen=listen,
        static_dir=static_dir,
        nginx_dir="/var/cache/nginx",
        access_log="/dev/stdout",
        settings=Settings.load(),
        mime_types=mime_types,
        status_listen=status_listen,
    )
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(text)
    else:
        click.echo(text)


@stack.command("render-edge")
@click.option("--backend", required=True, help="Origin (Nginx) address, e.g. nginx:8080.")
@click.option("--purge-acl", required=True, help="Addresses or networks allowed to PURGE, comma separated.")
@click.option("--grace", type=int, default=86400, show_default=True, help="Seconds stale objects are kept.")
@click.option("--output", type=click.Path(dir_okay=False), help="Write here instead of stdout.")
def stack_render_edge(backend: str, purge_acl: str, grace: int, output: str | None) -> None:
    """Print the Varnish edge VCL for another host (used by docker-compose)."""
    from breakwater.settings import Settings
    from breakwater_tools.stack.render import render_edge

    try:
        acl = Settings({"EDGE_PURGE_ACL": purge_acl, "HOST": "127.0.0.1"}).edge_purge_acl
        text = render_edge(backend=backend, purge_acl=acl, grace=grace, edge_dir="/etc/varnish")
    except ValueError as exc:
        fail(str(exc))
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(text)
    else:
        click.echo(text)


@stack.command("down")
def stack_down() -> None:
    """Stop every service of the stack."""
    from breakwater_tools.stack import Stack

    st = Stack(echo=click.echo)
    click.echo("stopped." if st.down() else "the stack was not running.")


@stack.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array of services.")
def stack_status(as_json: bool) -> None:
    """Show each service with its pid, port and health; exit 1 unless all are healthy."""
    from breakwater_tools.stack import Stack

    st = Stack(echo=click.echo)
    try:
        rows = st.status()
    except (StackError, ValueError) as exc:
        fail(str(exc))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        if st.supervisor.pid is None:
            click.echo(f"The stack in {st.layout.state} is not running; start it with `make run` or `make up`.")
        for r in rows:
            mark = click.style("healthy", fg="green") if r["healthy"] else click.style("down", fg="red")
            where = f"{r['host']:<4}" if r["host"] else ""
            click.echo(
                f"{r['name']:<18} {where}{r['role']:<26} pid={r['pid'] or '-':<8} port={r['port'] or '-':<6} {mark}"
            )
        if st.supervisor.pid is not None:
            _echo_queues(st.settings)
            echo_targets(st.layout)
    sys.exit(0 if all(r["healthy"] for r in rows) else 1)


def echo_targets(layout) -> None:
    """Prometheus's scrape targets and their health (BREAKWATER_PROMETHEUS); in a cluster with each one's host
    (`breakwater cluster status` prints them too)."""
    from breakwater_tools.stack import monitoring

    if not monitoring.enabled(layout):
        return
    try:
        rows = monitoring.targets(layout)
    except (OSError, ValueError, KeyError) as exc:
        click.secho(f"prometheus targets: Prometheus unreachable ({exc})", fg="red")
        return
    click.echo(f"prometheus targets ({monitoring.url(layout)}/targets):")
    for r in rows:
        mark = click.style(r["health"], fg="green" if r["health"] == "up" else "red")
        error = f"  {r['error']}" if r["error"] else ""
        host = f"{r['host']:<8} " if r["host"] else ""
        click.echo(f"  {r['job']:<10} {host}{r['instance']:<18} {mark}{error}")


def _echo_queues(settings) -> None:
    from breakwater.queues.depth import queue_depths

    try:
        rows = queue_depths(settings)
    except Exception as exc:
        click.secho(f"queues: broker unreachable ({exc})", fg="red")
        return
    click.echo(f"queues ({settings.broker_url.split('://')[0]}):")
    for r in rows:
        click.echo(f"  {r['queue']:<10} waiting={r['messages']:<6} consumers={r['consumers']}")
