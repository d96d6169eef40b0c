"""Replication monitor: which replicas may serve reads, and how far behind each one is.

One background thread per process polls the primary's ``@@gtid_binlog_pos`` and every
replica's ``@@gtid_slave_pos`` and ``SHOW SLAVE STATUS``. A replica leaves the rotation at
once when it is unreachable, not replicating (IO/SQL thread stopped, ``Seconds_Behind_Master``
NULL) or over the lag bound, and comes back only after ``readmit_checks`` consecutive healthy
checks (hysteresis), so a flapping replica does not bounce in and out.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from sqlalchemy import Engine, text

from breakwater.background import PerProcessThread
from breakwater.database import causal
from breakwater.health.gtid import transactions_behind

log = logging.getLogger(__name__)


@dataclass
class NodeState:
    name: str
    role: str
    weight: int = 1
    up: bool = False
    replicating: bool = False
    lag_seconds: float | None = None
    lag_transactions: int | None = None
    position: str = ""
    in_rotation: bool = False
    healthy_streak: int = 0
    reason: str = "not checked yet"
    checked_at: float = 0.0
    positions: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "in_rotation": self.in_rotation,
            "reason": self.reason,
            "lag_seconds": self.lag_seconds,
            "lag_transactions": self.lag_transactions,
            "position": self.position,
            "checked_at": round(self.checked_at, 3),
        }


class ReplicationMonitor:
    def __init__(
        self,
        primary: tuple[str, Engine],
        replicas: list[tuple[str, Engine, int]],
        *,
        max_lag: float,
        interval: float,
        readmit_checks: int,
        on_check=None,
    ):
        self.primary_name, self.primary_engine = primary
        self.primary = NodeState(self.primary_name, "primary")
        self.replicas = [NodeState(name, "replica", weight) for name, _engine, weight in replicas]
        self._engines = {name: engine for name, engine, _w in replicas}
        self.max_lag = max_lag
        self.interval = interval
        self.readmit_checks = readmit_checks
        self.on_check = on_check
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = PerProcessThread("replication-monitor", self._run, before_start=self._first_check)

    # ------------------------------------------------------------------ lifecycle
    def ensure_running(self) -> None:
        """Start the polling thread in this process (after a fork the parent's thread is gone)."""
        self._thread.ensure()

    def _first_check(self) -> None:
        self._stop.clear()
        self.check_once(initial=True)

    def stop(self) -> None:
        """Stop polling; the last view stays as it is (tests freeze it this way) until resume()."""
        self._stop.set()
        self._wake.set()

    def resume(self) -> None:
        self._thread.forget()
        self._thread.ensure()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.check_once()
            except Exception:  # the monitor must never die
                log.exception("replication monitor check failed")

    # ------------------------------------------------------------------ checks
    def check_once(self, initial: bool = False) -> None:
        try:
            with self.primary_engine.connect() as conn:
                self.primary.position = conn.execute(text("SELECT @@gtid_binlog_pos")).scalar_one() or ""
            self.primary.up, self.primary.reason = True, "ok"
        except Exception as exc:
            self.primary.up, self.primary.reason = False, f"down: {_short(exc)}"
        self.primary.checked_at = time.time()
        for node in self.replicas:
            self._check_replica(node, initial)
        if self.on_check:
            self.on_check(self)

    def _check_replica(self, node: NodeState, initial: bool) -> None:
        healthy, reason = False, ""
        try:
            with self._engines[node.name].connect() as conn:
                node.position = conn.execute(text("SELECT @@gtid_slave_pos")).scalar_one() or ""
                status = conn.execute(text("SHOW SLAVE STATUS")).mappings().first()
            node.up = True
            node.positions = causal.parse(node.position)
            if status is None:
                node.replicating, node.lag_seconds, reason = False, None, "replication not configured"
            else:
                lag = status["Seconds_Behind_Master"]
                node.replicating = status["Slave_IO_Running"] == "Yes" and status["Slave_SQL_Running"] == "Yes"
                node.lag_seconds = None if lag is None else float(lag)
                sql_running = status["Slave_SQL_Running"] == "Yes"
                if not self.primary.up and sql_running:
                    # The IO thread cannot connect to a dead primary, yet the replica holds everything
                    # it was sent: keep serving reads (writes fail fast elsewhere).
                    healthy, reason = True, "primary unreachable; serving the last replicated data"
                elif not node.replicating or lag is None:
                    reason = "not replicating (IO/SQL thread stopped)"
                elif node.lag_seconds > self.max_lag:
                    reason = f"lagging {node.lag_seconds:.0f}s > {self.max_lag:g}s"
                else:
                    healthy = True
            node.lag_transactions = (
                transactions_behind(self.primary.position, node.position) if self.primary.up else None
            )
        except Exception as exc:
            node.up, node.replicating, node.lag_seconds = False, False, None
            reason = f"down: {_short(exc)}"
        node.checked_at = time.time()
        self._apply(node, healthy, reason, initial)

    def _apply(self, node: NodeState, healthy: bool, reason: str, initial: bool) -> None:
        was = node.in_rotation
        if not healthy:
            node.healthy_streak = 0
            node.in_rotation = False
            node.reason = reason
        else:
            node.healthy_streak += 1
            # No hysteresis while the primary is down: there is no better node to protect.
            if node.in_rotation or initial or not self.primary.up or node.healthy_streak >= self.readmit_checks:
                node.in_rotation = True
                node.reason = reason or "ok"
            else:
                node.reason = f"rejoining ({node.healthy_streak}/{self.readmit_checks} healthy checks)"
        if was != node.in_rotation:
            log.warning("replica %s %s rotation: %s", node.name, "joined" if node.in_rotation else "left", node.reason)

    def mark_down(self, name: str, why: str) -> None:
        """The router saw a connection error: take the node out now and re-check soon."""
        if name == self.primary.name:
            self.primary.up, self.primary.reason = False, f"down: {why}"
        for node in self.replicas:
            if node.name == name and node.in_rotation:
                node.in_rotation, node.healthy_streak, node.reason = False, 0, f"down: {why}"
                log.warning("replica %s left rotation: %s", name, why)
        self._wake.set()

    # ------------------------------------------------------------------ queries
    def in_rotation(self) -> list[NodeState]:
        return [n for n in self.replicas if n.in_rotation]

    def node(self, name: str) -> NodeState | None:
        if name == self.primary.name:
            return self.primary
        return next((n for n in self.replicas if n.name == name), None)


def _short(exc: Exception) -> str:
    return str(getattr(exc, "orig", exc))[:160]
