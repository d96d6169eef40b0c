"""Signed-in buyers posting purchase attempts to one flash sale as fast as they can.

The runner prepares BENCH_COOKIES_FILE (one ``bw_session`` cookie value a line) and BENCH_SALE_ID;
each simulated user takes the next cookie in turn and sends every attempt with a fresh
Idempotency-Key. BENCH_EXPECT (``status:code,...``, e.g. ``409:sold_out``) lists the answers a run
may get; any other one counts as a failure, so a rejection run that starts accepting (or hits a
429 rate limit) cannot pass as one.
"""

from __future__ import annotations

import itertools
import os
import uuid
from pathlib import Path

from locust import FastHttpUser, constant, task

SALE_ID = int(os.environ.get("BENCH_SALE_ID", "0"))
COOKIES = (
    [c for c in Path(os.environ["BENCH_COOKIES_FILE"]).read_text().split() if c]
    if os.environ.get("BENCH_COOKIES_FILE")
    else []
)
EXPECT = {tuple(x.split(":", 1)) for x in os.environ.get("BENCH_EXPECT", "409:sold_out").split(",") if ":" in x}
BODY = {"quantity": 1, "address": {"region_code": "110101", "detail": "x", "name": "x", "phone": "13800138000"}}
_next = itertools.count()


class Buyer(FastHttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        self.cookie = COOKIES[next(_next) % len(COOKIES)]

    @task
    def buy(self) -> None:
        headers = {"Idempotency-Key": uuid.uuid4().hex, "Cookie": f"bw_session={self.cookie}"}
        with self.client.post(
            f"/api/flash/{SALE_ID}/orders", json=BODY, headers=headers, name="target", catch_response=True
        ) as resp:
            try:
                code = (resp.json().get("error") or {}).get("code", "")
            except Exception:
                code = ""
            if (str(resp.status_code), code) in EXPECT:
                resp.success()  # a 409 is what this run measures, not an error
            else:
                resp.failure(f"{resp.status_code} {code or (resp.text or '')[:80]!r}")
