"""Read/write splitting on SQLAlchemy sessions.

Where a statement goes, and why (the ``reason`` label of the Prometheus counter):

* primary, ``write``: INSERT/UPDATE/DELETE and ORM flushes;
* primary, ``transaction``: any statement after the first write of the same transaction;
* primary, ``locking_read``: SELECT ... FOR UPDATE / FOR SHARE (``with_for_update``);
* primary, ``session_state``: textual SQL that is not a plain SELECT (GET_LOCK, LAST_INSERT_ID,
  temporary tables, SET ...);
* primary, ``explicit``/``strong``: inside ``with db.primary():`` or a ``strong`` view;
* replica, ``read``: everything else, weighted round-robin over the replicas in rotation,
  pinned to one replica for the rest of the transaction;
* replica, ``spill_capped``: no replica in rotation and the primary-fallback cap
  (``BREAKWATER_DB_FALLBACK_MAX`` concurrent reads per process) is reached: a replica that is up but
  out of rotation serves the read (stale; never for a read that carries a causal token);
* replica, ``causal_wait``: the request carries a causal token the replica had not applied yet,
  and ``MASTER_GTID_WAIT`` succeeded within the bound;
* primary, ``fallback_primary``: no replica in rotation (or none within a bounded lag), or the
  causal wait timed out;
* ``retry``: an autocommit read whose replica connection failed, retried once elsewhere.
"""

from __future__ import annotations

import itertools
import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import TextClause

from breakwater.database import causal
from breakwater.observability import db_metrics

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from breakwater.database.monitor import ReplicationMonitor


class Nodes(Protocol):
    """What a routing session needs from the nodes it routes to: :class:`breakwater.database.engine.Database`
    implements it (the engine module builds on this one, never the other way round)."""

    monitor: ReplicationMonitor

    @property
    def primary_name(self) -> str: ...

    @property
    def primary_engine(self) -> Engine: ...

    def engine_for(self, name: str) -> Engine: ...

    def primary(self) -> AbstractContextManager[None]: ...

    def replica(self) -> AbstractContextManager[None]: ...

    def forced_node(self) -> str | None: ...

    def choose_replica(self, state: causal.Causality, forced_replica: bool = False) -> tuple[str, str]: ...

    def release_fallback_slot(self) -> None: ...


log = logging.getLogger(__name__)

#: MySQL client errors that mean "this server is unreachable", not "this query is wrong".
DISCONNECT_CODES = {2002, 2003, 2006, 2013, 2055, 1053, 1927}
_PLAIN_SELECT = re.compile(r"^\s*(\(\s*)*(SELECT|WITH|SHOW|DESCRIBE|EXPLAIN)\b", re.I)
_SESSION_STATE = re.compile(
    r"\b(FOR\s+UPDATE|FOR\s+SHARE|LOCK\s+IN\s+SHARE\s+MODE|GET_LOCK|RELEASE_LOCK|LAST_INSERT_ID|INTO\s+@|TEMPORARY)\b",
    re.I,
)


class PrimaryUnavailable(RuntimeError):
    """The primary cannot be reached (or was fenced read-only), so writes cannot be accepted right now."""


#: ER_OPTION_PREVENTS_STATEMENT: the node runs with read_only (a primary fenced by a promotion).
READ_ONLY_CODE = 1290


def is_read_only(exc: BaseException) -> bool:
    orig = getattr(exc, "orig", exc)
    return bool(getattr(orig, "args", None)) and orig.args[0] == READ_ONLY_CODE


def is_disconnect(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        orig = exc.orig
        code = orig.args[0] if orig is not None and getattr(orig, "args", None) else None
        return code in DISCONNECT_CODES
    return False


class RoutingSession(Session):
    """A Session whose ``get_bind`` chooses a node per statement."""

    database: Nodes  # set by Database through the sessionmaker

    def __init__(self, *args: Any, database: Nodes, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.database = database
        self._reset_routing()

    def _reset_routing(self) -> None:
        if getattr(self, "_fallback_slot", False):
            self.database.release_fallback_slot()
        self._fallback_slot = False
        self._wrote = False
        self._read_node: str | None = None
        self._reads_in_txn = 0
        self._last_node: str | None = None
        self._last_reason = ""

    # --------------------------------------------------------------- routing
    def get_bind(self, mapper=None, *, clause=None, **kw):  # type: ignore[override]
        db = self.database
        state = causal.state()
        forced = db.forced_node()
        if forced == "primary":
            return self._to_primary("explicit")
        if self._flushing or (clause is not None and getattr(clause, "is_dml", False)):
            self._wrote = True
            return self._to_primary("write")
        if self._wrote:
            return self._to_primary("transaction")
        if isinstance(clause, Select) and clause._for_update_arg is not None:
            return self._to_primary("locking_read")
        if isinstance(clause, TextClause) and (
            not _PLAIN_SELECT.match(clause.text) or _SESSION_STATE.search(clause.text)
        ):
            self._wrote = True  # session state lives on that connection: keep using it
            return self._to_primary("session_state")
        if state.mode == "strong" and forced != "replica":
            return self._to_primary("strong")
        if self._read_node is not None:
            self._reads_in_txn += 1
            self._last_node, self._last_reason = self._read_node, "read"
            return db.engine_for(self._read_node)
        name, reason = db.choose_replica(state, forced_replica=forced == "replica")
        if reason.endswith("+slot"):  # holds a capped fallback slot until the transaction ends
            self._fallback_slot, reason = True, reason.removesuffix("+slot")
        if name == db.primary_name:
            # Pin the primary for the rest of this read transaction (one slot, one snapshot).
            self._read_node = db.primary_name
            return self._to_primary(reason)
        self._read_node = name
        self._reads_in_txn = 1
        self._last_node, self._last_reason = name, reason
        state.routes.append(name)
        db_metrics.STATEMENTS.labels(name, reason).inc()
        return db.engine_for(name)

    def _to_primary(self, reason: str):
        db = self.database
        self._last_node = db.primary_name
        self._last_reason = reason
        if reason in ("fallback_primary", "strong"):
            self._reads_in_txn += 1
        state = causal.state()
        if reason in ("write", "session_state"):
            state.track_commit = True  # the dialect reads @@last_gtid after this transaction commits
        if not state.routes or state.routes[-1] != db.primary_name:
            state.routes.append(db.primary_name)
        db_metrics.STATEMENTS.labels(db.primary_name, reason).inc()
        return db.primary_engine

    # --------------------------------------------------------------- failures
    # execute(), scalars() and scalar() each reach the database on their own path in SQLAlchemy 2.1,
    # so all three go through the same guard.
    def execute(self, statement, params=None, **kw):  # type: ignore[override]
        return self._guarded(super().execute, statement, params, kw)

    def scalars(self, statement, params=None, **kw):  # type: ignore[override]
        return self._guarded(super().scalars, statement, params, kw)

    def scalar(self, statement, params=None, **kw):  # type: ignore[override]
        return self._guarded(super().scalar, statement, params, kw)

    def _guarded(self, call, statement, params, kw):
        db = self.database
        try:
            return call(statement, params, **kw)
        except OperationalError as exc:
            node = self._last_node
            # Only an autocommit-style read is retried: the first statement of a transaction that
            # has not written. A later read would see another snapshot; a write must not repeat.
            retryable = (
                is_disconnect(exc)
                and node is not None
                and not self._wrote
                and self._reads_in_txn <= 1
                and (node != db.primary_name or self._last_reason == "fallback_primary")
            )
            if node == db.primary_name and is_read_only(exc):
                db.monitor.mark_down(node, "read-only (fenced)")  # look for the promoted primary now
                raise PrimaryUnavailable(str(exc.orig)) from exc
            if node == db.primary_name and is_disconnect(exc) and not retryable:
                raise PrimaryUnavailable(str(exc.orig)) from exc
            if not retryable:
                raise
            why = str(exc.orig)[:120]
        db.monitor.mark_down(node, why)
        db_metrics.STATEMENTS.labels(node, "retry").inc()
        log.warning("read on %s failed (%s); retrying once on another node", node, why)
        self.rollback()
        try:
            if node == db.primary_name:
                # A read that fell back to a dead primary: any replica that is up will do.
                with db.replica():
                    return call(statement, params, **kw)
            return call(statement, params, **kw)
        except OperationalError as exc:
            if is_disconnect(exc) and self._last_node == db.primary_name:
                raise PrimaryUnavailable(str(exc.orig)) from exc
            raise

    def release_read_snapshot(self) -> None:
        """End a read-only transaction so the next read chooses its node afresh (e.g. with a newer
        causal token). Does nothing once the transaction has written."""
        if not self._wrote and self._read_node is not None:
            self.rollback()

    def flush(self, objects=None):  # type: ignore[override]
        try:
            return super().flush(objects)
        except OperationalError as exc:
            if is_read_only(exc):
                self.database.monitor.mark_down(self.database.primary_name, "read-only (fenced)")
            if is_disconnect(exc) or is_read_only(exc):
                raise PrimaryUnavailable(str(exc.orig)) from exc
            raise

    def commit(self) -> None:
        try:
            super().commit()
        except OperationalError as exc:
            if (is_disconnect(exc) or is_read_only(exc)) and self._last_node == self.database.primary_name:
                raise PrimaryUnavailable(str(exc.orig)) from exc
            raise
        finally:
            self._reset_routing()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._reset_routing()

    def close(self) -> None:
        """Close; a node that died after serving the last read must not turn a served request into a 500."""
        try:
            super().close()
        except DBAPIError as exc:
            if not is_disconnect(exc):
                raise
            log.warning("connection lost while closing a session (%s); discarding it", exc.orig)
            self.invalidate()
        finally:
            self._reset_routing()


class ReplicaChooser:
    """Weighted round-robin over the replicas the monitor keeps in rotation."""

    def __init__(self) -> None:
        self._counter = itertools.count()

    def pick(self, candidates: list) -> Any:
        expanded = [c for c in candidates for _ in range(max(1, c.weight))]
        return expanded[next(self._counter) % len(expanded)]


def causal_wait(engine, token: str, timeout: float) -> bool:
    """``MASTER_GTID_WAIT`` on a replica: True when it has applied ``token`` within ``timeout``."""
    started = time.perf_counter()
    try:
        with engine.connect() as conn:
            result = conn.execute(text("SELECT MASTER_GTID_WAIT(:t, :s)"), {"t": token, "s": timeout}).scalar_one()
    finally:
        db_metrics.CAUSAL_WAIT.observe(time.perf_counter() - started)
    return result == 0


@contextmanager
def forced(var, value: str) -> Iterator[None]:
    token = var.set(value)
    try:
        yield
    finally:
        var.reset(token)
