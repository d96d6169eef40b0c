"""Signed-in buyers posting purchase attempts to one flash sale, each from an address of its own.

The runner prepares BENCH_COOKIES_FILE (a line per buyer: its ``bw_session`` cookie value and, after a
space, its source address) and BENCH_SALE_ID. The buyers are dealt out to the Locust users (user i of n
takes buyers i, i+n, i+2n, ...); a user makes its buyers' attempts in turn, each on the buyer's own
connection from the buyer's own 127/8 address (source_addresses.py; a line without an address: the
machine's own), every attempt with a fresh Idempotency-Key. A buyer attempts at most BENCH_BUYER_RATE
times a second (3 by default): the stack's limits keep their defaults (Nginx's writes per address, the
app's FLASH_USER_RATE per buyer and FLASH_ADDRESS_RATE per address), and a buyer within them is never
refused; the load comes from many buyers, as in a real rush, not from one client hammering.

BENCH_EXPECT (``status:code,...``, e.g. ``409:sold_out``; ``202:`` for an answer without an error code)
lists the answers a run may get; any other one counts as a failure, so a rejection run that starts
accepting (or hits a 429 rate limit) cannot pass as one. BENCH_OUTCOMES_FILE: at the end, the count of
each answer and the order ids of the accepted attempts (201/202) are written there as JSON, for the
runner's checks.
"""

from __future__ import annotations

import itertools
import json
import os
import time
import uuid
from collections import Counter
from pathlib import Path

import gevent
from locust import FastHttpUser, constant, events, task
from locust.contrib.fasthttp import FastHttpSession
from locust.exception import StopUser

try:
    from . import source_addresses
except ImportError:
    import source_addresses

SALE_ID = int(os.environ.get("BENCH_SALE_ID", "0"))
BUYERS = (
    [tuple(line.split()[:2]) for line in Path(os.environ["BENCH_COOKIES_FILE"]).read_text().splitlines() if line]
    if os.environ.get("BENCH_COOKIES_FILE")
    else []
)  # (cookie,) or (cookie, source address) per buyer
EXPECT = {tuple(x.split(":", 1)) for x in os.environ.get("BENCH_EXPECT", "409:sold_out").split(",") if ":" in x}
BODY = {"quantity": 1, "address": {"region_code": "110101", "detail": "x", "name": "x", "phone": "13800138000"}}
PACE_S = 1.0 / float(os.environ.get("BENCH_BUYER_RATE", "3"))
OUTCOMES_FILE = os.environ.get("BENCH_OUTCOMES_FILE", "")
_next = itertools.count()
_outcomes: Counter = Counter()
_accepted: list[str] = []


@events.quitting.add_listener
def _write_outcomes(environment, **_kwargs) -> None:
    if OUTCOMES_FILE:
        Path(OUTCOMES_FILE).write_text(json.dumps({"outcomes": dict(_outcomes), "accepted": _accepted}))


class Buyer:
    """One buyer: its cookie, its connection (from its own address) and when it may try again."""

    def __init__(self, user: FastHttpUser, cookie: str, address: str | None) -> None:
        self.cookie, self.next_at = cookie, 0.0
        self.session = FastHttpSession(
            base_url=user.host, request_event=user.environment.events.request, user=user,
            network_timeout=user.network_timeout, connection_timeout=user.connection_timeout,
            max_retries=user.max_retries, concurrency=1,
        )  # fmt: skip
        if address:
            source_addresses.bind(self.session, address)


class BuyersUser(FastHttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        users = int(getattr(self.environment.parsed_options, "num_users", 0) or 1)
        mine = BUYERS[next(_next) :: users]
        if not mine:
            raise StopUser()  # more users than buyers: a buyer is never shared by two users
        self.buyers = [Buyer(self, b[0], b[1] if len(b) > 1 else None) for b in mine]
        self.turn = 0

    @task
    def buy(self) -> None:
        buyer = self.buyers[self.turn % len(self.buyers)]
        self.turn += 1
        wait = buyer.next_at - time.monotonic()
        if wait > 0:
            gevent.sleep(wait)  # this buyer's next attempt is not due yet (BENCH_BUYER_RATE)
        buyer.next_at = time.monotonic() + PACE_S
        headers = {"Idempotency-Key": uuid.uuid4().hex, "Cookie": f"bw_session={buyer.cookie}"}
        with buyer.session.post(
            f"/api/flash/{SALE_ID}/orders", json=BODY, headers=headers, name="target", catch_response=True
        ) as resp:
            try:
                data = resp.json()
                code = (data.get("error") or {}).get("code", "")
            except Exception:
                data, code = {}, ""
            _outcomes[f"{resp.status_code} {code}".strip()] += 1
            if resp.status_code in (201, 202) and data.get("order_id"):
                _accepted.append(data["order_id"])
            if (str(resp.status_code), code) in EXPECT:
                resp.success()  # a 409 is what this run measures, not an error
            else:
                resp.failure(f"{resp.status_code} {code or (resp.text or '')[:80]!r}")
