"""The database-only purchase path (BREAKWATER_FLASH_PURCHASE_PATH=database, kept for make bench-flash's
comparison), on a second gunicorn of the test stack started with that setting: a concurrent burst sells
exactly the stock, nobody over the limit, every retry idempotent, and the gate is never touched."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from breakwater_tools.stack.ports import free_ports
from routing_helpers import wait_for
from test_flash import ADDRESS, _stack_env, buy, buyers, gate_stock, make_sale, orders_of  # noqa: F401


@pytest.fixture(scope="module")
def database_path(stack) -> str:
    """A gunicorn (2 processes, 8 threads each) on the test stack's services, purchase path `database`."""
    port = free_ports(1)[0]
    env = stack.settings.child_env()
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env["BREAKWATER_FLASH_PURCHASE_PATH"] = "database"
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    with open(stack.layout.logs / "test-flash-database.log", "ab") as log:
        proc = subprocess.Popen(
            [gunicorn, "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "8", "--worker-class",
             "gthread", "--no-control-socket", "breakwater.wsgi:app"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def up():
        try:
            return requests.get(f"{url}/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_for(up, timeout=30, interval=0.3, what="the database-path gunicorn")
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)


def test_database_path_sells_exactly_the_stock_within_the_limit_and_replays(app, database_path, buyers):  # noqa: F811
    sale_id = make_sale(stock=20, limit=2)
    attempts = [(uid, cookie, uuid.uuid4().hex) for uid, cookie in buyers[:30] for _ in range(3)]

    def attempt(a):
        resp = buy(database_path, a[1], sale_id, key=a[2])
        return a[0], a[2], resp.status_code, resp.json()

    with ThreadPoolExecutor(max_workers=32) as pool:
        answers = list(pool.map(attempt, attempts))
    codes = sorted({(s, (j.get("error") or {}).get("code", "")) for _, _, s, j in answers})
    assert set(codes) <= {(201, ""), (409, "sold_out"), (409, "limit_reached")}, codes
    created = [(uid, key, j) for uid, key, s, j in answers if s == 201]
    assert len(created) == 20 and {j["status"] for _, _, j in created} == {"confirmed"}
    rows, db_stock = orders_of(app, sale_id)
    assert db_stock == 0 and len(rows) == 20 and {r.status for r in rows} == {"confirmed"}, "sold exactly the stock"
    per_user: dict[int, int] = {}
    for r in rows:
        per_user[r.user_id] = per_user.get(r.user_id, 0) + r.quantity
    assert max(per_user.values()) <= 2, "a buyer got more than the limit"
    assert per_user == {uid: sum(1 for u, _, _ in created if u == uid) for uid in per_user}, "each 201 is one order"
    assert gate_stock(app, sale_id) == 20, "the database path never touched the gate"

    # The same key again: the first answer, replayed; with another body: 422; nothing new written.
    uid, key, first = created[0]
    cookie = dict(buyers)[uid]
    time.sleep(1)  # this buyer's 3 attempts must not count against the rate limit of these 2
    again = buy(database_path, cookie, sale_id, key=key)
    assert again.status_code == 201 and again.json()["order_id"] == first["order_id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    other = buy(database_path, cookie, sale_id, key=key, body={"quantity": 2, "address": ADDRESS})
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
    # One key sent five times at once (the per-buyer rate limit allows 5 a second): one order, five 201s.
    small = make_sale(stock=5)
    same_key = "dup-" + uuid.uuid4().hex
    with ThreadPoolExecutor(max_workers=5) as pool:
        dups = list(pool.map(lambda _: buy(database_path, buyers[40][1], small, key=same_key), range(5)))
    assert [d.status_code for d in dups] == [201] * 5, [d.text for d in dups]
    assert len({d.json()["order_id"] for d in dups}) == 1
    assert len(orders_of(app, small)[0]) == 1 and sorted(orders_of(app, sale_id)[0]) == sorted(rows)
    early = make_sale(stock=3, starts=600, ends=1200)
    assert buy(database_path, buyers[41][1], early).json()["error"]["code"] == "not_started"
    assert orders_of(app, early) == ([], 3)
