"""``breakwater cluster up|down|status|crash|restore``: the stack over several hosts on this machine.

The cluster keeps its state in ``.stack/cluster/`` (its own databases, logs and emitted pages), apart from the
one-machine stack of ``make run``; ``BREAKWATER_STATE_DIR`` moves it. See :mod:`breakwater_tools.stack.cluster`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from breakwater.cli.common import fail
from breakwater_tools.stack.cluster import cluster_env
from breakwater_tools.stack.errors import StackError


def _stack(hosts: int | None = None):
    from breakwater_tools.stack import Stack

    try:
        return Stack(cluster_env(hosts), echo=click.echo)
    except ValueError as exc:
        fail(str(exc))


@click.group("cluster")
def cluster() -> None:
    """The whole stack over several hosts made of network namespaces (as root): up, down, status, crash, restore."""


@cluster.command("up")
@click.option("--hosts", type=click.IntRange(min=3), default=4, show_default=True, help="How many hosts.")
def up(hosts: int) -> None:
    """Create the hosts and start every service on its host; prints where each one listens."""
    st = _stack(hosts)
    Path(st.settings["STATIC_DIR"]).mkdir(parents=True, exist_ok=True)
    try:
        st.up()
    except StackError as exc:
        fail(str(exc))
    (st.layout.state / "cluster.json").write_text(json.dumps({"hosts": hosts}) + "\n")
    _print_hosts(st)
    click.echo(f"edge: {st.settings.edge_url}/   origin: {st.settings.origin_url}/   stop: make cluster-down")
    from breakwater_tools.stack import monitoring

    if monitoring.enabled(st.layout):
        click.echo(f"prometheus: {monitoring.url(st.layout)}/  (on this machine, the bridge's address)")


@cluster.command("down")
def down() -> None:
    """Stop every service and remove the hosts."""
    st = _stack()
    click.echo("stopped." if st.down() else "the cluster was not running.")


@cluster.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array of services.")
def status(as_json: bool) -> None:
    """Every host with its address and services; exit 1 unless all are healthy."""
    st = _stack()
    rows = st.status()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        _print_hosts(st, rows)
        if st.supervisor.pid is not None:
            from breakwater_tools.cli.stack import echo_targets

            echo_targets(st.layout)
    sys.exit(0 if all(r["healthy"] for r in rows) else 1)


@cluster.command("crash")
@click.argument("host")
def crash(host: str) -> None:
    """Kill every process of HOST (h2, or its address) at once and cut it off the network."""
    st = _stack()
    try:
        target = st.layout.cluster.host(host)
        killed = st.layout.cluster.crash(target, st.supervisor.pid)
    except StackError as exc:
        fail(str(exc))
    click.echo(f"{target.name} ({target.address}) is down: {len(killed)} processes killed, link cut")


@cluster.command("restore")
@click.argument("host")
def restore(host: str) -> None:
    """Bring HOST back on the network and start whatever of its services is not running."""
    st = _stack()
    try:
        target = st.layout.cluster.host(host)
        st.layout.cluster.connect(target)
        started = st.start_host(target)
    except StackError as exc:
        fail(str(exc))
    click.echo(f"{target.name} ({target.address}) is back" + (f"; started {', '.join(started)}" if started else ""))


def _print_hosts(st, rows: list[dict] | None = None) -> None:
    """Each host with its services; then what runs on this machine itself (Prometheus and the exporters)."""
    rows = st.status() if rows is None else rows
    places = [(h.name, f"{h.name} {h.address:<15} {', '.join(h.roles)}") for h in st.layout.cluster.hosts]
    if any(not r["host"] for r in rows):
        places.append(("", f"machine {st.layout.cluster.gateway:<15} monitoring (the bridge's address)"))
    for name, title in places:
        click.echo(title)
        for r in rows:
            if r["host"] == name:
                mark = click.style("healthy", fg="green") if r["healthy"] else click.style("down", fg="red")
                click.echo(f"    {r['name']:<18} {r['role']:<30} port={r['port'] or '-':<6} {mark}")
