"""Replication delayed, replicas and the primary stopped: reads stay correct and writes fail fast.

Each test puts the shared stack back the way it found it (in ``finally``), so the order of
tests does not matter.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter

import pytest
import requests
from sqlalchemy import select

from breakwater.accounts.models import Role, User
from breakwater.database.monitor import ReplicationMonitor
from routing_helpers import admin_sql, fresh_causality, frozen_monitor, local_statements, wait_caught_up, wait_for
from visitors import visitor

pytestmark = pytest.mark.slow


def _new_user(db) -> tuple[str, str]:
    """Create a user through the router; returns (name, causal token of the write)."""
    name = "c" + uuid.uuid4().hex[:10]
    with fresh_causality() as state:
        db.session.add(User(name=name, password_hash="x", role=Role.VISITOR))
        db.session.commit()
        return name, state.token


def _find(db, name: str, token: str = "", force_replica: bool = False) -> tuple[bool, list[str]]:
    with fresh_causality(token) as state:
        if force_replica:
            with db.replica():
                found = db.session.scalars(select(User).where(User.name == name)).first() is not None
        else:
            found = db.session.scalars(select(User).where(User.name == name)).first() is not None
        db.session.rollback()
        return found, list(state.routes)


def test_read_your_writes_with_replication_stopped(db, node_admin, http, origin):
    for i in (1, 2):
        admin_sql(node_admin, i, "STOP SLAVE SQL_THREAD")
    try:
        name, token = _new_user(db)
        assert token
        found, routes = _find(db, name, token)
        assert found, f"a read with the writer's token must see the write (routes {routes})"
        stale, routes = _find(db, name, force_replica=True)
        assert not stale, "the stopped replicas cannot have the row yet"
        assert routes[0].startswith("replica")

        # The same through HTTP: the token rides in the session cookie.
        user = "h" + uuid.uuid4().hex[:10]
        assert http.post(f"{origin}/api/auth/register", json={"name": user, "password": "long enough"}).ok
        me = http.get(f"{origin}/api/auth/me", timeout=5)
        assert me.status_code == 200 and me.json()["user"]["name"] == user
        assert me.headers["X-DB-Route"] == "primary"
    finally:
        for i in (1, 2):
            admin_sql(node_admin, i, "START SLAVE SQL_THREAD")
        wait_caught_up(db)
    # Once the replicas are back in rotation (after the hysteresis), the token is satisfied on a replica.
    wait_for(lambda: len(db.monitor.in_rotation()) == 2, timeout=30, what="both replicas back in rotation")
    found, routes = _find(db, name, token)
    assert found and routes[0].startswith("replica"), routes


def test_read_your_writes_with_master_delay(db, node_admin):
    for i in (1, 2):
        admin_sql(node_admin, i, "STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY=30", "START SLAVE")
    try:
        name, token = _new_user(db)
        found, routes = _find(db, name, token)
        assert found, routes
        stale, _ = _find(db, name, force_replica=True)
        assert not stale
    finally:
        for i in (1, 2):
            admin_sql(node_admin, i, "STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY=0", "START SLAVE")
        wait_caught_up(db)


def _monitor(db, **kw) -> ReplicationMonitor:
    return ReplicationMonitor(
        ("primary", db.nodes[0].monitor),
        [(n.name, n.monitor, 1) for n in db.replicas],
        max_lag=kw.get("max_lag", 1.0),
        interval=60,
        readmit_checks=kw.get("readmit_checks", 3),
    )


def test_stopped_replica_leaves_and_rejoins_with_hysteresis(db, node_admin):
    monitor = _monitor(db)
    monitor.check_once(initial=True)
    assert [n.in_rotation for n in monitor.replicas] == [True, True]
    admin_sql(node_admin, 1, "STOP SLAVE SQL_THREAD")
    try:
        monitor.check_once()
        r1, r2 = monitor.replicas
        assert not r1.in_rotation and "not replicating" in r1.reason
        assert r2.in_rotation
    finally:
        admin_sql(node_admin, 1, "START SLAVE SQL_THREAD")
    wait_caught_up(db)
    steps = []
    for _ in range(3):
        monitor.check_once()
        steps.append((monitor.replicas[0].in_rotation, monitor.replicas[0].reason))
    assert steps[0] == (False, "rejoining (1/3 healthy checks)")
    assert steps[1] == (False, "rejoining (2/3 healthy checks)")
    assert steps[2] == (True, "ok")


def test_lagging_replica_is_taken_out_by_the_lag_bound(db, node_admin):
    monitor = _monitor(db, max_lag=1.0, readmit_checks=2)
    monitor.check_once(initial=True)
    admin_sql(node_admin, 1, "STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY=5", "START SLAVE")
    try:
        _new_user(db)

        def lagging():
            monitor.check_once()
            return monitor.replicas[0].reason.startswith("lagging")

        wait_for(lagging, timeout=15, what="replica1 to report lag over 1 s")
        assert not monitor.replicas[0].in_rotation
        assert monitor.replicas[0].lag_seconds > 1.0
        assert monitor.replicas[0].lag_transactions >= 1
        assert monitor.replicas[1].in_rotation
    finally:
        admin_sql(node_admin, 1, "STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY=0", "START SLAVE")
    wait_caught_up(db)
    monitor.check_once()
    assert not monitor.replicas[0].in_rotation  # one healthy check is not enough
    monitor.check_once()
    assert monitor.replicas[0].in_rotation


class Reader(threading.Thread):
    """Streams GET /api/auth/me with one visitor's session (its cookies, its address) until stopped, recording
    every outcome."""

    def __init__(self, origin: str, cookies, address: str):
        super().__init__(daemon=True)
        self.origin, self.cookies, self.address = origin, cookies, address
        self.stop = threading.Event()
        self.statuses: Counter = Counter()
        self.routes: Counter = Counter()
        self.errors: list[str] = []

    def run(self) -> None:
        with visitor(self.address) as s:
            s.cookies.update(self.cookies)
            while not self.stop.is_set():
                try:
                    r = s.get(f"{self.origin}/api/auth/me", timeout=10)
                    self.statuses[r.status_code] += 1
                    self.routes[r.headers.get("X-DB-Route", "")] += 1
                    if r.status_code != 200:
                        self.errors.append(r.text[:200])
                except requests.RequestException as exc:
                    self.errors.append(str(exc))
                time.sleep(0.01)


def _router_view(http, origin, name: str) -> dict:
    # From 127.0.0.1, the operator's network (``http`` is a visitor of its own): /healthz's details.
    nodes = requests.get(f"{origin}/healthz", timeout=10).json()["database"]
    return next(n for n in nodes if n["name"] == name)


def test_replica_killed_during_reads_no_request_fails(stack, http, origin, db, unique_name):
    assert http.post(f"{origin}/api/auth/register", json={"name": unique_name, "password": "long enough"}).ok
    wait_caught_up(db)
    reader = Reader(origin, http.cookies, http.address)
    reader.start()
    try:
        wait_for(lambda: reader.routes["replica1"] and reader.routes["replica2"], what="reads on both replicas")
        # Killed, not shut down: frozen, then SIGKILLed (supervisord told not to restart it); no goodbye to
        # its clients, its pooled connections just die.
        at_kill = Counter(reader.routes)
        stack.supervisor.take_down("mariadb-replica1")
        wait_for(
            lambda: not _router_view(http, origin, "replica1")["router"]["in_rotation"],
            timeout=10,
            interval=0.05,
            what="the router to take replica1 out",
        )
        noticed = Counter(reader.routes)
        wait_for(lambda: reader.routes["replica2"] >= noticed["replica2"] + 20, what="reads on replica2 meanwhile")
        down_routes = Counter(reader.routes)
        down_routes.subtract(at_kill)
        after_notice = Counter(reader.routes)
        after_notice.subtract(noticed)
    finally:
        stack.supervisor.bring_back("mariadb-replica1")
    try:
        wait_for(
            lambda: _router_view(http, origin, "replica1").get("router", {}).get("in_rotation"),
            timeout=60,
            what="replica1 to rejoin the rotation",
        )
        before = reader.routes["replica1"]
        wait_for(lambda: reader.routes["replica1"] > before + 5, timeout=30, what="reads on replica1 again")
    finally:
        reader.stop.set()
        reader.join(15)
    assert reader.errors == [], reader.errors[:5]
    assert set(reader.statuses) == {200}
    # Counted from the kill on: the reads went on, on replica2 (a read that hit the dead replica first
    # and was retried shows as "replica1,replica2"); none was served by replica1 once it was out.
    assert down_routes["replica2"] >= 20, down_routes
    assert after_notice["replica1"] == 0, after_notice


def test_primary_stopped_reads_continue_writes_fail_fast(stack, http, origin, db, unique_name):
    assert http.post(f"{origin}/api/auth/register", json={"name": unique_name, "password": "long enough"}).ok
    wait_caught_up(db)
    rpc = stack.supervisor.rpc()
    rpc.stopProcess("mariadb-primary")
    try:
        for _ in range(10):
            me = http.get(f"{origin}/api/auth/me", timeout=10)
            assert me.status_code == 200, me.text
            assert me.json()["user"]["name"] == unique_name
        started = time.monotonic()
        write = http.post(f"{origin}/api/auth/register", json={"name": "p" + unique_name, "password": "long enough"})
        elapsed = time.monotonic() - started
        assert write.status_code == 503
        assert write.json()["error"]["code"] == "primary_unavailable"
        assert elapsed < 2.0, f"a write with the primary down took {elapsed:.2f}s"

        def degraded() -> bool:  # each process reuses its last round of checks for up to a second
            health = http.get(f"{origin}/healthz", timeout=10)
            assert health.status_code == 200
            return health.json()["status"] == "degraded"

        wait_for(degraded, timeout=5, what="/healthz: degraded")
    finally:
        rpc.startProcess("mariadb-primary")

    def write_ok():
        name = "r" + uuid.uuid4().hex[:10]
        resp = http.post(f"{origin}/api/auth/register", json={"name": name, "password": "long enough"})
        return resp.status_code == 201

    wait_for(write_ok, timeout=60, interval=0.5, what="writes to succeed after the primary returns")
    stack.wait_healthy(timeout=60)


def test_scalars_reads_survive_a_dead_replica(stack, db):
    """session.scalars()/scalar() take their own path in SQLAlchemy 2.1; they are retried too."""
    from sqlalchemy import func

    rpc = stack.supervisor.rpc()
    replica1 = db.monitor.node("replica1")
    with fresh_causality() as state:
        db.monitor.ensure_running()
        wait_for(lambda: len(db.monitor.in_rotation()) == 2, timeout=30, what="both replicas in rotation")
        with frozen_monitor(db.monitor):  # keep the stale view: the router must find out by itself
            rpc.stopProcess("mariadb-replica1")
            try:
                for read in (
                    lambda: db.session.scalars(select(User.id).limit(1)).first(),
                    lambda: db.session.scalar(select(func.count()).select_from(User)),
                ):
                    for _attempt in range(3):  # round-robin: replica1 comes up within two reads
                        replica1.in_rotation = True  # the stale view again (the last retry marked it down)
                        state.routes.clear()
                        retries = local_statements("replica1", "retry")
                        assert read(), state.routes
                        db.session.commit()
                        if state.routes[0] == "replica1":
                            break
                    assert state.routes == ["replica1", "replica2"], "the read must start on the dead replica"
                    assert local_statements("replica1", "retry") == retries + 1
                    assert not replica1.in_rotation, "the router marks the dead replica down"
            finally:
                rpc.startProcess("mariadb-replica1")
    wait_caught_up(db)
