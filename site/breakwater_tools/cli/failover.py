"""``breakwater db promote|rejoin|topology``: the stack's MariaDB roles (see breakwater_tools.stack.failover)."""

from __future__ import annotations

import json

import click

from breakwater.cli.common import fail
from breakwater_tools.stack.errors import StackError


def _stack():
    from breakwater_tools.stack import Stack

    return Stack(echo=click.echo)


@click.command("promote")
@click.option("--to", "to", default=None, help="The replica to promote (default: the one that received the most).")
@click.option("--force", is_flag=True, help="Promote --to even if another replica received more (loses commits).")
def promote(to: str | None, force: bool) -> None:
    """Make a replica the primary: fence the old one, re-point the others. Running programs follow."""
    from breakwater_tools.stack import failover

    try:
        node = failover.promote(_stack().layout, to=to, force=force, echo=click.echo)
    except StackError as exc:
        fail(str(exc))
    click.echo(node.name)


@click.command("rejoin")
@click.argument("node")
def rejoin(node: str) -> None:
    """Make NODE (a fenced former primary, or a replica that missed a promotion) a replica again."""
    from breakwater_tools.stack import failover

    try:
        failover.rejoin(_stack().layout, node, echo=click.echo)
    except StackError as exc:
        fail(str(exc))


@click.command("topology")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def topology(as_json: bool) -> None:
    """Each MariaDB node: role, read-only, GTID positions, replication and semi-sync state."""
    from breakwater_tools.stack import failover

    views = failover.status(_stack().layout)
    if as_json:
        click.echo(json.dumps([v.to_json() for v in views], indent=2))
        return
    for v in views:
        state = "down" if not v.up else ("read-only" if v.read_only else "writable")
        repl = "replicating" if v.replicating else "-"
        click.echo(
            f"{v.node.name:18} {v.node.role:8} {state:10} {repl:12} binlog={v.binlog_pos or '-'} "
            f"received={v.received or '-'} semisync={v.semisync or '-'}"
        )


@click.command("watch")
@click.option(
    "--failover-after", type=float, default=None, help="Seconds without a primary before promoting "
    "(default: BREAKWATER_DB_FAILOVER_AFTER).",
)  # fmt: skip
def watch(failover_after: float | None) -> None:
    """Promote a replica automatically once the primary has been unreachable long enough."""
    import logging

    from breakwater_tools.stack import failover

    st = _stack()
    after = failover_after if failover_after is not None else st.settings.float("DB_FAILOVER_AFTER")
    if after <= 0:
        fail("automatic failover is off; pass --failover-after SECONDS or set BREAKWATER_DB_FAILOVER_AFTER.")
    log = logging.getLogger("breakwater.failover")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    failover.watch(st.layout, after, echo=log.warning)


COMMANDS = (promote, rejoin, topology, watch)
