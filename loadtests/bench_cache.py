"""`make bench-cache`: what Redis caching gains, and what it costs next to serving bytes from memory.

For the homepage data (/api/home) and a region response (/api/regions/440000), under the same
gunicorn settings, interleaved with Locust:

* cached     - the endpoint through the cache (warm: X-Cache hit, served by the per-process tier);
* memory     - a bare Flask route in the same app returning the same bytes from process memory;
* redis-only - the same endpoint with BREAKWATER_CACHE_LOCAL=0: every hit is one Redis round trip;
* uncached   - the endpoint with BREAKWATER_CACHE_ENABLED=0 (every request reads a replica);
* static json (regions only) - the same region's children as the emitted content-hashed file
  /regions-data/440000.<hash>.json through the stack's Nginx origin (X-Origin-Cache: STATIC; the app's
  counters must not move). Its payload is the address picker's format, not /api/regions' (see the report).

Every run is checked to be what it claims: each response's X-Cache (hit/stale/miss for cached and
redis-only, bypass for uncached, none for memory), the server's breakwater_cache_events_total, and
the cache Redis's MGET count (near zero for cached, served by the local tier; one per request for
redis-only). Writes loadtests/results/bench-cache.{md,json} and the raw Locust files in
loadtests/results/bench-cache/ (BENCH_QUICK=1: loadtests/results/quick/); `make bench-publish` sets its table in
docs/benchmarks.md.
"""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import redis
from benchlib import (
    AppServer,
    Summary,
    compare,
    delta,
    knob,
    raw_dir,
    run_locust,
    scrape,
    start_private_stack,
    total,
    update_readme,
    write_report,
)

SCENARIO = Path(__file__).parent / "scenarios" / "get_path.py"
ENDPOINTS = {
    "home": ("/api/home", "/_bench/memory/home"),
    "regions": ("/api/regions/440000", "/_bench/memory/regions/440000"),
}
EVENTS = "breakwater_cache_events_total"
#: X-Cache values each configuration may answer with ("none": no header). A value past its soft TTL
#: during a run is refreshed once (miss) while the others get it stale; the counters below do the rest.
EXPECT = {
    "cached": "hit,stale,miss", "memory": "none", "redis-only": "hit,stale,miss", "uncached": "bypass",
    "static json": "none",
}  # fmt: skip
#: The region cascade's third way: the same region's children as a content-hashed static JSON file
#: (/regions-data/<code>.<hash>.json), served by the stack's Nginx origin without asking the app.
STATIC_JSON = {"regions": "440000"}


def same_bytes(url_a: str, url_b: str) -> bool:
    with urllib.request.urlopen(url_a, timeout=10) as a, urllib.request.urlopen(url_b, timeout=10) as b:
        return a.read() == b.read()


def redis_mgets(client: redis.Redis) -> dict[str, float]:
    """MGET calls on the cache Redis: every lookup that reaches Redis is one MGET."""
    return {"redis_cache_mget_calls": float(client.info("commandstats").get("cmdstat_mget", {}).get("calls", 0))}


def verify(kind: str, name: str, requests: int, moved: dict[str, float]) -> list[str]:
    """Problems when the run was not served the way ``kind`` claims."""
    hits = total(moved, EVENTS, name=name, result="hit") + total(moved, EVENTS, name=name, result="stale")
    bypass = total(moved, EVENTS, name=name, result="bypass")
    events = total(moved, EVENTS, name=name)
    mgets = moved.get("redis_cache_mget_calls", 0)
    need, stray = 0.9 * requests, max(0.05 * requests, 50)
    problems = []
    if kind == "cached" and (hits < need or mgets > stray):
        problems.append(f"check: expected local-tier hits; cache hits +{hits:.0f}, Redis MGETs +{mgets:.0f}")
    if kind == "redis-only" and (hits < need or mgets < need):
        problems.append(f"check: expected Redis hits; cache hits +{hits:.0f}, Redis MGETs +{mgets:.0f}")
    if kind == "uncached" and (bypass < need or hits or mgets > stray):
        problems.append(f"check: expected bypass; bypass +{bypass:.0f}, hits +{hits:.0f}, Redis MGETs +{mgets:.0f}")
    if kind == "static json" and (app_requests(moved, "regions_data.serve") or events):
        problems.append(f"check: {app_requests(moved, 'regions_data.serve'):.0f} static JSON requests reached the app")
    if kind == "memory" and (events or mgets > stray):
        problems.append(f"check: the memory route touched the cache ({events:.0f} events, {mgets:.0f} MGETs)")
    return problems


def static_json(stack, code: str) -> str:
    """The path of the emitted, content-hashed JSON file holding ``code``'s children."""
    found = sorted((Path(stack.settings["STATIC_DIR"]) / "regions-data").glob(f"{code}.*.json"))
    if not found:
        raise RuntimeError(f"no emitted /regions-data/{code}.<hash>.json; did the stack's static build run?")
    return f"/regions-data/{found[0].name}"


def app_requests(moved: dict[str, float], endpoint: str) -> float:
    return total(moved, "breakwater_http_requests_total", endpoint=endpoint)


def main() -> int:
    users = knob("BENCH_USERS", 16, 16)
    seconds = knob("BENCH_SECONDS", 10, 2)
    rounds = knob("BENCH_ROUNDS", 3, 1)
    raw = raw_dir("bench-cache")
    stack, tmp = start_private_stack()
    cached = AppServer("cached", stack, {"BREAKWATER_BENCH_ROUTES": "1", "BREAKWATER_CACHE_ENABLED": "1"})
    redis_only = AppServer("redis", stack, {"BREAKWATER_CACHE_LOCAL": "0"})
    uncached = AppServer("uncached", stack, {"BREAKWATER_CACHE_ENABLED": "0"})
    servers = (cached, redis_only, uncached)
    cache_redis = redis.Redis.from_url(stack.settings.redis_cache_url)
    origin = SimpleNamespace(url=stack.settings.origin_url.rstrip("/"))
    app_url = f"http://{stack.settings['HOST']}:{stack.settings.int('APP_PORT')}"
    summaries: dict[str, Summary] = {}
    comparisons = []
    sizes: dict[str, int] = {}
    try:
        for srv in servers:
            srv.start()
        for name, (path, memory_path) in ENDPOINTS.items():
            if not same_bytes(cached.url + path, cached.url + memory_path):
                raise RuntimeError(f"{path} and {memory_path} differ; the comparison would be unfair")
            for srv in (redis_only, uncached):
                urllib.request.urlopen(srv.url + path, timeout=10).close()  # warm, like the cached server
            configs = [
                ("cached", cached, path),
                ("memory", cached, memory_path),
                ("redis-only", redis_only, path),
                ("uncached", uncached, path),
            ]
            if name in STATIC_JSON:
                configs.append(("static json", origin, static_json(stack, STATIC_JSON[name])))
                with urllib.request.urlopen(origin.url + configs[-1][2], timeout=10) as fetched:
                    if fetched.headers.get("X-Origin-Cache") != "STATIC":
                        raise RuntimeError(f"{configs[-1][2]} was not served as a static file by the origin")
                    sizes[f"{name} static json"] = len(fetched.read())
                with urllib.request.urlopen(cached.url + path, timeout=10) as fetched:
                    sizes[f"{name} api"] = len(fetched.read())
            for kind, _, _ in configs:
                summaries[f"{name} {kind}"] = Summary(f"{name} {kind}")
            for r in range(rounds):
                for kind, srv, p in configs if r % 2 == 0 else list(reversed(configs)):
                    label = f"{name} {kind}"
                    env = {"BENCH_PATH": p, "BENCH_EXPECT_XCACHE": EXPECT[kind]}
                    if kind == "static json":  # Nginx's static location marks what it served itself
                        env["BENCH_EXPECT_HEADERS"] = "X-Origin-Cache=STATIC"
                    metrics = app_url if kind == "static json" else srv.url  # the app behind the origin
                    before = {**scrape(metrics), **redis_mgets(cache_redis)}
                    result = run_locust(
                        label, SCENARIO, srv.url, users, seconds, "target", env,
                        raw=raw, run_id=f"{name}-r{r + 1}-{kind.replace(' ', '-')}", round_no=r + 1,
                    )  # fmt: skip
                    result.checks = delta(before, {**scrape(metrics), **redis_mgets(cache_redis)})
                    result.problems += verify(kind, name, result.requests, result.checks)
                    summaries[label].runs.append(result)
                    flags = ["locust CPU warning"] if result.locust_cpu_warning else []
                    flags += result.problems + ([f"{result.all_failures} failures"] if result.all_failures else [])
                    print(
                        f"round {r + 1}/{rounds} {label:<18} {result.rps:8.0f} req/s  p95 {result.p95:.0f} ms"
                        f"  {'; '.join(flags)}",
                        flush=True,
                    )
            s = {k: summaries[f"{name} {k}"] for k in EXPECT if f"{name} {k}" in summaries}
            if name in STATIC_JSON:
                comparisons.append(
                    compare(f"**{name}** static json / uncached", summaries[f"{name} static json"], s["uncached"],
                            fmt="{:.1f}", extra="x")
                )  # fmt: skip
            comparisons += [
                compare(f"**{name}** cached / memory (target at least 0.85)", s["cached"], s["memory"], fmt="{:.2f}"),
                compare(f"**{name}** redis-only / memory", s["redis-only"], s["memory"], fmt="{:.2f}"),
                compare(f"**{name}** cached / uncached", s["cached"], s["uncached"], fmt="{:.1f}", extra="x"),
            ]
    finally:
        cache_redis.close()
        for srv in servers:
            srv.stop()
        stack.down(quiet=True, kill=True)
        tmp.cleanup()
    notes = [
        f"Locust FastHttpUser x{users}, {seconds}s per run, {rounds} interleaved runs per configuration; one "
        "gunicorn worker with 4 threads per configuration, straight to gunicorn; req/s counts successful requests "
        "only. Memory and cached run in the same server process; redis-only has BREAKWATER_CACHE_LOCAL=0; "
        "uncached runs with BREAKWATER_CACHE_ENABLED=0 and reads a replica every time.",
        "Checked on every run: each response's X-Cache (a wrong one is a failed request), the server's cache "
        "counters (hits for cached and redis-only, bypasses for uncached, none for memory) and the cache Redis's "
        "MGET calls (near zero for cached: the local tier served it; one per request for redis-only). Runs where "
        "Locust warned about its own CPU are not used unless all were flagged (then the row says so).",
        "Region cascade, static json: the emitted content-hashed file with region 440000's children "
        f"({sizes.get('regions static json', 0)} bytes, the address picker's format; /api/regions/440000 sends "
        f"{sizes.get('regions api', 0)} bytes) through the stack's Nginx origin (its 2 CPU-bound workers share the "
        "cores with Locust), every response checked for X-Origin-Cache: STATIC and the app's counters for no "
        "request; Locust, not Nginx, is the limit there, so that figure is a lower bound.",
    ]
    meta = {"users": users, "seconds": seconds, "rounds": rounds, "endpoints": ENDPOINTS, "static_json": STATIC_JSON,
            "bytes": sizes}  # fmt: skip
    path = write_report(
        "bench-cache",
        "Redis cache: cached vs bytes from memory vs uncached",
        list(summaries.values()),
        notes,
        comparisons,
        meta,
    )
    update_readme("bench-cache", path.read_text())
    print(path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
