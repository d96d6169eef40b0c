"""The primary's database dies on the data host while editors publish and buyers rush a flash sale: the
watcher on an app host promotes a replica on another host, the running site follows, every acknowledged write
is there, no order is written twice and the stock is exact."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter

import pytest
import requests
from sqlalchemy import bindparam, text

from fault_recorder import FaultRecorder
from routing_helpers import wait_for
from test_flash import _stack_env, buy, buyers, make_sale, orders_of, wait_written  # noqa: F401

pytestmark = pytest.mark.slow
DRAFT = {"title": "Failover draft", "summary": "A summary", "category": "tech", "body": "Written across hosts."}
STOCK = 40


class Load:
    """Editors saving drafts back to back, and buyers each trying once (the same key on an unclear answer)."""

    def __init__(self, origin: str, token: str, sale_id: int, shoppers: list[tuple[int, str]]):
        self.origin, self.token, self.sale_id = origin, token, sale_id
        self.queue = list(shoppers)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.acked: list[str] = []  # draft slugs answered 201
        self.write_codes: list[tuple[float, int]] = []
        self.accepted: dict[int, str] = {}  # buyer -> order id (202)
        self.buy_codes: list[int] = []
        self.errors: list[str] = []  # what was raised when no answer came back (code 0)
        self.threads = [threading.Thread(target=self.publish, daemon=True) for _ in range(2)]
        self.threads += [threading.Thread(target=self.shop, daemon=True) for _ in range(3)]

    def publish(self) -> None:
        with requests.Session() as http:
            http.headers["Authorization"] = f"Bearer {self.token}"
            while not self.stop.is_set():
                slug = "fo-" + uuid.uuid4().hex[:10]
                try:
                    code = http.post(f"{self.origin}/api/editor/articles", json={**DRAFT, "slug": slug}, timeout=15)
                    code = code.status_code
                except requests.RequestException as exc:
                    code = 0
                    self.errors.append(type(exc).__name__)
                self.write_codes.append((time.monotonic(), code))
                if code == 201:
                    self.acked.append(slug)
                else:
                    time.sleep(0.1)

    def shop(self) -> None:
        while not self.stop.is_set():
            with self.lock:
                if not self.queue:
                    return
                uid, cookie = self.queue.pop()
            key = uuid.uuid4().hex
            for _attempt in range(20):  # an unclear answer is retried with the same key
                try:
                    resp = buy(self.origin, cookie, self.sale_id, key=key, timeout=15)
                    code = resp.status_code
                except requests.RequestException as exc:
                    code = 0
                    self.errors.append(type(exc).__name__)
                self.buy_codes.append(code)
                if code == 202:
                    self.accepted[uid] = resp.json()["order_id"]
                if code in (202, 409):
                    break
                time.sleep(0.3)
            time.sleep(0.15)

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)


def test_the_primary_dies_under_publishes_and_a_flash_sale_and_an_app_host_promotes_a_replica(
    app,
    stack,
    cluster,
    origin,
    editor_token,
    buyers,  # noqa: F811
):
    from breakwater.extensions import db

    layout = stack.layout
    old = layout.primary
    assert old.name == "mariadb-primary" and old.host == cluster.data_host
    sale = make_sale(STOCK)
    load = Load(origin, editor_token, sale, buyers[:90])
    reads = FaultRecorder(origin, ("/api/home", f"/api/flash/{sale}", "/api/articles?page=1")).start()
    load.start()
    try:
        wait_for(lambda: len(load.acked) >= 10 and len(load.accepted) >= 10, timeout=60, what="writes before")
        reads.wait_rows("before", 10)
        stack.supervisor.take_down(old.name)  # frozen, killed, not restarted: the database is gone
        killed_at = reads.mark("fault")
        wait_for(lambda: layout.primary.name != "mariadb-primary", timeout=45, what="the watcher's promotion")
        new = layout.primary
        assert new.host in cluster.app_hosts, new  # the new primary lives on another host
        wait_for(
            lambda: any(c == 201 and t > killed_at + 1 for t, c in load.write_codes),
            timeout=30, what="publishes to succeed again through the running site",
        )  # fmt: skip
        reads.mark("recovered")
        wait_for(lambda: not load.queue, timeout=90, what="every buyer to have tried")
        reads.wait_rows("after", 10)
    finally:
        reads.stop()
        load.finish()
        stack.supervisor.bring_back(old.name, wait=False)  # it comes back fenced (read-only)
    reads.assert_all_served(max_seconds=3)
    codes = [c for _t, c in load.write_codes] + load.buy_codes
    # Clear errors only, and always an answer: a write that got none (0) hides a stalled site.
    unclear = [c for c in codes if c == 0 or (c >= 500 and c not in (502, 503, 504))]
    assert not unclear, (Counter(codes), Counter(load.errors))
    wait_written(app, sale, timeout=120)

    with app.app_context(), db.primary():
        rows = db.session.execute(
            text("SELECT slug FROM articles WHERE slug IN :s").bindparams(bindparam("s", expanding=True)),
            {"s": load.acked},
        ).all()
        db.session.rollback()
    assert {r[0] for r in rows} == set(load.acked), "an acknowledged publish was lost"
    orders, stock = orders_of(app, sale)
    users = [r[0] for r in orders]
    assert len(users) == len(set(users)), "a buyer's order was written twice"
    assert set(users) == set(load.accepted), "an accepted order was lost, or one nobody was told of was written"
    assert len(load.accepted) == STOCK and stock == 0, (len(load.accepted), stock)
    assert {r[1] for r in orders} == {"confirmed"}
