"""`make bench-workers`: processes, threads and coroutines, measured on this site.

Three gunicorns on one private stack, identical but for BREAKWATER_WEB_WORKER_CLASS, each with the stack's
WEB_WORKERS processes (2):

* sync    - one request per process at a time (processes);
* gthread - WEB_THREADS (4) threads per process (threads);
* gevent  - up to WEB_GEVENT_CONNECTIONS (100) greenlets per process, the socket module patched (coroutines).

Driven by Locust (the same users for all three, interleaved A B C, C B A, ...) on three bench routes
(site/breakwater_tools/bench/workers.py):

* replica  - the homepage data read from a replica on every request (I/O-bound: MariaDB, plus Python);
* upstream - one HTTP GET to a local slow server started here, which answers after 50 ms (I/O-bound: waiting);
* markdown - the article renderer on a long document (CPU-bound).

Reported per configuration and route: successful req/s (median, spread), p50/p95/p99, failures, and the peak
resident memory of the gunicorn master and its workers during the run (RSS summed, and PSS, which counts pages
shared between forked workers once). Checked on every response: X-Bench-Model names the model the serving
process really runs (process / thread / gevent), so a run under the wrong worker class fails its requests; and
the slow upstream must have answered at least once per successful upstream request.
Writes loadtests/results/bench-workers.{md,json} and raw Locust files in loadtests/results/bench-workers/ (under
BENCH_QUICK=1 in loadtests/results/quick/); `make bench-publish` puts a full run's table in docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import urllib.request
from pathlib import Path

from benchlib import (
    AppServer,
    MemorySampler,
    Summary,
    compare,
    knob,
    publish_report,
    raw_dir,
    run_locust,
    start_private_stack,
)

NAME = "bench-workers"
SCENARIO = Path(__file__).parent / "scenarios" / "get_path.py"
MODELS = {"sync": "process", "gthread": "thread", "gevent": "gevent"}
ROUTES = {
    "replica": "/_bench/workers/replica",
    "upstream": "/_bench/workers/upstream?port={port}",
    "markdown": "/_bench/workers/markdown",
}
UPSTREAM_DELAY = 0.05


class SlowUpstream:
    """A local HTTP server answering every request after 50 ms (asyncio: it is never the bottleneck)."""

    def __init__(self) -> None:
        self.served = 0
        self.loop = asyncio.new_event_loop()
        server = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0, backlog=4096))
        self.port = server.sockets[0].getsockname()[1]
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (await reader.readline()) not in (b"\r\n", b""):
                pass
            await asyncio.sleep(UPSTREAM_DELAY)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
            self.served += 1
        except OSError:
            pass
        finally:
            writer.close()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


def main() -> int:
    users = knob("BENCH_USERS", 32, 32)
    seconds = knob("BENCH_SECONDS", 10, 2)
    rounds = knob("BENCH_ROUNDS", 3, 1)
    raw = raw_dir(NAME)
    stack, tmp = start_private_stack()
    s = stack.settings
    workers, threads, connections = s.int("WEB_WORKERS"), s.int("WEB_THREADS"), s.int("WEB_GEVENT_CONNECTIONS")
    servers = {
        wc: AppServer(
            f"workers-{wc}", stack, {"BREAKWATER_BENCH_ROUTES": "1"}, workers=workers, threads=threads,
            worker_class=wc, connections=connections,
        )
        for wc in MODELS
    }  # fmt: skip
    upstream = SlowUpstream()
    summaries: dict[str, Summary] = {}
    memory: dict[str, dict[str, float]] = {}
    idle: dict[str, dict[str, float]] = {}
    try:
        for srv in servers.values():
            srv.start()
        with urllib.request.urlopen(servers["sync"].url + ROUTES["markdown"], timeout=30) as resp:
            doc = json.loads(resp.read())
        for wc, srv in servers.items():
            rss, pss = MemorySampler(srv.proc.pid).sample()
            idle[wc] = {"rss_mb": rss / 2**20, "pss_mb": pss / 2**20}
        for route, path in ROUTES.items():
            path = path.format(port=upstream.port)
            for wc in MODELS:
                summaries[f"{route} {wc}"] = Summary(f"{route} {wc}")
            order = list(MODELS)
            for r in range(rounds):
                for wc in order if r % 2 == 0 else list(reversed(order)):
                    label, srv = f"{route} {wc}", servers[wc]
                    env = {"BENCH_PATH": path, "BENCH_EXPECT_HEADERS": f"X-Bench-Model={MODELS[wc]}"}
                    served = upstream.served
                    with MemorySampler(srv.proc.pid) as mem:
                        result = run_locust(
                            label, SCENARIO, srv.url, users, seconds, "target", env,
                            raw=raw, run_id=f"{route}-r{r + 1}-{wc}", round_no=r + 1,
                        )  # fmt: skip
                    ok = result.requests - result.failures
                    result.checks = {
                        "peak_rss_mb": round(mem.peak_rss / 2**20, 1),
                        "peak_pss_mb": round(mem.peak_pss / 2**20, 1),
                    }
                    if route == "upstream":
                        result.checks["upstream_served"] = upstream.served - served
                        if upstream.served - served < ok:
                            result.problems.append(
                                f"check: the slow upstream answered {upstream.served - served} times for {ok} requests"
                            )
                    memory.setdefault(label, {"rss": [], "pss": []})
                    memory[label]["rss"].append(result.checks["peak_rss_mb"])
                    memory[label]["pss"].append(result.checks["peak_pss_mb"])
                    summaries[label].runs.append(result)
                    flags = ["locust CPU warning"] if result.locust_cpu_warning else []
                    flags += result.problems + ([f"{result.all_failures} failures"] if result.all_failures else [])
                    print(
                        f"round {r + 1}/{rounds} {label:<18} {result.rps:8.0f} req/s  p99 {result.p99:.0f} ms  "
                        f"RSS {result.checks['peak_rss_mb']:.0f} MB  {'; '.join(flags)}",
                        flush=True,
                    )
    finally:
        upstream.stop()
        for srv in servers.values():
            srv.stop()
        stack.down(quiet=True, kill=True)
        tmp.cleanup()

    comparisons = []
    for route in ROUTES:
        base = summaries[f"{route} sync"]
        for wc in ("gthread", "gevent"):
            comparisons.append(
                compare(f"**{route}** {wc} / sync", summaries[f"{route} {wc}"], base, fmt="{:.2f}", extra="x")
            )
    mem_rows = [
        "",
        "| configuration | peak RSS, master + workers (MB, median) | peak PSS (MB, median) | idle RSS / PSS (MB) |",
        "|---|---|---|---|",
    ]
    for label, m in memory.items():
        wc = label.split()[-1]
        mem_rows.append(
            f"| {label} | {_median(m['rss']):.0f} | {_median(m['pss']):.0f} | "
            f"{idle[wc]['rss_mb']:.0f} / {idle[wc]['pss_mb']:.0f} |"
        )
    mem_rows.append("")
    notes = [
        *mem_rows,
        f"Each configuration: one gunicorn, {workers} worker processes (the stack's WEB_WORKERS), straight to "
        f"gunicorn (no Nginx); gthread with {threads} threads per process, gevent with up to {connections} "
        "connections per process; the app, MariaDB (primary and two replicas) and Redis of one private stack. "
        f"Locust FastHttpUser x{users} (a closed model: a slower server gets fewer requests), {seconds}s per run, "
        f"{rounds} interleaved run(s) per configuration and route; req/s counts successful requests only.",
        f"Routes: replica = the homepage data (a few queries, ~60 rows) from a replica on every request, no cache; "
        f"upstream = one HTTP GET to a local asyncio server that answers after {UPSTREAM_DELAY * 1000:.0f} ms (a "
        "new connection per request); markdown = the article renderer (Python-Markdown + nh3) on a "
        f"{doc['markdown_bytes'] / 1000:.1f} KB document ({doc['html_bytes'] / 1000:.1f} KB of HTML). Upper "
        f"bounds for upstream: sync can hold {workers} requests at once ({workers * 20} req/s), gthread "
        f"{workers * threads} ({workers * threads * 20} req/s), gevent all {users} users ({users * 20} req/s).",
        "Memory: peak of the sums over the gunicorn master and its workers, sampled every 0.5 s during each run "
        "(psutil); the RSS sum counts a page the forked workers share once in every process, PSS splits it between "
        "them. Idle = after "
        "start-up, before any load.",
        "Checked on every response: X-Bench-Model (process / thread / gevent, from the serving process itself: "
        "a worker thread? gevent's patched socket module?) must match the worker class, else the request failed; "
        "for upstream, the slow server must have answered at least once per successful request. All processes "
        "(Locust, gunicorn, MariaDB, Redis) share the same 2 cores.",
    ]
    meta = {
        "users": users,
        "seconds": seconds,
        "rounds": rounds,
        "workers": workers,
        "threads": threads,
        "gevent_connections": connections,
        "routes": ROUTES,
        "idle_memory_mb": idle,
        "memory_mb": {
            k: {"rss_median": _median(v["rss"]), "pss_median": _median(v["pss"]), **v} for k, v in memory.items()
        },
    }
    publish_report(
        NAME,
        "Processes, threads and coroutines: gunicorn sync vs gthread vs gevent",
        list(summaries.values()),
        notes,
        comparisons,
        meta,
    )
    return 0


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    return (ordered[(n - 1) // 2] + ordered[n // 2]) / 2 if n else float("nan")


if __name__ == "__main__":
    sys.exit(main())
