"""Signed-in buyers posting purchase attempts to one flash sale as fast as they can.

The runner prepares BENCH_COOKIES_FILE (one ``bw_session`` cookie value a line) and BENCH_SALE_ID;
each simulated user takes the next cookie in turn and sends every attempt with a fresh
Idempotency-Key. BENCH_EXPECT (``status:code,...``, e.g. ``409:sold_out``; ``202:`` for an answer
without an error code) lists the answers a run may get; any other one counts as a failure, so a
rejection run that starts accepting (or hits a 429 rate limit) cannot pass as one.

BENCH_ROTATE=1: every attempt is made by the next buyer in the file, not by the user's own (a rush of
many buyers, each trying about once). BENCH_OUTCOMES_FILE: at the end, the count of each answer and
the order ids of the accepted attempts (201/202) are written there as JSON, for the runner's checks.
"""

from __future__ import annotations

import itertools
import json
import os
import uuid
from collections import Counter
from pathlib import Path

from locust import FastHttpUser, constant, events, task

SALE_ID = int(os.environ.get("BENCH_SALE_ID", "0"))
COOKIES = (
    [c for c in Path(os.environ["BENCH_COOKIES_FILE"]).read_text().split() if c]
    if os.environ.get("BENCH_COOKIES_FILE")
    else []
)
EXPECT = {tuple(x.split(":", 1)) for x in os.environ.get("BENCH_EXPECT", "409:sold_out").split(",") if ":" in x}
BODY = {"quantity": 1, "address": {"region_code": "110101", "detail": "x", "name": "x", "phone": "13800138000"}}
ROTATE = os.environ.get("BENCH_ROTATE") == "1"
OUTCOMES_FILE = os.environ.get("BENCH_OUTCOMES_FILE", "")
_next = itertools.count()
_attempt = itertools.count()
_outcomes: Counter = Counter()
_accepted: list[str] = []


@events.quitting.add_listener
def _write_outcomes(environment, **_kwargs) -> None:
    if OUTCOMES_FILE:
        Path(OUTCOMES_FILE).write_text(json.dumps({"outcomes": dict(_outcomes), "accepted": _accepted}))


class Buyer(FastHttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        self.cookie = COOKIES[next(_next) % len(COOKIES)]

    @task
    def buy(self) -> None:
        cookie = COOKIES[next(_attempt) % len(COOKIES)] if ROTATE else self.cookie
        headers = {"Idempotency-Key": uuid.uuid4().hex, "Cookie": f"bw_session={cookie}"}
        with self.client.post(
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
