"""Engines and sessions: one engine (and pool) per MariaDB node, one routing session.

``db.session`` is a :class:`~breakwater.database.router.RoutingSession`: writes go to the
primary, reads to a replica the monitor keeps in rotation. ``with db.primary():`` and
``with db.replica():`` force a node for a block.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from flask import Flask
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, scoped_session, sessionmaker

import breakwater.database.dialect  # noqa: F401  (registers mysql+pymysql_gtid)
from breakwater.database import causal
from breakwater.database.monitor import ReplicationMonitor
from breakwater.database.router import (
    PrimaryUnavailable,
    ReplicaChooser,
    RoutingSession,
    causal_wait,
    forced,
    is_disconnect,
)
from breakwater.observability.db_metrics import record_monitor, record_switch
from breakwater.settings import Settings

__all__ = ["Database", "NodeEngines", "PrimaryUnavailable"]

log = logging.getLogger(__name__)
#: choose_replica's reason when the read took one of the capped primary-fallback slots
FALLBACK_WITH_SLOT = "fallback_primary+slot"
_forced: ContextVar[str | None] = ContextVar("breakwater_forced_node", default=None)


@dataclass
class NodeEngines:
    name: str
    role: str
    host: str
    port: int
    weight: int
    app: Engine
    monitor: Engine


def _engine(url: str, timeout: float, pool_size: int = 10, read_timeout: int = 30) -> Engine:
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size * 2,
        pool_pre_ping=True,
        pool_recycle=1800,
        pool_timeout=max(timeout, 1.0) * 2,
        connect_args={
            "connect_timeout": max(1, round(timeout)),
            "read_timeout": read_timeout,
            "write_timeout": read_timeout,
        },
    )


class Database:
    def __init__(self) -> None:
        self.nodes: list[NodeEngines] = []
        self.session: scoped_session[Session] | None = None
        self.monitor: ReplicationMonitor | None = None
        self._chooser = ReplicaChooser()
        self.causal_timeout = 0.2
        self._fallbacks = 0
        self._fallback_logged = 0.0
        self._fallback_gate: threading.BoundedSemaphore | None = None

    def init_app(self, app: Flask, settings: Settings) -> None:
        timeout = settings.float("DB_CONNECT_TIMEOUT")
        self.causal_timeout = settings.float("DB_CAUSAL_WAIT")
        cap = settings.int("DB_FALLBACK_MAX")
        self._fallback_gate = threading.BoundedSemaphore(cap) if cap > 0 else None
        host, port = settings.primary_address
        # Every node tracks the GTIDs of its commits: a replica may be promoted while we run.
        nodes = [("primary", "primary", host, port, 1, "pymysql_gtid")]
        nodes += [
            (f"replica{i}", "replica", h, p, w, "pymysql_gtid")
            for i, (h, p, w) in enumerate(settings.replica_nodes, start=1)
        ]
        self.nodes = [
            NodeEngines(
                name,
                role,
                h,
                p,
                weight,
                _engine(settings.database_url(h, p, driver=driver), timeout),
                _engine(settings.database_url(h, p, "DB_MONITOR_USER"), timeout, pool_size=2, read_timeout=2),
            )
            for name, role, h, p, weight, driver in nodes
        ]
        self.monitor = ReplicationMonitor(
            ("primary", self.nodes[0].monitor),
            [(n.name, n.monitor, n.weight) for n in self.replicas],
            max_lag=settings.float("DB_MAX_LAG"),
            interval=settings.float("DB_MONITOR_INTERVAL"),
            readmit_checks=settings.int("DB_READMIT_CHECKS"),
            on_check=record_monitor,
        )
        self.monitor.on_switch = self._switched
        if settings.flag("DB_ROUTING"):
            factory = sessionmaker(class_=RoutingSession, database=self, expire_on_commit=False)
        else:
            # Baseline for `make bench-db`: one plain engine, no routing (only reads make sense there).
            target = self.replicas[0].app if self.replicas else self.primary_engine
            factory = sessionmaker(bind=target, expire_on_commit=False)
        self.session = scoped_session(factory)
        app.extensions["breakwater.db"] = self

        @app.teardown_appcontext
        def _remove_session(_exc: BaseException | None) -> None:
            if self.session is not None:
                self.session.remove()

    # ------------------------------------------------------------------ nodes
    @property
    def primary_name(self) -> str:
        """The configured primary until the monitor finds another node promoted (``breakwater db promote``)."""
        return self.monitor.primary_name if self.monitor is not None else self.nodes[0].name

    @property
    def primary_engine(self) -> Engine:
        if self.monitor is not None:
            # A process that only writes (an orders worker) must still watch the nodes, or it would
            # never learn of a promotion; after a fork the parent's monitor thread is gone.
            self.monitor.ensure_running()
        return self.engine_for(self.primary_name)

    @property
    def replicas(self) -> list[NodeEngines]:
        primary = self.primary_name
        return [n for n in self.nodes if n.name != primary]

    def _switched(self, old: str, new: str) -> None:
        for node in self.nodes:
            node.role = "primary" if node.name == new else "replica"
        record_switch(old, new)

    def engine_for(self, name: str) -> Engine:
        for node in self.nodes:
            if node.name == name:
                return node.app
        raise KeyError(name)

    # ------------------------------------------------------------------ forcing a node
    @contextmanager
    def primary(self):
        """Every statement in the block goes to the primary."""
        with forced(_forced, "primary"):
            yield

    @contextmanager
    def replica(self):
        """Reads in the block go to a replica even in a ``strong`` view (writes still go to the primary)."""
        with forced(_forced, "replica"):
            yield

    def forced_node(self) -> str | None:
        return _forced.get()

    # ------------------------------------------------------------------ choosing a replica
    def choose_replica(self, state: causal.Causality, forced_replica: bool = False) -> tuple[str, str]:
        """(node name, reason) for a plain read under the request's consistency contract."""
        assert self.monitor is not None
        self.monitor.ensure_running()
        candidates = self.monitor.in_rotation()
        if state.mode == "bounded" and state.max_lag is not None:
            candidates = [c for c in candidates if c.lag_seconds is not None and c.lag_seconds <= state.max_lag]
        if not candidates and forced_replica:
            candidates = [n for n in self.monitor.replicas if n.up]
        if not candidates:
            # Cap the spill onto the primary, so a replication incident does not become a primary
            # outage: past the cap, reads that need no causal guarantee use a replica that is up
            # even though it is out of rotation (stale, but answering).
            if self._fallback_gate is not None and not (state.token and state.mode == "causal"):
                if self._fallback_gate.acquire(blocking=False):
                    self._log_fallback()
                    return self.primary_name, FALLBACK_WITH_SLOT
                up = [n for n in self.monitor.replicas if n.up]
                if up:
                    return self._chooser.pick(up).name, "spill_capped"
            self._log_fallback()
            return self.primary_name, "fallback_primary"
        if state.token and state.mode == "causal":
            token = causal.parse(state.token)
            covering = [c for c in candidates if c.name in state.verified or causal.covers(c.positions, token)]
            if covering:
                return self._chooser.pick(covering).name, "read"
            node = self._chooser.pick(candidates)
            try:
                reached = causal_wait(self.engine_for(node.name), state.token, self.causal_timeout)
            except Exception as exc:  # the replica failed (or was busy) while we waited
                if is_disconnect(exc):
                    self.monitor.mark_down(node.name, str(getattr(exc, "orig", exc))[:120])
                reached = False
            if reached:
                state.verified.add(node.name)
                return node.name, "causal_wait"
            return self.primary_name, "fallback_primary"
        return self._chooser.pick(candidates).name, "read"

    def release_fallback_slot(self) -> None:
        if self._fallback_gate is not None:
            self._fallback_gate.release()

    def _log_fallback(self) -> None:
        """Log reads spilling onto the primary, at most every 10 s per process (the counter has them all)."""
        self._fallbacks += 1
        now = time.monotonic()
        if now - self._fallback_logged >= 10:
            log.warning(
                "no replica in rotation: %d read(s) went to the primary in the last %.0fs",
                self._fallbacks,
                now - self._fallback_logged if self._fallback_logged else 0,
            )
            self._fallbacks, self._fallback_logged = 0, now

    def dispose(self) -> None:
        if self.monitor is not None:
            self.monitor.stop()
        for node in self.nodes:
            node.app.dispose()
            node.monitor.dispose()
