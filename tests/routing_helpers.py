"""Helpers shared by the routing and failover tests."""

from __future__ import annotations

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
