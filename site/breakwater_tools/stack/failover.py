"""Promoting a replica when the primary dies, fencing the old primary, rejoining it later.

``breakwater db promote [--to NODE]``:

1. If the old primary still answers (a planned switchover), fence it first: ``read_only=1``, then
   wait until the chosen replica has applied everything it wrote; any replica will do.
2. If it is dead, choose the replica that has *received* the most (``Gtid_IO_Pos``): with
   semi-synchronous replication (``AFTER_SYNC``) every commit the primary acknowledged reached at
   least one replica, so the one furthest ahead holds them all. A named replica that received less
   is refused unless ``--force`` (it would lose acknowledged commits).
3. Wait for it to apply what it received, record the new topology in ``.stack/mariadb/topology.json``
   and re-render every node's my.cnf (the old primary's now says ``read-only``, so if its supervisor
   restarts it, it comes back fenced, never as a second primary).
4. Stop its replication, make it writable, and point every other replica at it with
   ``MASTER_USE_GTID=slave_pos``.

The running app and workers are not restarted: each process's replication monitor sees the old
primary down or read-only, finds the one node that is writable and not replicating, and routes
writes there (causal tokens keep their meaning: the GTID domain and its sequence continue).

``breakwater db watch`` (a supervisord program when ``BREAKWATER_DB_FAILOVER_AFTER`` > 0; off by
default, since a network blip must not cost the last asynchronous commits) promotes automatically
once the primary has been unreachable for that many seconds, with a log line and a metric.

``breakwater db rejoin NODE`` turns a fenced former primary (or a replica that was down during the
promotion) into a replica of the current primary, unless it holds transactions the primary does
not have (diverged): those were never acknowledged, and the node must be rebuilt from a copy.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass

import pymysql

from breakwater.database import causal
from breakwater_tools.stack.errors import StackError
from breakwater_tools.stack.files import write_private
from breakwater_tools.stack.layout import Layout, Node
from breakwater_tools.stack.mariadb import _q, admin
from breakwater_tools.stack.render import render_nodes


@dataclass
class NodeView:
    node: Node
    up: bool
    read_only: bool = False
    binlog_pos: str = ""
    slave_pos: str = ""
    received: str = ""  # Gtid_IO_Pos merged with what it applied
    replicating: bool = False
    semisync: str = ""
    error: str = ""

    def to_json(self) -> dict:
        return {
            "name": self.node.name, "role": self.node.role, "port": self.node.port, "up": self.up,
            "read_only": self.read_only, "gtid_binlog_pos": self.binlog_pos, "gtid_slave_pos": self.slave_pos,
            "received": self.received, "replicating": self.replicating, "semisync_master": self.semisync,
            "error": self.error,
        }  # fmt: skip


def find_node(layout: Layout, name: str) -> Node:
    """``replica1``, ``mariadb-replica1`` or ``primary`` (the configured first node)."""
    for node in layout.nodes:
        if name in (node.name, node.name.removeprefix("mariadb-")):
            return node
    names = ", ".join(n.name.removeprefix("mariadb-") for n in layout.nodes)
    raise StackError(f"There is no MariaDB node {name!r}; choose one of: {names}.")


def inspect(node: Node, timeout: float = 1.0) -> NodeView:
    try:
        with closing(admin(node, timeout=timeout)) as conn, conn.cursor(pymysql.cursors.DictCursor) as cur:
            cur.execute("SELECT @@read_only AS ro, @@gtid_binlog_pos AS b, @@gtid_slave_pos AS s")
            row = cur.fetchone()
            cur.execute("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_status'")
            semi = cur.fetchone()
            cur.execute("SHOW SLAVE STATUS")
            status = cur.fetchone()
    except pymysql.Error as exc:
        return NodeView(node, up=False, error=str(exc)[:160])
    view = NodeView(node, up=True, read_only=bool(row["ro"]), binlog_pos=row["b"] or "", slave_pos=row["s"] or "")
    view.semisync = semi["Value"] if semi else ""
    if status:
        view.replicating = status["Slave_IO_Running"] == "Yes" and status["Slave_SQL_Running"] == "Yes"
        view.received = causal.merge(status.get("Gtid_IO_Pos") or "", view.slave_pos)
    else:
        view.received = view.slave_pos
    return view


def status(layout: Layout) -> list[NodeView]:
    return [inspect(node) for node in layout.nodes]


def _seq(position: str) -> int:
    return sum(seq for _server, seq in causal.parse(position).values())


def promote(
    layout: Layout, to: str | None = None, force: bool = False, echo: Callable[[str], None] = print,
    wait: float = 30.0,
) -> Node:  # fmt: skip
    old = layout.primary
    old_view = inspect(old)
    if old_view.up and not old_view.read_only:
        echo(f"{old.name} still answers: fencing it (read_only=1) before the switch")
        with closing(admin(old)) as conn, conn.cursor() as cur:
            cur.execute("SET GLOBAL read_only = 1")
            cur.execute("SELECT @@gtid_binlog_pos")
            old_view.binlog_pos = cur.fetchone()[0] or ""
    views = [inspect(n) for n in layout.replicas]
    up = [v for v in views if v.up]
    if not up:
        raise StackError("No replica answers, so there is nothing to promote; start one (`make up`) and retry.")
    best = max(up, key=lambda v: _seq(v.received))
    if to is not None:
        target = next((v for v in views if v.node == find_node(layout, to)), None)
        if target is None:
            raise StackError(f"{to} is the primary already; name a replica, or leave out --to.")
        if not target.up:
            raise StackError(f"{target.node.name} does not answer ({target.error}); start it or promote another.")
        if not old_view.up and _seq(target.received) < _seq(best.received) and not force:
            raise StackError(
                f"{target.node.name} has received less than {best.node.name} ({target.received or 'nothing'} vs "
                f"{best.received}); promoting it would lose acknowledged commits. Promote {best.node.name}, or "
                "pass --force to accept the loss."
            )
    else:
        target = best
    goal = old_view.binlog_pos if old_view.up else target.received
    echo(f"promoting {target.node.name}: waiting until it has applied {goal or 'everything'}")
    with closing(admin(target.node)) as conn, conn.cursor() as cur:
        if goal:
            cur.execute("SELECT MASTER_GTID_WAIT(%s, %s)", (goal, wait))
            if cur.fetchone()[0] != 0:
                raise StackError(
                    f"{target.node.name} did not apply {goal} within {wait:.0f}s; check its log in .stack/logs/ "
                    "and retry (nothing was changed apart from fencing the old primary)."
                )
    topology = layout.topology()
    fenced = sorted({*topology.get("fenced", []), old.name} - {target.node.name})
    _write_topology(layout, target.node.name, fenced, topology.get("epoch", 0) + 1)
    render_nodes(layout)  # the old primary's my.cnf now says read-only: a restart brings it back fenced
    with closing(admin(target.node)) as conn, conn.cursor() as cur:
        cur.execute("STOP SLAVE")
        cur.execute("RESET SLAVE ALL")
        cur.execute("SET GLOBAL read_only = 0")
    echo(f"{target.node.name} is the primary (writable, not replicating)")
    for view in views:
        if view is target:
            continue
        if view.up:
            point_at(layout, view.node, target.node)
            echo(f"{view.node.name} now replicates from {target.node.name}")
        else:
            echo(f"{view.node.name} does not answer: run `breakwater db rejoin {view.node.name}` when it is back")
    if old_view.up:
        rejoin(layout, old.name, echo)
    else:
        echo(f"{old.name} is fenced: `breakwater db rejoin {old.name}` makes it a replica once it is back")
    return target.node


def point_at(layout: Layout, node: Node, primary: Node) -> None:
    """Replicate from ``primary`` from where this node is (its gtid_slave_pos)."""
    s = layout.settings
    with closing(admin(node)) as conn, conn.cursor() as cur:
        cur.execute("STOP SLAVE")
        cur.execute(
            f"CHANGE MASTER TO MASTER_HOST={_q(conn, primary.address)}, MASTER_PORT={int(primary.port)}, "
            f"MASTER_USER={_q(conn, s['DB_REPL_USER'])}, MASTER_PASSWORD={_q(conn, s['DB_REPL_PASSWORD'])}, "
            "MASTER_CONNECT_RETRY=1, MASTER_USE_GTID=slave_pos"
        )
        cur.execute("START SLAVE")


def rejoin(layout: Layout, name: str, echo: Callable[[str], None] = print, wait: float = 30.0) -> None:
    node = find_node(layout, name)
    primary = layout.primary
    if node == primary:
        raise StackError(f"{node.name} is the primary; name a fenced node or a replica.")
    view, head = inspect(node), inspect(primary)
    if not view.up:
        raise StackError(f"{node.name} does not answer ({view.error}); start it first (`make up`), then retry.")
    if not head.up:
        raise StackError(
            f"The primary {primary.name} does not answer; promote a replica first (`breakwater db promote`)."
        )
    with closing(admin(node)) as conn, conn.cursor() as cur:
        cur.execute("SET GLOBAL read_only = 1")
    own = view.binlog_pos if not view.replicating else view.slave_pos
    if not causal.covers(head.binlog_pos, own):
        raise StackError(
            f"{node.name} holds transactions the primary does not have ({own} vs {head.binlog_pos}): they were "
            "never acknowledged to a client. Rebuild it from a copy of the primary (on a local stack: `make reset`)."
        )
    with closing(admin(node)) as conn, conn.cursor() as cur:
        cur.execute("STOP SLAVE")
        if not view.replicating:  # a former primary (or a stale replica): start where its own data ends
            cur.execute("SET GLOBAL gtid_slave_pos = %s", (causal.merge(view.slave_pos, view.binlog_pos),))
    point_at(layout, node, primary)
    with closing(admin(node)) as conn, conn.cursor() as cur:
        cur.execute("SELECT MASTER_GTID_WAIT(%s, %s)", (head.binlog_pos, wait))
        caught_up = cur.fetchone()[0] == 0
    topology = layout.topology()
    if topology:
        _write_topology(layout, topology["primary"], [n for n in topology.get("fenced", []) if n != node.name],
                        topology.get("epoch", 0))  # fmt: skip
    echo(f"{node.name} replicates from {primary.name}" + ("" if caught_up else " (still catching up)"))


def _write_topology(layout: Layout, primary: str, fenced: list[str], epoch: int) -> None:
    # the service user's folder (the watcher writes it too): never through a link planted there
    text = json.dumps({"primary": primary, "fenced": fenced, "epoch": epoch, "at": time.time()}) + "\n"
    write_private(layout.topology_file, text, 0o644)


def watch(
    layout: Layout, after: float, echo: Callable[[str], None] = print, stop: Callable[[], bool] = lambda: False,
    interval: float = 0.5,
) -> None:  # fmt: skip
    """Promote the best replica once the primary has not answered for ``after`` seconds in a row."""
    from breakwater.observability.db_metrics import AUTO_PROMOTIONS

    down_since: float | None = None
    armed = False  # only after the primary answered once: a booting stack is not a dead primary
    echo(f"watching {layout.primary.name}: a replica is promoted after {after:g}s without an answer")
    while not stop():
        primary = layout.primary
        view = inspect(primary, timeout=min(1.0, after / 2))
        now = time.monotonic()
        if view.up:
            if not armed:
                echo(f"{primary.name} answers: armed")
            down_since, armed = None, True
        elif not armed:
            pass
        elif down_since is None:
            down_since = now
            echo(f"{primary.name} does not answer ({view.error}); promoting in {after:g}s unless it comes back")
        elif now - down_since >= after:
            echo(f"automatic failover: {primary.name} unreachable for {now - down_since:.1f}s, promoting a replica")
            try:
                node = promote(layout, echo=echo)
            except StackError as exc:
                echo(f"automatic failover failed: {exc}")
            else:
                AUTO_PROMOTIONS.labels(node.name).inc()
                echo(f"automatic failover done: {node.name} is the primary")
            down_since = None
        time.sleep(interval)
