"""Helpers shared by the routing and failover tests."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

from sqlalchemy import literal_column, select, text

from breakwater.database import causal

SERVER_IDS = {"primary": 1, "replica1": 2, "replica2": 3}


def server_id(session) -> int:
    return session.execute(select(literal_column("@@server_id"))).scalar_one()


@contextmanager
def fresh_causality(token: str = "", mode: str | None = None):
    state = causal.Causality(token=token, mode=mode or ("causal" if token else "eventual"))
    reset = causal.current.set(state)
    try:
        yield state
    finally:
        causal.current.reset(reset)


def admin_sql(node_admin, index: int, *statements: str) -> None:
    with node_admin(index) as conn, conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)


def wait_caught_up(db, timeout: float = 30.0) -> None:
    with db.primary_engine.connect() as conn:
        pos = conn.execute(text("SELECT @@gtid_binlog_pos")).scalar_one()
    for node in db.replicas:
        with node.app.connect() as conn:
            assert conn.execute(text("SELECT MASTER_GTID_WAIT(:p, :t)"), {"p": pos, "t": timeout}).scalar_one() == 0


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def metric_value(body: str, name: str, **labels: str) -> float:
    """One sample of a Prometheus text exposition (0 when absent); labels must match exactly."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in body.splitlines():
        sample, _, value = line.rpartition(" ")
        metric, _, rest = sample.partition("{")
        if metric == name and ",".join(sorted(rest.rstrip("}").split(","))) == wanted:
            return float(value)
    return 0.0


def local_statements(node: str, reason: str) -> float:
    """This process's count of statements the router sent to ``node`` for ``reason``."""
    from prometheus_client import REGISTRY

    value = REGISTRY.get_sample_value("breakwater_db_statements_total", {"node": node, "reason": reason})
    return value or 0.0


@contextmanager
def frozen_monitor(monitor):
    """Stop this process's replication monitor thread and wait until it has exited, so the view the
    test sets up (or fakes) stays as it is; the monitor resumes with a fresh check afterwards."""
    monitor.ensure_running()
    monitor.stop()
    wait_for(
        lambda: not any(t.name == "replication-monitor" and t.is_alive() for t in threading.enumerate()),
        timeout=10,
        interval=0.02,
        what="the replication monitor thread to stop",
    )
    try:
        yield monitor
    finally:
        monitor.resume()


@contextmanager
def held_replication(db, node_admin):
    """Both replicas stop applying (SQL thread stopped) while this process's monitor still has them
    in rotation, so reads here really go to replicas that are behind. Yields ``release()``, which
    starts the SQL threads again (it is also called on the way out)."""
    wait_caught_up(db)
    db.monitor.ensure_running()
    wait_for(lambda: len(db.monitor.in_rotation()) == 2, timeout=30, what="both replicas in rotation")
    with frozen_monitor(db.monitor) as monitor:
        assert len(monitor.in_rotation()) == 2, [n.reason for n in monitor.replicas]
        for i in (1, 2):
            admin_sql(node_admin, i, "STOP SLAVE SQL_THREAD")
        released = []

        def release() -> None:
            if not released:
                released.append(True)
                for i in (1, 2):
                    admin_sql(node_admin, i, "START SLAVE SQL_THREAD")

        try:
            yield release
        finally:
            release()
            wait_caught_up(db)


def gtid_waits(node_admin, index: int) -> list[str]:
    """The MASTER_GTID_WAIT statements running on node ``index`` right now."""
    with node_admin(index) as conn, conn.cursor() as cur:
        cur.execute("SELECT INFO FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT MASTER_GTID_WAIT%'")
        return [row[0] for row in cur.fetchall()]


def worker_children(stack, queue: str) -> list[int]:
    """The pool processes of the stack's Celery worker for ``queue`` (the ones a SIGKILL test kills)."""
    import subprocess

    main = int(stack.layout.worker_pidfile(queue).read_text())
    out = subprocess.run(["pgrep", "-P", str(main)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]
