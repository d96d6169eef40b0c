"""One GET path as fast as possible (BENCH_PATH), for side-by-side endpoint comparisons.

BENCH_EXPECT_XCACHE, when set, lists the X-Cache values a response may carry (comma separated,
"none" for no header); any other response counts as a failure, so a configuration that is not what
it claims (a cache that bypasses, a memory route that goes through the cache) cannot pass as one.
BENCH_EXPECT_HEADERS does the same for any headers: ``Name=v1,v2;Other=none`` (e.g.
``X-Origin-Cache=STATIC`` for a file the origin served without asking the app).
"""

from __future__ import annotations

import os

from locust import FastHttpUser, constant, task

PATH = os.environ.get("BENCH_PATH", "/")


def _expectations() -> dict[str, set[str]]:
    wanted = {}
    if os.environ.get("BENCH_EXPECT_XCACHE", "").strip():
        wanted["X-Cache"] = os.environ["BENCH_EXPECT_XCACHE"]
    for item in os.environ.get("BENCH_EXPECT_HEADERS", "").split(";"):
        name, sep, values = item.partition("=")
        if sep and name.strip():
            wanted[name.strip()] = values
    return {name: {v.strip() for v in values.split(",") if v.strip()} for name, values in wanted.items()}


EXPECT = _expectations()


class Getter(FastHttpUser):
    wait_time = constant(0)

    @task
    def get(self) -> None:
        with self.client.get(PATH, name="target", catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure(f"status {resp.status_code}")
                return
            for name, allowed in EXPECT.items():
                value = resp.headers.get(name) or "none"
                if value not in allowed:
                    resp.failure(f"{name} {resp.headers.get(name)!r}, expected one of {sorted(allowed)}")
                    return
