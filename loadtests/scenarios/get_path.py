"""One GET path as fast as possible (BENCH_PATH), for side-by-side endpoint comparisons.

BENCH_EXPECT_XCACHE, when set, lists the X-Cache values a response may carry (comma separated,
"none" for no header); any other response counts as a failure, so a configuration that is not what
it claims (a cache that bypasses, a memory route that goes through the cache) cannot pass as one.
"""

from __future__ import annotations

import os

from locust import FastHttpUser, constant, task

PATH = os.environ.get("BENCH_PATH", "/")
EXPECT = {v.strip() for v in os.environ.get("BENCH_EXPECT_XCACHE", "").split(",") if v.strip()}


class Getter(FastHttpUser):
    wait_time = constant(0)

    @task
    def get(self) -> None:
        with self.client.get(PATH, name="target", catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure(f"status {resp.status_code}")
            elif EXPECT and (resp.headers.get("X-Cache") or "none") not in EXPECT:
                resp.failure(f"X-Cache {resp.headers.get('X-Cache')!r}, expected one of {sorted(EXPECT)}")
