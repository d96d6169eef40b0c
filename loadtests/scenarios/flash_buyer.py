"""Flash-sale buyers (抢购): each registers, logs in, polls the sale until its start, buys with an
Idempotency-Key at the start time, polls its order until it is written, then keeps an eye on the sale.

The sale: ``--flash-sale ID``, or (default) one created through the editor API when the first buyer
starts: ``--flash-stock`` units (20), ``--flash-limit`` per buyer (1), starting ``--flash-start-in``
seconds later (5), so buyers spawned by then all hit the start together. Every buyer behaves like a
careful client: a timeout, a 5xx or a 429 is retried with the same Idempotency-Key (only a
definitive answer ends an attempt); right after a 202 it sends the same request again (a
double-click) and must get the same order back; then it tries once more with a new key, which only
succeeds while it is under the limit. 409 sold_out / limit_reached are answers, not failures, and a
429 is an expected refusal (its own ``[429]`` row, not a failure); a 5xx, a refused connection or a
timeout is a failure in the statistics (its own ``[503]`` / ``[network error]`` row) even though the
buyer retries it, so a run that met server errors cannot pass (see ``classify``).

When the run stops, the scenario waits for the accepted orders to be written (``--flash-drain-timeout``)
and checks the sale in the database (``--flash-db-url``, see flash_check.py): no oversell, at most the
limit per buyer, no duplicate orders, no accepted order lost, plus the gate's stock equal to the
database's. Each is a CHECK row in the statistics; a broken one is a failure and makes Locust exit 1.

Each buyer (and the editor that sets the sale up) connects from a 127/8 address of its own
(source_addresses.py) when the stack is on this machine, so the per-address limits keep their defaults and
see one client per buyer: Nginx's login limit (10/min, burst 5) and write limit (20 r/s, burst 40), the
app's registrations (10/hour) and purchases (FLASH_ADDRESS_RATE) per address. A refused login would still
be counted as ``/api/auth/login [429]`` and the buyer would keep the session its registration gave it.

    locust -f loadtests/scenarios/flash_buyer.py --host http://127.0.0.1:8080 -u 50 -r 50
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

import gevent
import gevent.lock
from locust import FastHttpUser, between, events, task
from locust.contrib.fasthttp import FastHttpSession

try:
    from . import bwlocust, flash_check
except ImportError:
    import bwlocust
    import flash_check

log = logging.getLogger("flash_buyer")
RETRY_S = 0.5
ORDER_WAIT_S = 30.0


class Run:
    """One test run's sale and what its buyers were told (reset at every test start)."""

    def __init__(self) -> None:
        self.lock = gevent.lock.Semaphore()
        self.sale: dict | None = None
        self.region = ""
        self.editor: FastHttpSession | None = None  # the editor's session: creates the sale, reads its status
        self.csrf = ""
        self.accepted: list[tuple[int, str, str]] = []  # (user id, Idempotency-Key, order id) per 202
        self.checked = False

    def setup(self, environment, client, host: str) -> dict:
        with self.lock:
            if self.sale is None:
                self.editor = FastHttpSession(base_url=host, request_event=environment.events.request, user=None)
                bwlocust.own_address(self.editor)
                self.csrf = bwlocust.editor_login(self.editor, environment, "flash setup: editor login")
                sale_id = int(bwlocust.option(environment, "flash_sale", 0) or 0) or self.create(environment)
                self.sale = client.get(f"/api/flash/{sale_id}", name="/api/flash/[id]").json()["sale"]
                self.region = bwlocust.district_code(client)
                log.info("flash sale %s: %s units, limit %s, starts %s", sale_id, self.sale["total_stock"],
                         self.sale["limit"], self.sale["starts_at"])  # fmt: skip
        return self.sale

    def create(self, environment) -> int:
        def post(path: str, body: dict) -> dict:
            resp = self.editor.post(path, json=body, headers={"X-CSRFToken": self.csrf}, name=f"flash setup: {path}")
            if resp.status_code != 201:
                raise RuntimeError(f"POST {path}: status {resp.status_code} {bwlocust.error_code(resp)}")
            return resp.json()

        now = datetime.now(UTC)
        start = now + timedelta(seconds=float(bwlocust.option(environment, "flash_start_in", 5.0)))
        product = post("/api/editor/flash/products", {"name": f"Locust {uuid.uuid4().hex[:8]}", "price_cents": 990})
        sale = post(
            "/api/editor/flash/sales",
            {
                "product_id": product["product"]["id"], "starts_at": start.isoformat(),
                "ends_at": (now + timedelta(hours=1)).isoformat(),
                "stock": int(bwlocust.option(environment, "flash_stock", 20)),
                "limit": int(bwlocust.option(environment, "flash_limit", 1)),
            },
        )  # fmt: skip
        return int(sale["sale"]["id"])


RUN = Run()


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def classify(status: int, error_code: str, ok: set[int]) -> tuple[bool, bool]:
    """What ``FlashBuyer.send`` makes of one answer: (a failure in Locust's statistics?, sent again with
    the same body and Idempotency-Key?). ``status`` 0 is FastHttpUser's for no answer at all (a refused or
    reset connection, a timeout)."""
    if status in ok or (status == 403 and error_code == "not_started"):
        return False, False  # an answer the caller expects (409 sold_out / limit_reached among them)
    if status == 429:
        return False, True  # a rate limit: an expected refusal, retried (or given up on, for a login)
    if status == 0 or status >= 500:
        return True, True  # the site failed this request: a failure, whatever the retry gets later
    return True, False  # anything else is a wrong answer


class FlashBuyer(FastHttpUser):
    weight = 5
    wait_time = between(2, 5)  # once done, a buyer looks at the sale now and then

    def on_start(self) -> None:
        self.address = bwlocust.own_address(self.client)  # one buyer, one address
        self.orders: list[tuple[str, float]] = []  # (order id, monotonic time of its 202)
        self.sale = RUN.setup(self.environment, self.client, self.host)
        self.path = f"/api/flash/{self.sale['id']}"
        name, password = f"lb-{uuid.uuid4().hex[:16]}", uuid.uuid4().hex
        user = self.send("POST", "/api/auth/register", {"name": name, "password": password}, {201})
        self.user_id = user.json()["user"]["id"] if user is not None else None
        if self.user_id is not None:
            self.send("POST", "/api/auth/login", {"name": name, "password": password}, {200}, give_up_on_429=True)
            self.buy_once()  # in on_start: a run told to stop while buyers still register lets them buy first

    @task
    def look_at_the_sale(self) -> None:
        self.client.get(self.path, name="/api/flash/[id]")

    def buy_once(self) -> None:
        self.wait_for_start()
        body = {"quantity": 1, "address": {"region_code": RUN.region, "detail": "1 Locust Road", "name": "Locust",
                                           "phone": "13800138000"}}  # fmt: skip
        for _attempt in range(int(self.sale["limit"]) + 1):  # one more than allowed: the limit must refuse it
            if not self.purchase(body):
                break
        for order_id, accepted_at in self.orders:
            self.wait_for_order(order_id, accepted_at)

    def wait_for_start(self) -> None:
        """Poll the sale (as its page does) until the server's clock reaches the start."""
        starts = epoch(self.sale["starts_at"])
        while True:
            data = self.client.get(self.path, name="/api/flash/[id]").json()
            offset = epoch(data["server_time"]) - time.time()  # the server's clock minus ours
            left = starts - (time.time() + offset)
            if left <= 0:
                return
            gevent.sleep(min(left, 1.0))
            if left <= 1.0:
                return

    def purchase(self, body: dict) -> bool:
        """One order attempt until it gets a definitive answer; True if accepted."""
        key = uuid.uuid4().hex
        for _try in range(40):
            resp = self.send("POST", f"{self.path}/orders", body, {202, 409}, headers={"Idempotency-Key": key})
            if resp is None:
                return False
            code = bwlocust.error_code(resp)
            if resp.status_code == 403 and code == "not_started":  # our clock was early: a new attempt
                key = uuid.uuid4().hex
                gevent.sleep(0.2)
                continue
            if resp.status_code != 202:
                return False  # sold_out or limit_reached
            order_id = resp.json()["order_id"]
            RUN.accepted.append((self.user_id, key, order_id))
            self.orders.append((order_id, time.monotonic()))
            self.double_click(body, key, order_id)
            if len(self.orders) > int(self.sale["limit"]):
                problem = f"buyer {self.user_id} got {len(self.orders)} orders accepted, limit {self.sale['limit']}"
                bwlocust.check(self.environment, "flash: the limit per buyer at the door", 0, problem)
            return True
        return False

    def double_click(self, body: dict, key: str, order_id: str) -> None:
        headers, name = {"Idempotency-Key": key}, "/api/flash/[id]/orders (same key)"
        resp = self.send("POST", f"{self.path}/orders", body, {202}, headers=headers, name=name)
        if resp is not None:
            again = resp.json().get("order_id")
            bwlocust.check(
                self.environment, "flash: same Idempotency-Key, same order", 0,
                None if again == order_id else f"the same request answered order {again}, first {order_id}",
            )  # fmt: skip

    def wait_for_order(self, order_id: str, accepted_at: float) -> None:
        """Poll the order until it is written; the check's time is from the 202 to seeing it written."""
        deadline = time.monotonic() + ORDER_WAIT_S
        status = "pending"
        while status == "pending" and time.monotonic() < deadline:
            with self.client.get(f"/api/orders/{order_id}", name="/api/orders/[id]", catch_response=True) as resp:
                if resp.status_code == 200:
                    status = resp.json()["order"]["status"]
                else:
                    resp.failure(f"status {resp.status_code} {bwlocust.error_code(resp)}")
            if status == "pending":
                gevent.sleep(RETRY_S)
        bwlocust.check(
            self.environment, "flash: accepted order written", (time.monotonic() - accepted_at) * 1000,
            None if status == "confirmed" else f"order {order_id} is {status} after the wait",
        )  # fmt: skip

    def send(self, method, path, body, ok: set[int], headers=None, name=None, give_up_on_429=False):
        """A request retried with the same body and headers on 429, 5xx and network errors; the final
        response, or None if it failed. Every 5xx and network error is a failure in the stats, on its own
        row, even when a retry then succeeds (``classify``)."""
        name = name or path.replace(self.path, "/api/flash/[id]")
        for _try in range(10):
            with self.client.request(method, path, json=body, headers=headers, name=name, catch_response=True) as resp:
                status = resp.status_code
                failed, retry = classify(status, bwlocust.error_code(resp) if status == 403 else "", ok)
                if retry:
                    resp.request_meta["name"] = f"{name} [{status or 'network error'}]"  # counted on its own row
                if failed:
                    why = bwlocust.error_code(resp) or getattr(resp, "error", None) or ""
                    resp.failure(f"status {status} {why}".strip())
                else:
                    resp.success()
                if not retry:
                    return None if failed else resp
                if status == 429 and give_up_on_429:
                    return None
                gevent.sleep(RETRY_S * random.uniform(1, 2))
        return None


# ------------------------------------------------------------------ after the run
@events.test_start.add_listener
def _reset(environment, **_kw) -> None:
    global RUN
    RUN = Run()


@events.test_stop.add_listener
def _check(environment, **_kw) -> None:
    if RUN.sale is None or RUN.checked:
        return  # no buyer ran in this test
    RUN.checked = True
    sale_id = int(RUN.sale["id"])
    status = drain(environment, sale_id)
    db_url = bwlocust.option(environment, "flash_db_url", "")
    if not db_url:
        bwlocust.check(environment, "flash: invariants", 0, "no --flash-db-url: the sale could not be checked")
        environment.process_exit_code = 1
        return
    broken = 0
    for verdict in flash_check.check_sale(db_url, sale_id, RUN.accepted):
        bwlocust.check(environment, f"flash: {verdict.name}", 0, None if verdict.ok else verdict.detail)
        log.info("flash sale %s: %s %s: %s", sale_id, "ok" if verdict.ok else "FAILED", verdict.name, verdict.detail)
        broken += not verdict.ok
    if status is not None:
        same = status["stock_gate"] == status["stock_db"] and not status["accepted_not_written"]
        detail = (f"gate {status['stock_gate']}, database {status['stock_db']}, "
                  f"accepted not written {status['accepted_not_written']}")  # fmt: skip
        bwlocust.check(environment, "flash: gate stock == database stock", 0, None if same else detail)
        broken += not same
    if broken:
        environment.process_exit_code = 1


def drain(environment, sale_id: int) -> dict | None:
    """Wait until every accepted order is written; the sale's status (None if unreadable)."""
    deadline = time.monotonic() + float(bwlocust.option(environment, "flash_drain_timeout", 60.0))
    status = None
    while RUN.editor is not None:
        resp = RUN.editor.get(f"/api/editor/flash/sales/{sale_id}", name="flash check: /api/editor/flash/sales/[id]")
        status = resp.json()["status"] if resp.status_code == 200 else None
        if status is None or not status["accepted_not_written"] or time.monotonic() > deadline:
            break
        gevent.sleep(0.5)
    return status


@events.quitting.add_listener
def _quitting(environment, **_kw) -> None:
    """Ctrl-C or SIGTERM: stop the users first, so the check (on test_stop) runs before the exit code is set."""
    if RUN.sale is not None and not RUN.checked and environment.runner is not None:
        environment.runner.stop()
