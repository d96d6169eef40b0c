"""Replication monitor: which replicas may serve reads, and how far behind each one is.

One background thread per process polls the primary's ``@@gtid_binlog_pos`` and every
replica's ``@@gtid_slave_pos`` and ``SHOW SLAVE STATUS``. A replica leaves the rotation at
once when it is unreachable, not replicating (IO/SQL thread stopped, ``Seconds_Behind_Master``
NULL) or over the lag bound, and comes back only after ``readmit_checks`` consecutive healthy
checks (hysteresis), so a flapping replica does not bounce in and out.

Roles are discovered, not configured (as MaxScale's MariaDB monitor does): the configured primary
stays the primary while it is up and writable. When it is down or read-only (fenced after
``breakwater db promote``), the node that is up, writable and not replicating becomes the primary
for this process, with a log line and a metric, and the old primary is watched as a replica: out
of rotation while fenced, back in once ``breakwater db rejoin`` points it at the new primary.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from sqlalchemy import Engine, text

from breakwater.background import PerProcessThread
from breakwater.common.gtid import transactions_behind
from breakwater.database import causal

log = logging.getLogger(__name__)
_PRIMARY_CHECK = text(
    "SELECT @@gtid_binlog_pos, @@read_only, (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS "
    "WHERE VARIABLE_NAME = 'RPL_SEMI_SYNC_MASTER_STATUS')"
)


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
    read_only: bool | None = None

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
        self.primary_name, _engine = primary
        self._states = {self.primary_name: NodeState(self.primary_name, "primary")}
        self._states.update({name: NodeState(name, "replica", weight) for name, _engine, weight in replicas})
        self._engines = {self.primary_name: _engine, **{name: engine for name, engine, _w in replicas}}
        self.on_switch = None  # called with (old, new) primary names when the primary changes
        self.switches = 0
        self.semisync: bool | None = None  # the primary's Rpl_semi_sync_master_status
        self.max_lag = max_lag
        self.interval = interval
        self.readmit_checks = readmit_checks
        self.on_check = on_check
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = PerProcessThread("replication-monitor", self._run, before_start=self._first_check)

    @property
    def primary(self) -> NodeState:
        return self._states[self.primary_name]

    @property
    def primary_engine(self) -> Engine:
        return self._engines[self.primary_name]

    @property
    def replicas(self) -> list[NodeState]:
        return [state for name, state in self._states.items() if name != self.primary_name]

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
        primary = self.primary
        try:
            with self.primary_engine.connect() as conn:
                position, read_only, semisync = conn.execute(_PRIMARY_CHECK).one()  # one round trip
            primary.position, primary.read_only = position or "", bool(read_only)
            primary.up = True
            primary.reason = "fenced: read-only" if primary.read_only else "ok"
            self._note_semisync(None if semisync is None else semisync == "ON")
        except Exception as exc:
            primary.up, primary.reason = False, f"down: {_short(exc)}"
        primary.checked_at = time.time()
        for node in self.replicas:
            self._check_replica(node, initial)
        if not primary.up or primary.read_only:
            self._discover_primary()
        if self.on_check:
            self.on_check(self)

    def _note_semisync(self, active: bool | None) -> None:
        if active is False and self.semisync:
            log.warning(
                "semi-synchronous replication fell back to asynchronous on %s: no replica acknowledged "
                "within rpl_semi_sync_master_timeout; commits acknowledged now may be lost if it dies",
                self.primary_name,
            )
        self.semisync = active

    def _discover_primary(self) -> None:
        """The configured primary is down or fenced: adopt the node that is up, writable and not
        replicating (the one ``breakwater db promote`` made writable), if there is exactly one."""
        writable = [n for n in self.replicas if n.up and n.read_only is False and n.reason.startswith("writable")]
        if len(writable) != 1:
            return
        old, new = self.primary_name, writable[0].name
        self.primary_name = new
        self.switches += 1
        self._states[new].role, self._states[old].role = "primary", "replica"
        self._states[new].in_rotation = False
        self._states[new].reason = "ok"
        self._states[old].in_rotation, self._states[old].healthy_streak = False, 0
        log.warning("the primary is now %s (%s was %s)", new, old, self._states[old].reason)
        if self.on_switch:
            self.on_switch(old, new)

    def _check_replica(self, node: NodeState, initial: bool) -> None:
        healthy, reason = False, ""
        try:
            with self._engines[node.name].connect() as conn:
                position, read_only = conn.execute(text("SELECT @@gtid_slave_pos, @@read_only")).one()
                status = conn.execute(text("SHOW SLAVE STATUS")).mappings().first()
            node.position, node.read_only = position or "", bool(read_only)
            node.up = True
            node.positions = causal.parse(node.position)
            if status is None:
                node.replicating, node.lag_seconds = False, None
                reason = (
                    "fenced: read-only and not replicating; `breakwater db rejoin` makes it a replica again"
                    if node.read_only
                    else "writable and not replicating (a promoted primary)"
                )
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
            # The first check only sets the starting state: a change is worth a warning, the start is not.
            log.log(
                logging.DEBUG if initial else logging.WARNING,
                "replica %s %s rotation: %s", node.name, "joined" if node.in_rotation else "left", node.reason,
            )  # fmt: skip

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
        return self._states.get(name)


def _short(exc: Exception) -> str:
    return str(getattr(exc, "orig", exc))[:160]
