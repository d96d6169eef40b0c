"""`make bench-cache`: what Redis caching gains, and what it costs next to serving bytes from memory.

For the homepage data (/api/home) and a region response (/api/regions/440000), under the same
gunicorn settings, interleaved with Locust:

* cached   - the endpoint through the cache (warm: X-Cache hit, served by the per-process tier);
* redis    - the same with BREAKWATER_CACHE_LOCAL=0: every hit is one Redis round trip;
* memory   - a bare Flask route in the same app returning the same bytes from process memory;
* uncached - the endpoint with BREAKWATER_CACHE_ENABLED=0 (every request reads a replica).

Writes loadtests/results/bench-cache.{md,json} and the README table.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path

from benchlib import AppServer, Summary, run_locust, start_private_stack, update_readme, write_report

SCENARIO = Path(__file__).parent / "scenarios" / "get_path.py"
ENDPOINTS = {
    "home": ("/api/home", "/_bench/memory/home"),
    "regions": ("/api/regions/440000", "/_bench/memory/regions/440000"),
}


def same_bytes(url_a: str, url_b: str) -> bool:
    with urllib.request.urlopen(url_a, timeout=10) as a, urllib.request.urlopen(url_b, timeout=10) as b:
        return a.read() == b.read()


def main() -> int:
    users = int(os.environ.get("BENCH_USERS", "16"))
    seconds = int(os.environ.get("BENCH_SECONDS", "10"))
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    stack, tmp = start_private_stack()
    cached = AppServer("cached", stack, {"BREAKWATER_BENCH_ROUTES": "1", "BREAKWATER_CACHE_ENABLED": "1"})
    redis_only = AppServer("redis", stack, {"BREAKWATER_CACHE_LOCAL": "0"})
    uncached = AppServer("uncached", stack, {"BREAKWATER_CACHE_ENABLED": "0"})
    summaries: dict[str, Summary] = {}
    notes: list[str] = []
    try:
        for srv in (cached, redis_only, uncached):
            srv.start()
        for name, (path, memory_path) in ENDPOINTS.items():
            if not same_bytes(cached.url + path, cached.url + memory_path):
                raise RuntimeError(f"{path} and {memory_path} differ; the comparison would be unfair")
            configs = [
                (f"{name} cached", cached.url, path),
                (f"{name} memory", cached.url, memory_path),
                (f"{name} redis-only", redis_only.url, path),
                (f"{name} uncached", uncached.url, path),
            ]
            for label, _, _ in configs:
                summaries[label] = Summary(label)
            for r in range(rounds):
                for label, url, p in configs if r % 2 == 0 else list(reversed(configs)):
                    result = run_locust(label, SCENARIO, url, users, seconds, "target", {"BENCH_PATH": p})
                    summaries[label].runs.append(result)
                    print(f"round {r + 1}/{rounds} {label:<18} {result.rps:8.0f} req/s  p95 {result.p95:.0f} ms")
            c, m, r, u = (
                summaries[f"{name} {k}"].median("rps") for k in ("cached", "memory", "redis-only", "uncached")
            )
            notes.append(
                f"**{name}**: cached / memory = **{c / m:.2f}** (target at least 0.85); redis-only / memory = "
                f"{r / m:.2f}; cached / uncached = **{c / u:.1f}x**."
            )
    finally:
        for srv in (cached, redis_only, uncached):
            srv.stop()
        stack.down(quiet=True)
        tmp.cleanup()
    notes += [
        f"Locust FastHttpUser x{users}, {seconds}s per run, {rounds} interleaved runs per configuration; one "
        "gunicorn worker with 4 threads per configuration, straight to gunicorn. Memory and cached run in the "
        "same server process; redis-only has BREAKWATER_CACHE_LOCAL=0; uncached runs with "
        "BREAKWATER_CACHE_ENABLED=0 and reads a replica every time.",
    ]
    path = write_report(
        "bench-cache", "Redis cache: cached vs bytes from memory vs uncached", list(summaries.values()), notes
    )
    update_readme("bench-cache", path.read_text())
    print(path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
