"""Where statements go: replicas for plain reads, the primary for writes, locks and transactions."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest
import requests
from sqlalchemy import literal_column, select, text

from breakwater.accounts.models import Role, User
from breakwater.database import causal
from breakwater.database.consistency import consistency
from routing_helpers import (
    SERVER_IDS,
    fresh_causality,
    frozen_monitor,
    held_replication,
    metric_value,
    server_id,
    wait_for,
)

ARTICLE = {"title": "Causal test", "summary": "s", "category": "news", "body": "body"}


@pytest.fixture()
def session(db):
    with fresh_causality():
        db.monitor.ensure_running()
        yield db.session
        db.session.rollback()


def test_plain_reads_land_on_replicas_evenly(session):
    seen = Counter()
    for _ in range(200):
        seen[server_id(session)] += 1
        session.commit()  # each read is its own transaction, so each picks a replica
    assert set(seen) == {SERVER_IDS["replica1"], SERVER_IDS["replica2"]}, seen
    for count in seen.values():
        assert 70 <= count <= 130, seen  # 35%..65% of 200


def test_reads_in_one_transaction_stay_on_one_replica(session):
    ids = {server_id(session) for _ in range(10)}
    assert len(ids) == 1 and ids <= {SERVER_IDS["replica1"], SERVER_IDS["replica2"]}


def test_writes_and_everything_after_them_go_to_the_primary(session):
    user = User(name="w" + uuid.uuid4().hex[:10], password_hash="x", role=Role.VISITOR)
    session.add(user)
    session.flush()
    assert server_id(session) == SERVER_IDS["primary"]  # same transaction, after a write
    found = session.scalars(select(User).where(User.id == user.id)).one()
    assert found is user
    session.commit()
    assert causal.state().token, "a commit that wrote must leave a causal token"
    assert server_id(session) != SERVER_IDS["primary"]  # new transaction, back to a replica


def test_locking_reads_go_to_the_primary(session):
    row = session.execute(
        select(literal_column("@@server_id")).select_from(User.__table__).limit(1).with_for_update()
    ).scalar_one()
    assert row == SERVER_IDS["primary"]
    session.rollback()
    shared = session.execute(
        select(literal_column("@@server_id")).select_from(User.__table__).limit(1).with_for_update(read=True)
    ).scalar_one()
    assert shared == SERVER_IDS["primary"]


@pytest.mark.parametrize(
    ("sql", "node"),
    [
        ("SELECT @@server_id", "replica"),
        ("SELECT @@server_id FROM users LIMIT 1 FOR UPDATE", "primary"),
        ("SELECT GET_LOCK('bw-test', 0), @@server_id", "primary"),
        ("SELECT LAST_INSERT_ID(), @@server_id", "primary"),
    ],
)
def test_textual_sql_is_classified(session, sql, node):
    value = session.execute(text(sql)).one()[-1]
    if node == "primary":
        assert value == SERVER_IDS["primary"]
    else:
        assert value in (SERVER_IDS["replica1"], SERVER_IDS["replica2"])


def test_explicit_blocks_and_strong_mode(db, session):
    with db.primary():
        assert server_id(session) == SERVER_IDS["primary"]
    session.commit()
    state = causal.state()
    state.mode = "strong"
    assert server_id(session) == SERVER_IDS["primary"]
    session.commit()
    with db.replica():
        assert server_id(session) in (SERVER_IDS["replica1"], SERVER_IDS["replica2"])


def test_bounded_mode_respects_the_lag_bound(db, session):
    with frozen_monitor(db.monitor) as monitor:  # its next check would overwrite the lag we fake
        causal.state().mode, causal.state().max_lag = "bounded", 1000.0
        assert server_id(session) != SERVER_IDS["primary"]
        session.commit()
        for node in monitor.replicas:
            node.lag_seconds = 5.0  # what the monitor would report for lagging replicas
        causal.state().max_lag = 1.0
        assert server_id(session) == SERVER_IDS["primary"]
        session.commit()
        monitor.replicas[1].lag_seconds = 0.5  # only replica2 is within the bound now
        seen = set()
        for _ in range(4):
            seen.add(server_id(session))
            session.commit()
        assert seen == {SERVER_IDS["replica2"]}


def test_consistency_decorator_validates_its_arguments():
    with pytest.raises(ValueError, match="unknown consistency mode"):
        consistency("sometimes")
    with pytest.raises(ValueError, match="max_lag"):
        consistency("bounded")


def test_http_reads_report_replica_routes(http, origin, unique_name):
    assert http.post(f"{origin}/api/auth/register", json={"name": unique_name, "password": "long enough"}).ok
    routes = Counter()

    def both_replicas_served() -> bool:
        # A replica still catching up on an earlier test's writes is out of rotation for a moment: keep reading
        # (40 at a time) until both have served, each read from one of them.
        for _ in range(40):
            resp = http.get(f"{origin}/api/auth/me", timeout=5)
            assert resp.status_code == 200
            routes[resp.headers["X-DB-Route"]] += 1
        return len(routes) == 2

    wait_for(both_replicas_served, timeout=20, interval=0.5, what="both replicas serving reads")
    assert set(routes) <= {"replica1", "replica2"}, routes


def test_write_response_carries_a_causal_token(app, node_admin, http, origin, editor_api, editor_token, slug):
    resp = http.post(f"{origin}/api/auth/register", json={"name": "t" + slug, "password": "long enough"})
    token = resp.headers["X-Causal-Token"]
    gtid, _, signature = token.rpartition(".")
    assert causal.parse(gtid) and signature
    assert resp.headers["X-DB-Route"] == "primary"

    # Another client (no cookie) may send the issued token back: its reads then see the write, even
    # while every replica in this process's rotation is behind it.
    # No app context of our own (no ``db`` fixture): each test-client request must get its own, and
    # so its own session, as a gunicorn request does.
    auth = {"Authorization": f"Bearer {editor_token}"}
    with held_replication(app.extensions["breakwater.db"], node_admin):
        created = editor_api("POST", "/articles", json={**ARTICLE, "slug": slug})
        assert created.status_code == 201, created.text
        token = created.headers["X-Causal-Token"]
        path = f"/api/editor/articles/{created.json()['article']['id']}"
        without = app.test_client().get(path, headers=auth)
        assert without.status_code == 404, "the held replicas must not have the article yet"
        # (The bearer token itself is always checked on the primary; the article read is the last route.)
        assert without.headers["X-DB-Route"].split(",")[-1] in ("replica1", "replica2"), without.headers
        seen = app.test_client().get(path, headers={**auth, "X-Causal-Token": token})
        assert seen.status_code == 200, (seen.status_code, seen.headers.get("X-DB-Route"))
        assert seen.json["article"]["slug"] == slug
        assert seen.headers["X-Causal-Token"] == token
        assert seen.headers["X-DB-Route"] == "primary"  # the causal wait on a held replica timed out
        # The same token through Nginx and gunicorn.
        fresh = http.__class__()
        other = fresh.get(f"{origin}{path}", headers={**auth, "X-Causal-Token": token}, timeout=10)
        assert other.status_code == 200 and other.json()["article"]["slug"] == slug
        assert other.headers["X-Causal-Token"] == token


@pytest.mark.parametrize("token", ["not-a-gtid", "0-1-999999999", "0-1-999999999.forgedsignature"])
def test_forged_or_malformed_causal_token_is_400(http, origin, token):
    resp = http.get(f"{origin}/api/auth/me", headers={"X-Causal-Token": token}, timeout=5)
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "invalid_causal_token"


def test_metrics_count_routing_reasons(http, origin, unique_name):
    """Counts this test's own statements (a fresh stack may have served no write yet)."""

    def statements(body: str, node: str, *reasons: str) -> float:
        return sum(metric_value(body, "breakwater_db_statements_total", node=node, reason=r) for r in reasons)

    before = requests.get(f"{origin}/metrics", timeout=5).text  # from 127.0.0.1, the operator's network
    assert http.post(f"{origin}/api/auth/register", json={"name": unique_name, "password": "long enough"}).ok
    with http.__class__() as anonymous:
        anonymous.cookies.update(http.cookies)
        for _ in range(4):
            assert anonymous.get(f"{origin}/api/auth/me", timeout=5).status_code == 200
    after = requests.get(f"{origin}/metrics", timeout=5).text
    assert statements(after, "primary", "write") >= statements(before, "primary", "write") + 1
    # Replicas may still be rejoining after an earlier test (hysteresis): then the reads fell back.
    read_labels = {"replica1": ("read", "causal_wait"), "replica2": ("read", "causal_wait")}
    read_labels["primary"] = ("fallback_primary",)
    reads = sum(statements(after, n, *r) - statements(before, n, *r) for n, r in read_labels.items())
    assert reads >= 4, reads
    for node in ("replica1", "replica2"):
        assert f'breakwater_db_replica_lag_seconds{{node="{node}"}}' in after
    assert "breakwater_db_causal_wait_seconds_bucket" in after


def test_spill_onto_the_primary_is_capped(db, session):
    import threading

    saved_gate = db._fallback_gate
    db._fallback_gate = threading.BoundedSemaphore(1)
    try:
        with frozen_monitor(db.monitor) as monitor:  # its view stays while we fake an incident
            for node in monitor.replicas:
                node.in_rotation = False  # every replica left the rotation, but they still answer
            assert server_id(session) == SERVER_IDS["primary"]  # takes the only fallback slot
            for _ in range(3):  # later reads of the same transaction reuse it (no slot leak)
                assert server_id(session) == SERVER_IDS["primary"]
            other = db.session.session_factory()
            try:
                assert server_id(other) in (SERVER_IDS["replica1"], SERVER_IDS["replica2"])  # capped: stale
                other.commit()
                with fresh_causality(token=causal.state().token or "0-1-1", mode="causal"):
                    assert server_id(other) == SERVER_IDS["primary"], "causal reads never take a stale replica"
                other.commit()
                session.commit()  # releases the slot
                assert server_id(other) == SERVER_IDS["primary"]
                other.commit()
            finally:
                other.close()
    finally:
        db._fallback_gate = saved_gate
