"""The flash sale against the real stack: Nginx, gunicorn, the Redis gate, the real Celery worker and the
primary. Stock N sells exactly N, at most the limit per buyer, every retry is idempotent, nothing
accepted is lost when the worker dies or the gate forgets."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select, text

from flash_helpers import (
    ADDRESS,
    BREAKWATER,
    buy,
    cli_env,
    client_for,
    gate_stock,
    iso,
    make_buyers,
    make_sale,
    orders_of,
    read_as,
    wait_written,
)
from routing_helpers import held_replication, wait_for, worker_children


@pytest.fixture(scope="module")
def buyers(app):
    """300 signed-in visitors, each sending from an address of its own (flash_helpers.buy)."""
    return make_buyers(app, 300)


@pytest.fixture(scope="module", autouse=True)
def _stack_env(stack):
    with cli_env(stack):
        yield


def wait_drained(app, settings, queue: str, timeout: float = 60) -> None:
    """Until the stack's ``queue`` is empty and its worker holds nothing (running, prefetched, or waiting for a
    retry's countdown), twice in a row: whatever was sent to it has run to its end."""
    import kombu

    celery = app.extensions["celery"]
    worker = f"{queue}-{settings.int('APP_PORT')}@{os.uname().nodename}"  # stack/render.py worker_command
    calm: list[bool] = []

    def ready() -> int | None:
        try:
            with kombu.Connection(settings.broker_url, connect_timeout=2) as conn:
                return conn.default_channel.queue_declare(queue, passive=True).message_count
        except Exception:
            return None

    def idle() -> bool:
        inspect = celery.control.inspect(destination=[worker], timeout=2.0)
        try:
            replies = [inspect.active(), inspect.reserved(), inspect.scheduled()]
        except Exception:
            return False
        return all(reply and worker in reply and not reply[worker] for reply in replies)

    def drained() -> bool:
        calm.append(ready() == 0 and idle())
        return calm[-2:] == [True, True]

    assert settings.broker_url.startswith("amqp"), "the stack's broker is RabbitMQ"
    wait_for(drained, timeout=timeout, interval=0.5, what=f"the {queue} queue to drain and {worker} to go idle")


def test_a_thousand_attempts_by_300_buyers_sell_exactly_the_stock(app, origin, buyers):
    """Each buyer from an address of its own, three or four attempts each (FLASH_USER_RATE allows five a
    second), the default limits: nobody within their own limit is refused (no 429)."""
    sale_id = make_sale(stock=50)
    attempts = [buyers[i % len(buyers)][1] for i in range(1000)]

    with ThreadPoolExecutor(max_workers=48) as pool:
        statuses = list(pool.map(lambda c: buy(origin, c, sale_id).status_code, attempts))
    counts = {s: statuses.count(s) for s in set(statuses)}
    assert set(counts) <= {202, 409}, counts
    assert counts[202] == 50, counts
    wait_written(app, sale_id)
    rows, db_stock = orders_of(app, sale_id)
    confirmed = [r for r in rows if r.status == "confirmed"]
    assert len(confirmed) == 50 and sum(r.quantity for r in confirmed) == 50
    per_user = {}
    for r in confirmed:
        per_user[r.user_id] = per_user.get(r.user_id, 0) + r.quantity
    assert max(per_user.values()) == 1, "a buyer got more than the limit"
    assert db_stock == 0 and gate_stock(app, sale_id) == 0
    # Sold out: every process rejects without running the gate script.
    evals = app.extensions["breakwater.redis"].info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
    for _ in range(20):
        resp = buy(origin, buyers[0][1], sale_id)
        assert resp.status_code == 409 and resp.json()["error"]["code"] in ("sold_out", "limit_reached")
    after = app.extensions["breakwater.redis"].info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
    assert after - evals <= 4, "sold-out attempts kept running the gate script"


def test_idempotency_key_replays_rejects_a_different_body_and_an_in_flight_duplicate(app, origin, buyers):
    sale_id = make_sale(stock=5, limit=2)
    uid, cookie = buyers[1]
    key = "idem-" + uuid.uuid4().hex
    first = buy(origin, cookie, sale_id, key)
    assert first.status_code == 202, first.text
    again = buy(origin, cookie, sale_id, key)
    assert again.status_code == 202 and again.json()["order_id"] == first.json()["order_id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    other = buy(origin, cookie, sale_id, key, body={"quantity": 2, "address": ADDRESS})
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
    # The first request with a key still running: a second one with the same key waits its turn (409).
    from breakwater.flash.gate import body_hash, idem_key

    busy = "busy-" + uuid.uuid4().hex
    body = {"quantity": 1, "address": ADDRESS}
    app.extensions["breakwater.redis"].set(idem_key(sale_id, uid, busy), f"inflight {body_hash(body)}", ex=30)
    dup = buy(origin, cookie, sale_id, busy, body=body)
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "request_in_flight"
    with client_for(origin, cookie) as client:
        missing = client.post(
            f"{origin}/api/flash/{sale_id}/orders", json=body, cookies={"bw_session": cookie}, timeout=10
        )
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "missing_idempotency_key"
    wait_written(app, sale_id)
    rows, _ = orders_of(app, sale_id)
    assert len(rows) == 1, "a replay created a second order"


def test_one_idempotency_key_sent_five_times_at_once_makes_one_order(app, origin, buyers):
    """A client's retries racing each other through the gate: the same purchase, the same key, five requests
    released together. One order; every answer is that order (202, a replay) or "still in flight" (409)."""
    sale_id = make_sale(stock=5, limit=5)  # room for five orders: a lost race would show as a second one
    _, cookie = buyers[200]
    key = "race-" + uuid.uuid4().hex
    attempts = 5  # FLASH_USER_RATE allows a buyer five attempts a second
    start = threading.Barrier(attempts)

    def attempt(_):
        start.wait(timeout=30)
        return buy(origin, cookie, sale_id, key)

    with ThreadPoolExecutor(max_workers=attempts) as pool:
        answers = list(pool.map(attempt, range(attempts)))
    seen = [(r.status_code, r.json().get("order_id") or r.json()["error"]["code"]) for r in answers]
    assert {code for code, _ in seen} <= {202, 409}, seen
    assert all(what == "request_in_flight" for code, what in seen if code == 409), seen
    assert len({what for code, what in seen if code == 202}) == 1, f"more than one order for one key: {seen}"
    wait_written(app, sale_id)
    rows, stock = orders_of(app, sale_id)
    assert len(rows) == 1 and stock == 4 and gate_stock(app, sale_id) == 4, (rows, seen)


def test_rejections_are_clear_and_write_nothing(app, origin, buyers):
    sale_id = make_sale(stock=3)
    cookie = buyers[2][1]
    cases = [
        ({"quantity": 0, "address": ADDRESS}, 400, "invalid_quantity"),
        ({"quantity": 1, "address": {**ADDRESS, "region_code": "110000"}}, 400, "invalid_region"),
        ({"quantity": 1, "address": {**ADDRESS, "region_code": "999999"}}, 400, "invalid_region"),
        ({"quantity": 1, "address": {**ADDRESS, "phone": "call me"}}, 400, "invalid_address"),
        ({"quantity": 1}, 400, "invalid_address"),
    ]
    for i, (body, status, code) in enumerate(cases):  # a buyer each: the per-buyer rate limit counts every try
        resp = buy(origin, buyers[100 + i][1], sale_id, body=body)
        assert (resp.status_code, resp.json()["error"]["code"]) == (status, code), body
    with client_for(origin) as client:
        anonymous = client.post(
            f"{origin}/api/flash/{sale_id}/orders", json={"quantity": 1, "address": ADDRESS},
            headers={"Idempotency-Key": uuid.uuid4().hex}, timeout=10,
        )  # fmt: skip
    assert anonymous.status_code == 401
    assert buy(origin, buyers[110][1], 987654).status_code == 404
    assert buy(origin, cookie, sale_id).status_code == 202
    limit = buy(origin, cookie, sale_id)
    assert limit.status_code == 409 and limit.json()["error"]["code"] == "limit_reached"
    # A buyer at the limit is answered from the web process's memory: no gate script, no idempotency
    # record (each of the two gunicorn processes may ask the gate once to learn it).
    from breakwater.flash.gate import idem_key

    keys = [uuid.uuid4().hex for _ in range(4)]
    for key in keys:
        assert buy(origin, cookie, sale_id, key).json()["error"]["code"] == "limit_reached"
    gated = [k for k in keys if app.extensions["breakwater.redis"].exists(idem_key(sale_id, buyers[2][0], k))]
    assert len(gated) <= 1, "attempts of a buyer at the limit kept going to the gate"
    wait_written(app, sale_id)
    rows, stock = orders_of(app, sale_id)
    assert len(rows) == 1 and stock == 2 and gate_stock(app, sale_id) == 2


def test_nothing_is_accepted_outside_the_window(app, origin, buyers):
    early = make_sale(stock=3, starts=600, ends=1200)
    late = make_sale(stock=3, starts=-1200, ends=-600)
    for sale_id, code in ((early, "not_started"), (late, "ended")):
        resp = buy(origin, buyers[3][1], sale_id)
        assert resp.status_code == 403 and resp.json()["error"]["code"] == code
        assert gate_stock(app, sale_id) == 3 and orders_of(app, sale_id) == ([], 3)


def test_stock_raised_mid_sale_sells_the_new_units_and_cannot_drop_below_sold(app, origin, buyers, editor_api):
    sale_id = make_sale(stock=2)
    assert [buy(origin, c, sale_id).status_code for _, c in buyers[10:13]] == [202, 202, 409]
    wait_written(app, sale_id)
    assert editor_api("PATCH", f"/flash/sales/{sale_id}", json={"stock": 1}).status_code == 400
    assert editor_api("PATCH", f"/flash/sales/{sale_id}", json={"stock": 4}).status_code == 200
    assert [buy(origin, c, sale_id).status_code for _, c in buyers[13:16]] == [202, 202, 409]
    wait_written(app, sale_id)
    rows, stock = orders_of(app, sale_id)
    assert len([r for r in rows if r.status == "confirmed"]) == 4 and stock == 0


def test_order_status_is_the_buyers_own_and_read_causally(app, stack, origin, buyers, node_admin):
    """Right after the 202 the buyer reads the order it points to: pending (only the gate knows it yet), then
    confirmed as soon as it is written, even through a replica that has not applied the write."""
    sale_id = make_sale(stock=2)
    (_, owner), (_, stranger) = buyers[20], buyers[21]
    stack.supervisor.rpc().stopProcess("worker-orders")  # accepted, not written: provably pending
    try:
        accepted = buy(origin, owner, sale_id)
        assert accepted.status_code == 202, accepted.text
        order_id, status_path = accepted.json()["order_id"], accepted.json()["status_url"]
        first = read_as(origin + status_path, owner)
        assert first.status_code == 200, first.text
        assert first.json()["order"] == {"id": order_id, "sale_id": sale_id, "quantity": 1, "status": "pending"}
        assert read_as(origin + status_path, stranger).status_code == 404
        # The worker writes it while both replicas apply nothing (and stay in this process's rotation): the
        # buyer's next read starts on a replica without the order and must still find it, confirmed.
        with held_replication(app.extensions["breakwater.db"], node_admin):
            stack.supervisor.start("worker-orders")
            wait_written(app, sale_id)
            client = app.test_client()
            client.set_cookie("bw_session", owner)
            read = client.get(status_path)
            assert read.status_code == 200, read.text
            assert read.json["order"]["id"] == order_id and read.json["order"]["status"] == "confirmed"
            routes = read.headers["X-DB-Route"].split(",")
            assert routes[0].startswith("replica") and "primary" in routes, routes  # the replica had not got it
    finally:
        stack.supervisor.start("worker-orders")  # nothing happens if it runs
    mine = read_as(f"{origin}/api/orders", owner).json()["orders"]
    assert (order_id, "confirmed") in [(o["id"], o["status"]) for o in mine], mine


def test_the_orders_worker_killed_mid_backlog_loses_and_duplicates_nothing(app, stack, origin, buyers, node_admin):
    """The orders pool SIGKILLed in the middle of a write with the whole backlog unwritten: every order is
    written afterwards, once. The test holds the sale's stock row, so the first write waits on it inside its
    transaction and the rest wait in the queue (unheld, the pool writes 40 orders in a fraction of a second)."""
    sale_id = make_sale(stock=40)
    gate = app.extensions["breakwater.flash.gate"]

    def writes_waiting() -> int:
        with node_admin(0) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT COUNT(*) FROM information_schema.INNODB_TRX"
                " WHERE trx_state = 'LOCK WAIT' AND trx_query LIKE 'UPDATE flash_stock%'"
            )
            return cur.fetchone()[0]

    with app.extensions["breakwater.db"].primary_engine.connect() as hold:
        hold.execute(text("SELECT stock FROM flash_stock WHERE sale_id = :s FOR UPDATE"), {"s": sale_id})
        try:
            with ThreadPoolExecutor(max_workers=16) as pool:
                statuses = list(pool.map(lambda b: buy(origin, b[1], sale_id).status_code, buyers[30:70]))
            assert statuses.count(202) == 40
            wait_for(writes_waiting, timeout=30, interval=0.05, what="the first write to wait on the stock row")
            victims = worker_children(stack, "orders")
            for pid in victims:
                os.kill(pid, signal.SIGKILL)
            written_at_kill, pending_at_kill = len(orders_of(app, sale_id)[0]), len(gate.pending(sale_id))
        finally:
            hold.rollback()
    # Provably mid-backlog: nothing written, all 40 accepted orders pending, one of them inside its write.
    assert victims and (written_at_kill, pending_at_kill) == (0, 40), (victims, written_at_kill, pending_at_kill)
    wait_written(app, sale_id)
    rows, stock = orders_of(app, sale_id)
    assert len(rows) == 40 and {r.status for r in rows} == {"confirmed"} and stock == 0


def restart_redis_losing_its_data(stack, down_s: float = 1.0) -> None:
    """Stop the stack's gate Redis (supervisor), delete its AOF and RDB files, start it again: empty."""
    import shutil

    rpc = stack.supervisor.rpc()
    rpc.stopProcess("redis")
    aof = stack.layout.redis / "appendonlydir"
    assert aof.is_dir(), "the gate Redis keeps an append-only file"
    shutil.rmtree(aof)
    (stack.layout.redis / "dump.rdb").unlink(missing_ok=True)
    time.sleep(down_s)  # a moment without Redis at all
    rpc.startProcess("redis")


def test_redis_restarted_without_its_data_mid_sale_never_oversells_and_reconcile_repairs_it(app, stack, origin, buyers):
    """Orders accepted and still queued, the gate Redis restarted with its state lost, buyers and readers
    meanwhile: the gate reloads the database's stock and forgets who bought, so it accepts too much; the
    database refuses the excess (no oversell), reads never fail, and reconcile puts the gate back in line."""
    sale_id = make_sale(stock=20)
    early, late = buyers[80:90], buyers[140:180]
    client = app.extensions["breakwater.redis"]
    rpc = stack.supervisor.rpc()
    rpc.stopProcess("worker-orders")  # the first orders stay in flight (queued) across the restart
    reads: list[tuple[str, int]] = []
    writes: list[int] = []
    try:
        first = [buy(origin, c, sale_id) for _, c in early]
        assert [r.status_code for r in first] == [202] * 10
        client.set("bw:test:restart-marker", "1")
        stop = threading.Event()

        def reader() -> None:
            paths = (f"/api/flash/{sale_id}", "/api/home", "/api/orders", first[0].json()["status_url"])
            while not stop.is_set():
                for path in paths:
                    try:
                        resp = read_as(origin + path, early[0][1])
                        reads.append((path, resp.status_code))
                    except requests.RequestException as exc:
                        reads.append((path, repr(exc)))
                time.sleep(0.05)

        def buyer(cookie: str, pace: float = 0.0) -> requests.Response:
            time.sleep(pace)  # the late buyers arrive over ~3 s, before, during and after the restart
            for _ in range(15):  # a client retrying on 503 (and 429), after the Retry-After it was given
                resp = buy(origin, cookie, sale_id)
                writes.append(resp.status_code)
                if resp.status_code not in (429, 503):
                    return resp
                time.sleep(float(resp.headers.get("Retry-After", "1")))
            return resp

        threads = [threading.Thread(target=reader, daemon=True)]
        threads[0].start()
        with ThreadPoolExecutor(max_workers=2) as pool:
            late_answers = pool.map(lambda b: buyer(b[1], pace=0.15), late)
            time.sleep(0.5)
            restart_redis_losing_its_data(stack)
            late_answers = list(late_answers)
        wait_for(lambda: client.ping(), timeout=10, what="the gate Redis back")
        assert client.get("bw:test:restart-marker") is None, "Redis came back with its data"
        # The gate forgot who bought: the early buyers try again.
        repeat = [buyer(c) for _, c in early]
        time.sleep(0.5)
        stop.set()
        threads[0].join(15)
    finally:
        rpc.startProcess("worker-orders")
    after = [r for r in late_answers + repeat if r.status_code == 202]
    accepted = len(first) + len(after)
    assert accepted > 20, f"the forgetful gate accepted more than the stock ({accepted}): the test needs that"
    assert set(writes) <= {202, 409, 429, 503} and 503 in writes, sorted(set(writes))  # never a 500
    bad_reads = [r for r in reads if not isinstance(r[1], int) or r[1] >= 500]
    assert reads and not bad_reads, bad_reads[:10]

    def all_written():
        return len(orders_of(app, sale_id)[0]) == accepted

    wait_for(all_written, timeout=90, interval=0.3, what="every accepted order written or refused")
    rows, stock = orders_of(app, sale_id)
    confirmed = [r for r in rows if r.status == "confirmed"]
    assert len(confirmed) == 20 and stock == 0, "the database sold exactly the stock"
    assert len({r.user_id for r in confirmed}) == 20, "nobody holds two units"
    from breakwater.extensions import db

    with app.app_context(), db.primary():
        failed_ids = set(db.session.scalars(text(
            "SELECT id FROM flash_orders WHERE sale_id = :s AND status = 'failed'"), {"s": sale_id}))  # fmt: skip
        db.session.rollback()
    assert len(failed_ids) == accepted - 20
    # Orders refused after the restart gave their unit back to the new gate; the lost ones could not.
    gate_before = gate_stock(app, sale_id)
    assert gate_before == len(failed_ids & {r.json()["order_id"] for r in after}) and gate_before > 0
    result = subprocess.run([BREAKWATER, "flash", "reconcile", "--sale", str(sale_id)], capture_output=True, text=True)
    assert result.returncode == 0 and '"stock_repaired"' in result.stdout, result.stdout + result.stderr
    assert gate_stock(app, sale_id) == 0 == stock, "reconcile put the gate's stock back in line with the database"
    for uid, _ in early[:3]:  # each buyer's count rebuilt from the database
        assert int(client.get(f"bw:{{flash:{sale_id}}}:u:{uid}") or 0) == 1
    # A browser with an order here carries bw_fo, set on its 202: its attempts pass the sold-out marker on to the
    # app (flash/markers.py), whose answer is the buyer's limit.
    with client_for(origin, early[0][1]) as client:  # from that buyer's own address
        again = client.post(
            f"{origin}/api/flash/{sale_id}/orders", json={"quantity": 1, "address": ADDRESS},
            headers={"Idempotency-Key": uuid.uuid4().hex}, cookies={"bw_session": early[0][1], "bw_fo": str(sale_id)},
            timeout=30,
        )  # fmt: skip
    assert again.json()["error"]["code"] == "limit_reached"
    assert buy(origin, buyers[190][1], sale_id).json()["error"]["code"] == "sold_out"
    status = subprocess.run([BREAKWATER, "flash", "status", str(sale_id)], capture_output=True, text=True)
    assert "confirmed 20" in status.stdout and "stock_db 0" in status.stdout, status.stdout
    stack.wait_healthy(timeout=90)  # the rest of the session shares this Redis


def test_the_sale_page_is_static_and_the_api_cacheable(app, origin, edge, settings):
    from breakwater.pages.builder import Builder

    sale_id = make_sale(stock=3)
    static = Path(settings["STATIC_DIR"]) / "flash" / str(sale_id) / "index.html"
    with app.app_context():
        Builder(app).rebuild([f"flash:{sale_id}"])
    wait_for(static.exists, timeout=10, what="the emitted sale page")
    page = requests.get(f"{origin}/flash/{sale_id}", timeout=10)
    assert page.status_code == 200 and page.headers.get("X-Origin-Cache") == "STATIC"
    assert "立即抢购" in page.text and "data-flash-sale" in page.text
    api = requests.get(f"{edge}/api/flash/{sale_id}", timeout=10)
    assert api.status_code == 200 and api.json()["sale"]["stock_left"] == 3 and "server_time" in api.json()
    assert "max-age=1" in api.headers["Cache-Control"]
    # Cached at the edge for that second: a MISS that fetches, then a HIT. A pair slower than the second
    # proves nothing (the copy may have expired in between) and is sent again after a purge.
    pairs = []
    for _ in range(10):
        assert requests.request("PURGE", f"{edge}/api/flash/{sale_id}", timeout=10).status_code == 200
        started = time.monotonic()
        pair = [requests.get(f"{edge}/api/flash/{sale_id}", timeout=10).headers["X-Edge-Cache"] for _ in range(2)]
        pairs.append((*pair, round(time.monotonic() - started, 2)))
        if pairs[-1][2] < 0.8:
            break
    assert pairs[-1][:2] == ("MISS", "HIT"), pairs
    assert requests.get(f"{origin}/api/flash/987654", timeout=10).status_code == 404


def test_when_redis_and_the_database_disagree_the_database_wins(app, origin, buyers):
    """The gate believes in 5 units, the database has 2: two orders confirmed, three failed with their
    units returned, the database's stock never below zero."""
    sale_id = make_sale(stock=2)
    app.extensions["breakwater.redis"].set(f"bw:{{flash:{sale_id}}}:stock", 5)
    statuses = [buy(origin, c, sale_id).status_code for _, c in buyers[120:125]]
    assert statuses == [202] * 5
    wait_written(app, sale_id)
    rows, stock = orders_of(app, sale_id)
    assert stock == 0 and sorted(r.status for r in rows) == ["confirmed"] * 2 + ["failed"] * 3
    assert gate_stock(app, sale_id) == 3, "the failed orders' units went back to the gate"


def test_an_acceptance_whose_enqueue_was_lost_is_written_by_the_reconciler(app, buyers):
    """The web process died between the gate's acceptance and the enqueue: the accepted request is
    still in Redis, and the reconciler sends it."""
    from breakwater.flash.gate import body_hash

    sale_id = make_sale(stock=3)
    uid = buyers[130][0]
    gate = app.extensions["breakwater.flash.gate"]
    body = {"quantity": 1, "address": ADDRESS}
    key = "lost-" + uuid.uuid4().hex
    assert gate.claim(sale_id, uid, key, body_hash(body)) is None
    payload = {
        "order_id": f"{sale_id:08x}{uuid.uuid4().hex[:24]}", "sale_id": sale_id, "user_id": uid, "quantity": 1,
        "idempotency_key": key, "address": ADDRESS, "accepted_ms": int(time.time() * 1000),
    }  # fmt: skip
    assert gate.accept(sale_id, uid, key, body_hash(body), payload["accepted_ms"], payload).outcome == "accepted"
    # ... and nothing was enqueued. The reconciler finds it and sends it.
    result = subprocess.run([BREAKWATER, "flash", "reconcile", "--sale", str(sale_id)], capture_output=True, text=True)
    assert result.returncode == 0 and '"requeued": 1' in result.stdout, result.stdout + result.stderr
    wait_written(app, sale_id)
    rows, stock = orders_of(app, sale_id)
    assert [r.status for r in rows] == ["confirmed"] and stock == 2


def test_the_drift_check_measures_no_drift_mid_burst_and_a_gate_set_off_exactly(app, origin, buyers):
    """flash.orders.measure_drift, as the drift-check task runs it, against the real gate and primary: measured
    over and over while 80 buyers rush 60 units and the orders worker writes them, the gate is never off (the
    requests in flight between the gate and the database are counted, not mistaken for drift); then the gate
    believes in 3 units too many and one buyer's count is off by one, and it measures exactly that; the
    reconciler repairs it, and it measures nothing again. It repairs nothing itself."""
    from breakwater.extensions import db
    from breakwater.flash.gate import user_key
    from breakwater.flash.models import FlashSale
    from breakwater.flash.orders import measure_drift, reconcile
    from breakwater.flash.tasks import drift_check

    sale_id = make_sale(stock=60)
    gate = app.extensions["breakwater.flash.gate"]

    def measure() -> dict:
        with app.app_context(), db.primary():
            return measure_drift(db.session, gate, sale_id)

    stop, reports = threading.Event(), []

    def watch() -> None:
        while not stop.is_set():
            reports.append(measure())
            time.sleep(0.01)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        with ThreadPoolExecutor(max_workers=16) as pool:
            statuses = list(pool.map(lambda b: buy(origin, b[1], sale_id).status_code, buyers[200:280]))
        wait_written(app, sale_id)
    finally:
        stop.set()
        watcher.join(timeout=10)
    assert statuses.count(202) == 60, {s: statuses.count(s) for s in set(statuses)}
    exact = [r for r in reports if r["loaded"] and r["quiet"]]  # no order written between the two reads
    assert sum(1 for r in exact if r["pending"]) >= 3, f"too few measurements mid-burst: {reports}"
    off = [r for r in exact if r["stock_drift"] or r["buyers_off"]]
    assert not off, f"{len(off)} of {len(exact)} measurements saw drift in a consistent sale: {off[:3]}"
    settled = measure()
    assert (settled["gate_stock"], settled["expected_stock"], settled["pending"]) == (0, 0, 0), settled
    assert settled["buyers_checked"] == 60 and not settled["buyers_off"], settled

    rows, _stock = orders_of(app, sale_id)
    buyer = next(r.user_id for r in rows if r.status == "confirmed")
    gate.add_stock(sale_id, 3)
    gate.client.incr(user_key(sale_id, buyer))
    off = measure()
    assert (off["gate_stock"], off["expected_stock"], off["stock_drift"]) == (3, 0, 3), off
    assert off["buyers_off"] == {buyer: [2, 1]}, off
    assert off["quiet"] and measure() == off, "measuring repaired something"
    with app.app_context():  # the task beat sends: every open sale, this one with it
        assert drift_check.run()[sale_id] == off
    with app.app_context(), db.primary():
        reconcile(db.session, gate, db.session.get(FlashSale, sale_id), enqueue=lambda _payload: None)
    repaired = measure()
    assert repaired["stock_drift"] == 0 and not repaired["buyers_off"], repaired


def test_editor_api_rejects_bad_sales_and_writes_nothing(editor_api, app):
    from breakwater.extensions import db
    from breakwater.flash.models import FlashSale

    with app.app_context(), db.primary():
        before = db.session.scalar(select(func.count()).select_from(FlashSale))
        db.session.rollback()
    product = editor_api("POST", "/flash/products", json={"name": "P " + uuid.uuid4().hex[:6], "price_cents": 990})
    assert product.status_code == 201, product.text
    pid = product.json()["product"]["id"]
    bad = [
        ({"product_id": pid, "stock": 0, "starts_at": iso(0), "ends_at": iso(60)}, "invalid_field"),
        ({"product_id": pid, "stock": 5, "starts_at": iso(60), "ends_at": iso(0)}, "invalid_window"),
        ({"product_id": pid, "stock": 5, "starts_at": "tomorrow", "ends_at": iso(60)}, "invalid_datetime"),
        ({"product_id": 999999, "stock": 5, "starts_at": iso(0), "ends_at": iso(60)}, "product_not_found"),
    ]
    for body, code in bad:
        resp = editor_api("POST", "/flash/sales", json=body)
        assert resp.status_code in (400, 404) and resp.json()["error"]["code"] == code, (body, resp.text)
    with app.app_context(), db.primary():
        assert db.session.scalar(select(func.count()).select_from(FlashSale)) == before
        db.session.rollback()


def test_a_confirmed_order_mails_the_buyer_once(app, origin, stack, unique_name):
    """The confirmation's outbox row commits with the order; the notify worker sends it to the SMTP sink."""
    from breakwater.accounts.services import create_user
    from breakwater.extensions import db
    from breakwater_tools.mail_sink import read_messages

    with app.app_context(), db.primary():
        user = create_user(db.session, unique_name, "long enough", email=f"{unique_name}@example.org")
        uid = user.id
    cookie = app.session_interface.get_signing_serializer(app).dumps({"uid": uid, "_permanent": True})
    sale_id = make_sale(stock=2)
    accepted = buy(origin, cookie, sale_id)
    assert accepted.status_code == 202
    order_id = accepted.json()["order_id"]

    def mails():
        return [m for m in read_messages(stack.layout.mail) if m["subject"] == f"Order {order_id} confirmed"]

    wait_for(mails, timeout=30, what="the confirmation mail")
    # Counted once everything that could mail again has run to its end: the order written and settled, its
    # outbox row gone (the relay resends what stays), the orders and notify queues empty, their workers idle.
    wait_written(app, sale_id)

    def outbox_rows() -> int:
        with app.app_context(), db.primary():
            count = db.session.execute(
                text("SELECT COUNT(*) FROM outbox WHERE kwargs LIKE :k"), {"k": f"%{order_id}%"}
            ).scalar()
            db.session.rollback()
        return count

    wait_for(lambda: outbox_rows() == 0, timeout=30, what="the confirmation out of the outbox")
    for queue in ("orders", "notify"):
        wait_drained(app, stack.settings, queue)
    found = mails()
    assert len(found) == 1, f"mailed {len(found)} times: {[m['file'] for m in found]}"
    assert unique_name in found[0]["body"], "mailed to the buyer"
