"""A sudden crowd through the edge, for `make bench-spike` (loadtests/bench_spike.py).

A ``LoadTestShape``: BENCH_SPIKE_BASE visitors for BENCH_SPIKE_WARM seconds, then ten times as many within
BENCH_SPIKE_RAMP seconds, held for BENCH_SPIKE_HOLD seconds, back down to the base within BENCH_SPIKE_RAMP
seconds, and BENCH_SPIKE_TAIL seconds more at the base; then the run ends by itself.

Each simulated visitor is a browser of its own: it connects from a 127.0.0.0/8 address nobody else has
(tests/visitors.py; Linux binds any of them), keeps its connection alive, asks for gzip (requests does),
reads a page every BENCH_SPIKE_THINK seconds on average (the homepage, an article, a category page, the
region picker; BENCH_SPIKE_PATHS lists them) and fetches the stylesheet, scripts and images a page names the
first time it sees them (a browser keeps them). A page counts as failed unless it is a 200 ending with the
site's closing sentinel; a request unanswered after BENCH_SPIKE_TIMEOUT seconds (10) fails too.

Besides Locust's own statistics, every request's response time is kept per wall-clock second and written with
the number of visitors to BENCH_SPIKE_TIMELINE (JSON) when the run stops: p50/p99 over time.

    BENCH_SPIKE_PATHS=/,/regions locust -f loadtests/scenarios/spike_visitors.py --headless \\
        --host http://127.0.0.1:8081
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import sys
import time
from pathlib import Path

from locust import HttpUser, LoadTestShape, events, task

# The source-address helper the tests use (appended: it shadows nothing)
sys.path.append(str(Path(__file__).resolve().parents[2] / "tests"))
from visitors import SourceAddressAdapter, fresh_address

BASE = int(os.environ.get("BENCH_SPIKE_BASE", "30"))
FACTOR = 10
WARM = float(os.environ.get("BENCH_SPIKE_WARM", "10"))
RAMP = float(os.environ.get("BENCH_SPIKE_RAMP", "10"))
HOLD = float(os.environ.get("BENCH_SPIKE_HOLD", "10"))
TAIL = float(os.environ.get("BENCH_SPIKE_TAIL", "5"))
THINK = float(os.environ.get("BENCH_SPIKE_THINK", "1.0"))
TIMEOUT = float(os.environ.get("BENCH_SPIKE_TIMEOUT", "10"))
TIMELINE = os.environ.get("BENCH_SPIKE_TIMELINE", "")
PATHS = [p for p in os.environ.get("BENCH_SPIKE_PATHS", "/").split(",") if p]
SENTINEL = "<!--bw:end-->"  # every complete page ends with it (breakwater.pages)
ASSET = re.compile(r'(?:href|src)="(/(?:assets|media)/[^"]+)"')


def page_name(path: str) -> str:
    """Locust's name for a page: its kind, not each URL."""
    if path == "/":
        return "/"
    head = path.strip("/").split("/")[0]
    return f"/{head}/[slug]" if head in ("articles", "categories") else path


def page_weight(path: str) -> int:
    """Per page view: article 40, homepage 30, category page 20, the region picker 10 (split over the pages)."""
    kind = page_name(path)
    weights = {"/": 30, "/articles/[slug]": 40, "/categories/[slug]": 20}
    same = sum(1 for p in PATHS if page_name(p) == kind)
    return max(1, round(100 * weights.get(kind, 10) / same))


WEIGHTS = [page_weight(p) for p in PATHS]


class SpikeVisitor(HttpUser):
    def wait_time(self) -> float:
        return random.uniform(0.5 * THINK, 1.5 * THINK)

    def on_start(self) -> None:
        self.address = fresh_address()
        _timeline.addresses.add(self.address)
        adapter = SourceAddressAdapter(self.address, pool_connections=1, pool_maxsize=2)
        self.client.mount("http://", adapter)
        self.client.mount("https://", adapter)
        self.cached: set[str] = set()  # what this visitor's browser already has

    @task
    def view(self) -> None:
        path = random.choices(PATHS, WEIGHTS)[0]
        with self.client.get(path, name=page_name(path), timeout=TIMEOUT, catch_response=True) as resp:
            body = resp.text if resp.status_code == 200 else ""
            if resp.status_code != 200:
                resp.failure(f"status {resp.status_code}")
            elif SENTINEL not in body:
                resp.failure("incomplete page")
        for asset in ASSET.findall(body):
            if asset not in self.cached:
                with self.client.get(asset, name="asset", timeout=TIMEOUT, catch_response=True) as resp:
                    if resp.status_code != 200:
                        resp.failure(f"status {resp.status_code}")
                self.cached.add(asset)


class Spike(LoadTestShape):
    """BASE visitors, FACTOR x BASE within RAMP seconds, held, back within RAMP seconds, a tail at BASE."""

    def tick(self):
        t = self.get_run_time()
        peak = BASE * FACTOR
        rise = WARM + RAMP
        fall = rise + HOLD
        if t < WARM:
            users = BASE
        elif t < rise:
            users = BASE + (peak - BASE) * (t - WARM) / RAMP
        elif t < fall:
            users = peak
        elif t < fall + RAMP:
            users = peak - (peak - BASE) * (t - fall) / RAMP
        elif t < fall + RAMP + TAIL:
            users = BASE
        else:
            return None
        _timeline.users[int(time.time())] = self.runner.user_count if self.runner else 0
        # fast enough to follow the ramp each second, and to start the base crowd at once
        return round(users), max(BASE, math.ceil((peak - BASE) / RAMP))


class _Timeline:
    """Response times per wall-clock second (when each request ended), failures, visitors."""

    def __init__(self) -> None:
        self.times: dict[int, list[float]] = {}
        self.failures: dict[int, int] = {}
        self.users: dict[int, int] = {}
        self.addresses: set[str] = set()  # every visitor's source address
        self.written = False

    def record(self, response_time: float, failed: bool) -> None:
        second = int(time.time())
        self.times.setdefault(second, []).append(response_time)
        if failed:
            self.failures[second] = self.failures.get(second, 0) + 1

    def rows(self) -> list[dict]:
        seconds = sorted(set(self.times) | set(self.users))
        if not seconds:
            return []
        start = seconds[0]
        out = []
        for s in range(start, seconds[-1] + 1):
            times = sorted(self.times.get(s, []))
            out.append(
                {
                    "t": s - start,
                    "epoch": s,
                    "users": self.users.get(s),
                    "requests": len(times),
                    "failures": self.failures.get(s, 0),
                    "p50_ms": _rank(times, 0.50),
                    "p99_ms": _rank(times, 0.99),
                    "max_ms": round(times[-1], 1) if times else None,
                }
            )
        return out

    def write(self) -> None:
        if TIMELINE and not self.written:
            Path(TIMELINE).write_text(
                json.dumps({"source_addresses": len(self.addresses), "seconds": self.rows()}, indent=1) + "\n"
            )
            self.written = True


def _rank(ordered: list[float], fraction: float) -> float | None:
    """Nearest rank: the smallest sample with at least ``fraction`` of the samples at or below it."""
    if not ordered:
        return None
    return round(ordered[max(0, math.ceil(fraction * len(ordered)) - 1)], 1)


_timeline = _Timeline()


@events.request.add_listener
def _record(response_time=0.0, exception=None, **_kw) -> None:
    _timeline.record(response_time, exception is not None)


@events.test_stop.add_listener
def _write_on_stop(**_kw) -> None:
    _timeline.write()


@events.quitting.add_listener
def _write_on_quit(**_kw) -> None:
    _timeline.write()
