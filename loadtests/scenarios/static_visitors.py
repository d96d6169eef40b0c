"""Steady anonymous visitors for `make bench-static`'s publish-latency phase (not a throughput test).

Three in four simulated visitors browse through the edge (BENCH_EDGE), the others straight at the
origin (BENCH_ORIGIN), each at most BENCH_VISITOR_RATE pages a second (constant_throughput, so the
offered load stays the same while a rebuild runs). They read the pages listed in BENCH_VISIT_PATHS
(comma separated: the homepage, the articles being republished, a category page); one origin
request in four carries a query string, which the origin always hands to the app (the dynamic,
Redis-cached homepage), so the app and its database see traffic while the worker rebuilds pages.
"""

from __future__ import annotations

import os
import random

from locust import FastHttpUser, constant_throughput, task

RATE = float(os.environ.get("BENCH_VISITOR_RATE", "5"))
PATHS = [p for p in os.environ.get("BENCH_VISIT_PATHS", "/").split(",") if p]


def _get(user: FastHttpUser, path: str, name: str) -> None:
    with user.client.get(path, name=name, catch_response=True) as resp:
        if resp.status_code != 200:
            resp.failure(f"status {resp.status_code}")


class EdgeVisitor(FastHttpUser):
    host = os.environ.get("BENCH_EDGE", "")
    weight = 3
    wait_time = constant_throughput(RATE)

    @task
    def page(self) -> None:
        _get(self, random.choice(PATHS), "edge page")


class OriginVisitor(FastHttpUser):
    host = os.environ.get("BENCH_ORIGIN", "")
    weight = 1
    wait_time = constant_throughput(RATE)

    @task(3)
    def page(self) -> None:
        _get(self, random.choice(PATHS), "origin page")

    @task(1)
    def dynamic(self) -> None:
        _get(self, f"/?v={random.randrange(1000)}", "origin dynamic")
