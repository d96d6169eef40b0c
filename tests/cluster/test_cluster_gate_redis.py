"""The gate/broker Redis primary dies on the data host during a flash sale: the Sentinels (on three hosts)
promote its replica on an app host, every client finds it through them, reads never answer 5xx, the
database's guard keeps the sale from overselling whatever the gate lost, and the reconciler repairs the gate."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
from redis.sentinel import MasterNotFoundError, Sentinel

from fault_recorder import FaultRecorder
from routing_helpers import wait_for
from test_flash import _stack_env, buy, buyers, gate_stock, make_sale, orders_of, wait_written  # noqa: F401

pytestmark = pytest.mark.slow
STOCK = 30
BIN = Path(sys.executable).parent / "breakwater"


def sentinel_master(settings) -> tuple[str, int] | None:
    """The gate/broker primary as the Sentinels name it; None while they have none (mid-failover)."""
    sentinels = [(h, int(p)) for h, _, p in (e.rpartition(":") for e in settings["REDIS_SENTINELS"].split(","))]
    client = Sentinel(sentinels, sentinel_kwargs={"password": settings["REDIS_PASSWORD"], "socket_timeout": 1})
    try:
        return client.discover_master(settings["REDIS_SENTINEL_MASTER"])
    except MasterNotFoundError:
        return None


def test_the_gate_redis_dies_mid_sale_and_the_sentinels_fail_over_without_overselling(
    app,
    stack,
    cluster,
    origin,
    buyers,  # noqa: F811
):
    settings = stack.settings
    first = sentinel_master(settings)
    assert first == (cluster.data_host.address, settings.int("REDIS_PORT"))
    sale = make_sale(STOCK)
    accepted: dict[int, str] = {}
    answers: list[int | str] = []
    queue = list(buyers[:80])
    lock = threading.Lock()

    def shop() -> None:
        while True:
            with lock:
                if not queue:
                    return
                uid, cookie = queue.pop()
            key = uuid.uuid4().hex
            for _attempt in range(40):  # 503 gate_unavailable: retried with the same key, as a client should
                try:
                    resp = buy(origin, cookie, sale, key=key, timeout=15)
                    code = resp.status_code
                except requests.RequestException as exc:
                    code = type(exc).__name__
                answers.append(code)
                if code == 202:
                    accepted[uid] = resp.json()["order_id"]
                if code in (202, 409):
                    break
                time.sleep(0.25)
            time.sleep(0.1)

    reads = FaultRecorder(origin, ("/api/home", f"/api/flash/{sale}", "/api/articles?page=1")).start()
    threads = [threading.Thread(target=shop, daemon=True) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: len(accepted) >= 8, timeout=60, what="orders accepted before the kill")
        reads.wait_rows("before", 10)
        stack.supervisor.take_down("redis")  # frozen, killed, not restarted: the server is gone
        reads.mark("fault")
        wait_for(
            lambda: sentinel_master(settings) not in (first, None), timeout=30, interval=0.5,
            what="the Sentinels' failover",
        )  # fmt: skip
        reads.mark("recovered")
        assert sentinel_master(settings) == (cluster.app_hosts[0].address, settings.int("REDIS_REPLICA_PORT"))
        wait_for(lambda: not queue, timeout=120, what="every buyer to have tried")
        reads.wait_rows("after", 10)
    finally:
        reads.stop()
        for t in threads:
            t.join(timeout=60)
        stack.supervisor.bring_back("redis", wait=False)  # it comes back, and the Sentinels make it a replica
    reads.assert_all_served(max_seconds=3)
    assert set(answers) <= {202, 409, 503}, {c: answers.count(c) for c in set(answers)}
    assert 503 in answers, "no purchase met the outage: the kill came too late to test anything"

    reconcile = subprocess.run(
        [str(BIN), "flash", "reconcile", "--sale", str(sale)], env=settings.child_env(), capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert reconcile.returncode == 0, reconcile.stderr
    wait_written(app, sale, timeout=120)
    orders, stock = orders_of(app, sale)
    confirmed = [r for r in orders if r[1] == "confirmed"]
    users = [r[0] for r in confirmed]
    assert len(users) == len(set(users)), "a buyer got two units"
    assert len(confirmed) <= STOCK and stock == STOCK - len(confirmed), (len(confirmed), stock)
    assert set(users) <= set(accepted), "an order was confirmed for someone never told it was accepted"
    assert gate_stock(app, sale) == stock  # the reconciler repaired the gate from the database
