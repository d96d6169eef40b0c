"""`make bench-static`: what the emitted pages, the origin and the edge give, and how fast a publish shows.

One private stack (its origin's microcache off, so a dynamic request reaches the app every time), in
one run on this machine:

1. **wrk** (Locust cannot saturate Nginx), four configurations interleaved:
   * ``minimal nginx`` - a second Nginx of our own serving a copy of the emitted index.html at ``/``
     (see MINIMAL_CONF: one server, sendfile, the origin's worker_processes and keepalive, no access log);
   * ``origin static`` - the origin's ``/`` (X-Origin-Cache: STATIC), same request, same bytes;
   * ``origin static gzip`` / ``edge hit gzip`` - ``/`` with ``Accept-Encoding: gzip`` at the origin
     (its .gz twin, gzip_static) and at the Varnish edge (X-Edge-Cache: HIT, the same gzip bytes).
     Varnish stores the gzip body and would gunzip it for a client without gzip, so the edge is
     compared where both send the same bytes, as browsers ask for them.
2. **Locust** (FastHttpUser, which asks for gzip), the homepage three ways, interleaved:
   * ``static`` - the origin's emitted file (every response checked for X-Origin-Cache: STATIC);
   * ``dynamic cached`` - ``/?bench=1`` through the same origin: any query string goes to the app,
     which renders the homepage from its Redis-cached data (X-Cache hit/stale/miss, no X-Origin-Cache);
   * ``dynamic uncached`` - an extra gunicorn with BREAKWATER_CACHE_ENABLED=0 and the stack app's
     workers and threads, hit directly (X-Cache: bypass; every request reads a replica);
   * ``dynamic uncached primary-only`` - the same, but one plain engine on the primary (BREAKWATER_DB_ROUTING=0,
     BREAKWATER_DB_REPLICAS=<the primary>): the site with one database and no cache (checked: Com_select);
   * ``edge`` - ``/`` through the Varnish edge (X-Edge-Cache: HIT; Locust is the limit, as for static).
3. **Publish latency under load**: while Locust visitors read pages through the edge and the origin
   at a steady rate, an editor PATCHes an article's title through the API; from the response on, the
   article page is polled every 20 ms anonymously at the origin and at the edge until the new title
   shows. The edge holds the current page (HIT) before each publish.

Server-side checks: the app's request counter (static and edge runs must not reach the app), its
cache counters (hits for cached, bypasses for uncached) and Varnish's hit counter for the edge.
Writes loadtests/results/bench-static.{md,json} and raw files in loadtests/results/bench-static/ (under
BENCH_QUICK=1 in loadtests/results/quick/); `make bench-publish` puts a full run's table in docs/benchmarks.md.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from benchlib import (
    BIN,
    WRK_DONE_LUA,
    AppServer,
    RunResult,
    Summary,
    compare,
    delta,
    knob,
    publish_report,
    raw_dir,
    run_locust,
    run_wrk_once,
    scrape,
    start_private_stack,
    total,
)

from breakwater_tools.stack.ports import free_ports
from breakwater_tools.stack.programs import ensure_wrk, nginx_mime_types, which

NAME = "bench-static"
GET_PATH = Path(__file__).parent / "scenarios" / "get_path.py"
VISITORS = Path(__file__).parent / "scenarios" / "static_visitors.py"
REQUESTS = "breakwater_http_requests_total"
EVENTS = "breakwater_cache_events_total"
GZIP = {"Accept-Encoding": "gzip"}

#: The minimal Nginx: what the origin does for `/` minus everything that is the origin's own job.
MINIMAL_CONF = """\
{user}worker_processes auto;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
daemon off;

events {{
    worker_connections 4096;
}}

http {{
    include {mime_types};
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    keepalive_requests 10000;
    access_log off;
    client_body_temp_path {dir}/tmp;
    proxy_temp_path {dir}/tmp;
    fastcgi_temp_path {dir}/tmp;
    uwsgi_temp_path {dir}/tmp;
    scgi_temp_path {dir}/tmp;

    server {{
        listen 127.0.0.1:{port} reuseport;
        root {dir}/www;
        location = / {{
            try_files /index.html =404;
        }}
    }}
}}
"""
MINIMAL_DIFFERS = (
    "The minimal Nginx has the origin's worker_processes (auto), worker_connections, sendfile, tcp_nopush and "
    "keepalive settings; it has no access log (nor has the origin for emitted pages, unless "
    "BREAKWATER_ORIGIN_LOG_STATIC=1: it logs what reaches the app, buffered 64 KB), no charset "
    "(the origin adds `; charset=utf-8` to Content-Type), no gzip or gzip_static, no open_file_cache (neither does "
    "the origin for emitted HTML: a publish must show at once), no maps, rate-limit zone, regex locations or "
    "the four add_header lines (Cache-Control, xkey, Surrogate-Key, X-Origin-Cache)."
)

WRK_LUA = WRK_DONE_LUA  # (its name here, which bench_spike imports)


# ---------------------------------------------------------------------- helpers
def fetch(url: str, headers: dict | None = None, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


class MinimalNginx:
    """A second Nginx of our own: one server, root = a temp folder holding a copy of one file."""

    def __init__(self, source: Path) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="breakwater-minimal-nginx-")
        self.dir = Path(self.tmp.name)
        (self.dir / "www").mkdir()
        (self.dir / "tmp").mkdir()
        shutil.copyfile(source, self.dir / "www" / "index.html")
        self.port = free_ports(1)[0]
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        conf = self.dir / "nginx.conf"
        conf.write_text(
            MINIMAL_CONF.format(
                user="user root;\n" if os.geteuid() == 0 else "",  # as the origin: workers run as the invoking user
                dir=self.dir,
                mime_types=nginx_mime_types(),
                port=self.port,
            )
        )
        nginx = which("nginx") or "nginx"
        log = open(self.dir / "stderr.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [nginx, "-c", str(conf), "-p", str(self.dir)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if fetch(self.url + "/", timeout=2)[0] == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"the minimal nginx did not start: {(self.dir / 'stderr.log').read_text()[-500:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGQUIT)  # graceful; workers exit with the master
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.tmp.cleanup()


def run_wrk(
    config: str, url: str, headers: dict, seconds: int, connections: int, threads: int, *, raw: Path, run_id: str,
    round_no: int,
) -> RunResult:  # fmt: skip
    """One wrk run; its output stays in ``raw`` as ``<run_id>.txt``."""
    script = raw / "wrk-summary.lua"
    if not script.exists():
        script.write_text(WRK_LUA)
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--timeout", "5s", "-s", str(script)]
    for name, value in headers.items():
        cmd += ["-H", f"{name}: {value}"]
    run = run_wrk_once([*cmd, url], config, raw, run_id, seconds + 60)
    s = run.summary
    failures = s["status"] + s["connect"] + s["read"] + s["write"] + s["timeout"]
    return run.result(config, round_no, failures, {"bytes_per_request": s["bytes"] / max(s["requests"], 1)})


def varnish_counters(workdir: Path) -> dict[str, float]:
    out = subprocess.run(
        ["varnishstat", "-n", str(workdir), "-1", "-j", "-f", "MAIN.client_req", "-f", "MAIN.cache_hit",
         "-f", "MAIN.cache_miss", "-f", "MAIN.backend_req"],
        capture_output=True, text=True, timeout=20, check=True,
    ).stdout  # fmt: skip
    data = json.loads(out)
    counters = data.get("counters", data)  # varnishstat 7 nests them; 6 does not
    return {f"varnish_{k.removeprefix('MAIN.')}": float(v["value"]) for k, v in counters.items() if "value" in v}


class NodeSelects:
    """Com_select of every database node, read over the monitor user: which node served the reads."""

    def __init__(self, stack) -> None:
        from sqlalchemy import create_engine

        s = stack.settings
        nodes = [("primary", *s.primary_address)]
        nodes += [(f"replica{i}", h, p) for i, (h, p) in enumerate(s.replica_addresses, start=1)]
        self.engines = {name: create_engine(s.database_url(h, p, "DB_MONITOR_USER")) for name, h, p in nodes}

    def read(self) -> dict[str, float]:
        from sqlalchemy import text

        out = {}
        for name, engine in self.engines.items():
            with engine.connect() as conn:
                out[f"com_select:{name}"] = float(conn.execute(text("SHOW GLOBAL STATUS LIKE 'Com_select'")).one()[1])
        return out

    def dispose(self) -> None:
        for engine in self.engines.values():
            engine.dispose()


def app_home_requests(moved: dict[str, float]) -> float:
    return total(moved, REQUESTS, endpoint="home.index")


def percentile(values: list[float], fraction: float) -> float:
    """Nearest rank: the smallest sample with at least ``fraction`` of the samples at or below it."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


# ---------------------------------------------------------------------- publish latency
@dataclass
class PublishSample:
    article: str
    title: str
    publish_ms: float  # the PATCH round trip
    origin_s: float | None = None  # from the response until the origin showed the title (None: not within timeout)
    edge_s: float | None = None
    edge_header: str = ""  # X-Edge-Cache of the first response with the new title
    origin_header: str = ""  # X-Origin-Cache of the first response with the new title
    edge_stale_before: bool = False  # the edge still held an older title when the next sample began
    notes: list[str] = field(default_factory=list)


def editor_token(stack) -> str:
    env = {**stack.settings.child_env(), "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [sys.executable, "-c", "from breakwater.cli import main; main()", "user", "token",
         stack.settings["EDITOR_NAME"], "--label", "bench-static"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    token = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    if proc.returncode != 0 or not token.startswith("bw_"):
        raise RuntimeError(f"could not issue an editor token: {proc.stderr[-500:]}")
    return token


def editor_call(origin: str, token: str, method: str, path: str, body: dict | None = None) -> dict:
    req = urllib.request.Request(
        f"{origin}/api/editor{path}",
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=15) as resp:
        return json.loads(resp.read())


def title_of(body: bytes) -> str:
    m = re.search(rb"<title>([^<]*)</title>", body)
    return m.group(1).decode().split(" \u00b7 ")[0].strip() if m else ""


def settle_edge(edge: str, path: str, current: str) -> bool:
    """Make the edge hold the current page (HIT); returns whether it held an older one first."""
    _, headers, body = fetch(edge + path)
    stale = title_of(body) != current
    if stale:  # left over from the previous sample: drop it so this sample starts from a correct edge
        urllib.request.urlopen(urllib.request.Request(edge + path, method="PURGE"), timeout=10).close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        _, headers, body = fetch(edge + path)
        if title_of(body) == current and headers.get("X-Edge-Cache") == "HIT":
            return stale
        time.sleep(0.05)
    raise RuntimeError(f"the edge does not hold the current {path} ({title_of(body)!r}, expected {current!r})")


def publish_sample(origin: str, edge: str, token: str, article: dict, timeout: float) -> PublishSample:
    path = f"/articles/{article['slug']}"
    stale_before = settle_edge(edge, path, article["title"])
    title = f"Bench {uuid.uuid4().hex[:10]}"
    started = time.monotonic()
    editor_call(origin, token, "PATCH", f"/articles/{article['id']}", {"title": title})
    t0 = time.monotonic()
    sample = PublishSample(article["slug"], title, (t0 - started) * 1000, edge_stale_before=stale_before)

    def poll(base: str, attr: str, header: str) -> None:
        while time.monotonic() - t0 < timeout:
            _, headers, body = fetch(base + path)
            if title_of(body) == title:
                setattr(sample, attr + "_s", time.monotonic() - t0)
                setattr(sample, attr + "_header", headers.get(header, ""))
                return
            time.sleep(0.02)

    pollers = [
        threading.Thread(target=poll, args=(origin, "origin", "X-Origin-Cache")),
        threading.Thread(target=poll, args=(edge, "edge", "X-Edge-Cache")),
    ]
    for t in pollers:
        t.start()
    for t in pollers:
        t.join()
    article["title"] = title
    if sample.edge_s is None:
        _, headers, body = fetch(edge + path)
        sample.notes.append(
            f"after {timeout:.0f} s the edge still served {title_of(body)!r} "
            f"(X-Edge-Cache {headers.get('X-Edge-Cache')}, Age {headers.get('Age')})"
        )
    return sample


def latency_row(label: str, values: list[float | None], timeout: float, goal: float) -> str:
    seen = [v for v in values if v is not None]
    missing = len(values) - len(seen)
    # A sample not seen within the timeout counts as "more than the timeout" in the percentiles.
    ranked = [v if v is not None else math.inf for v in values]

    def show(v: float) -> str:
        return f"> {timeout:.0f} s" if math.isinf(v) else f"{v:.2f} s"

    p50, p95 = percentile(ranked, 0.50), percentile(ranked, 0.95)
    worst = max(ranked) if ranked else float("nan")
    verdict = "met" if p95 < goal else "**missed**"
    return (
        f"| {label} | {len(values)} | {show(p50)} | {show(p95)} | {show(worst)} | "
        f"{f'{min(seen):.2f} s' if seen else '-'} | {missing} | p95 < {goal:.0f} s: {verdict} |"
    )


def start_visitors(edge: str, origin: str, paths: list[str], users: int, rate: float, raw: Path) -> subprocess.Popen:
    prefix = raw / "publish-visitors"
    env = {
        **os.environ,
        "BENCH_EDGE": edge,
        "BENCH_ORIGIN": origin,
        "BENCH_VISIT_PATHS": ",".join(paths),
        "BENCH_VISITOR_RATE": str(rate),
    }
    cmd = [
        str(BIN / "locust"), "-f", str(VISITORS), "--headless", "-u", str(users), "-r", str(users), "-t", "30m",
        "--only-summary", "--csv", str(prefix), "--json-file", str(prefix),
    ]  # fmt: skip
    log = open(prefix.with_suffix(".log"), "w")  # noqa: SIM115
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)


def stop_visitors(proc: subprocess.Popen, raw: Path) -> dict:
    """Stop the visitors (SIGTERM: Locust writes its stats) and summarise what they did."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    prefix = raw / "publish-visitors"
    stats_file = next((c for c in (prefix.with_suffix(".json"), prefix) if c.exists()), None)
    log = prefix.with_suffix(".log").read_text() if prefix.with_suffix(".log").exists() else ""
    summary = {"locust_cpu_warning": "CPU usage above" in log or "CPU usage was too high" in log, "per_name": {}}
    if stats_file is None:
        summary["error"] = "Locust wrote no stats"
        return summary
    for s in json.loads(stats_file.read_text()):
        elapsed = max(s["last_request_timestamp"] - s["start_time"], 1e-9)
        summary["per_name"][s["name"]] = {
            "requests": s["num_requests"],
            "failures": s["num_failures"],
            "rps": round(s["num_requests"] / elapsed, 1),
        }
    return summary


# ---------------------------------------------------------------------- main
def record(summaries: dict[str, Summary], result: RunResult, rounds: int) -> None:
    summaries[result.config].runs.append(result)
    flags = ["locust CPU warning"] if result.locust_cpu_warning else []
    flags += result.problems + ([f"{result.all_failures} failures"] if result.all_failures else [])
    print(
        f"round {result.round}/{rounds} {result.config:<34} {result.rps:9.0f} req/s  p95 {result.p95:.1f} ms"
        f"  {'; '.join(flags)}",
        flush=True,
    )


@dataclass
class Knobs:
    """The run's sizes, from the environment (BENCH_*; QUICK runs shorten them)."""

    seconds: int
    wrk_seconds: int
    rounds: int
    users: int
    connections: int
    wrk_threads: int
    samples: int
    timeout: float
    visitors: int
    visitor_rate: float

    @classmethod
    def from_env(cls) -> Knobs:
        seconds = knob("BENCH_SECONDS", 10, 2)
        return cls(
            seconds=seconds,
            wrk_seconds=knob("BENCH_WRK_SECONDS", max(3, seconds // 2), 1),
            rounds=knob("BENCH_ROUNDS", 3, 1),
            users=int(os.environ.get("BENCH_USERS", "16")),
            connections=int(os.environ.get("BENCH_CONNECTIONS", "64")),
            wrk_threads=int(os.environ.get("BENCH_WRK_THREADS", "2")),
            samples=knob("BENCH_PUBLISH_SAMPLES", 20, 3),
            timeout=float(os.environ.get("BENCH_PUBLISH_TIMEOUT", "5")),
            visitors=int(os.environ.get("BENCH_VISITORS", "20")),
            visitor_rate=float(os.environ.get("BENCH_VISITOR_RATE", "5")),
        )


@dataclass
class Run:
    """One run's stack, its extra servers and what the phases measured."""

    knobs: Knobs
    stack: object
    raw: Path
    uncached: AppServer
    primary_only: AppServer
    selects: NodeSelects
    minimal: MinimalNginx
    summaries: dict[str, Summary] = field(default_factory=dict)
    checks: dict[str, object] = field(default_factory=dict)
    bodies: dict[str, bytes] = field(default_factory=dict)
    publish: list[PublishSample] = field(default_factory=list)
    visitor_summary: dict = field(default_factory=dict)
    articles: int = 0

    @property
    def origin(self) -> str:
        return self.stack.settings.origin_url.rstrip("/")

    @property
    def edge(self) -> str:
        s = self.stack.settings
        return f"http://{s['HOST']}:{s.int('EDGE_PORT')}"

    @property
    def app(self) -> str:
        s = self.stack.settings
        return f"http://{s['HOST']}:{s.int('APP_PORT')}"


def start(knobs: Knobs) -> tuple[Run, tempfile.TemporaryDirectory]:
    """A private stack (microcache off) and the servers compared with it: the app without its cache, the app
    on the primary alone (the site before any of its techniques), a minimal Nginx serving the same file."""
    stack, tmp = start_private_stack(overrides={"BREAKWATER_ORIGIN_MICROCACHE": "0"})
    s = stack.settings
    workers, threads = s.int("WEB_WORKERS"), s.int("WEB_THREADS")
    # Their own metrics folders: with more than one worker, /metrics must add up every worker's counters.
    prom = Path(s["STATE_DIR"]) / "bench-uncached-metrics"
    prom.mkdir(exist_ok=True)
    uncached = AppServer(
        "uncached",
        stack,
        {"BREAKWATER_CACHE_ENABLED": "0", "PROMETHEUS_MULTIPROC_DIR": str(prom)},
        workers=workers,
        threads=threads,
    )
    # One database, no cache. A plain engine (no router) bound to the primary: BREAKWATER_DB_ROUTING=0 binds
    # the first "replica", here the primary's own address.
    prom_primary = Path(s["STATE_DIR"]) / "bench-primary-metrics"
    prom_primary.mkdir(exist_ok=True)
    primary_host, primary_port = s.primary_address
    primary_only = AppServer(
        "primary-only",
        stack,
        {
            "BREAKWATER_CACHE_ENABLED": "0",
            "BREAKWATER_DB_ROUTING": "0",
            "BREAKWATER_DB_REPLICAS": f"{primary_host}:{primary_port}",
            "PROMETHEUS_MULTIPROC_DIR": str(prom_primary),
        },
        workers=workers,
        threads=threads,
    )
    run = Run(
        knobs, stack, raw_dir(NAME), uncached, primary_only, NodeSelects(stack),
        MinimalNginx(Path(s["STATIC_DIR"]) / "index.html"),
    )  # fmt: skip
    return run, tmp


def stop(run: Run, tmp: tempfile.TemporaryDirectory) -> None:
    run.minimal.stop()
    run.uncached.stop()
    run.primary_only.stop()
    run.selects.dispose()
    run.stack.down(quiet=True, kill=True)
    tmp.cleanup()


def check_bytes(run: Run) -> None:
    """Same bytes and the right headers everywhere, before anything is measured."""
    minimal, origin, edge, uncached, checks = run.minimal, run.origin, run.edge, run.uncached, run.checks
    _, mh, minimal_body = fetch(minimal.url + "/")
    _, oh, origin_body = fetch(origin + "/")
    if origin_body != minimal_body or oh.get("X-Origin-Cache") != "STATIC":
        raise RuntimeError("the origin's / and the minimal nginx's copy differ, or / was not the emitted file")
    fetch(edge + "/", GZIP)
    _, eh, edge_gz = fetch(edge + "/", GZIP)
    _, ogh, origin_gz = fetch(origin + "/", GZIP)
    if eh.get("X-Edge-Cache") != "HIT" or edge_gz != origin_gz or ogh.get("Content-Encoding") != "gzip":
        raise RuntimeError(f"edge not a gzip HIT with the origin's bytes: {eh.get('X-Edge-Cache')}")
    _, dh, dynamic_body = fetch(origin + "/?bench=1")
    _, dh, dynamic_body = fetch(origin + "/?bench=1")
    _, uh, uncached_body = fetch(uncached.url + "/")
    if dh.get("X-Cache") != "hit" or "X-Origin-Cache" in dh or uh.get("X-Cache") != "bypass":
        raise RuntimeError(f"dynamic configurations not as claimed: {dh.get('X-Cache')}, {uh.get('X-Cache')}")
    checks["bytes"] = {
        "identity": len(origin_body),
        "gzip": len(origin_gz),
        "dynamic_cached": len(dynamic_body),
        "dynamic_uncached": len(uncached_body),
    }
    checks["content_type"] = {"origin": oh.get("Content-Type"), "minimal": mh.get("Content-Type")}
    run.bodies.update(minimal=minimal_body, origin=origin_body, origin_gz=origin_gz)


def wrk_ceilings(run: Run) -> None:
    """1. wrk: the static ceiling (minimal Nginx, the origin, the edge), interleaved rounds."""
    k, stack, app, raw, summaries, checks = run.knobs, run.stack, run.app, run.raw, run.summaries, run.checks
    rounds, wrk_seconds, connections, wrk_threads = k.rounds, k.wrk_seconds, k.connections, k.wrk_threads
    minimal, origin, edge = run.minimal, run.origin, run.edge
    minimal_body, origin_body, origin_gz = run.bodies["minimal"], run.bodies["origin"], run.bodies["origin_gz"]
    wrk_configs = [
        ("wrk: minimal nginx", minimal.url + "/", {}),
        ("wrk: origin static", origin + "/", {}),
        ("wrk: origin static gzip", origin + "/", GZIP),
        ("wrk: edge hit gzip", edge + "/", GZIP),
    ]
    for label, _, _ in wrk_configs:
        summaries[label] = Summary(label)
    for r in range(rounds):
        for label, url, headers in wrk_configs if r % 2 == 0 else list(reversed(wrk_configs)):
            before = scrape(app)
            vbefore = varnish_counters(stack.layout.edge_workdir) if "edge" in label else {}
            run_id = f"wrk-r{r + 1}-" + label.removeprefix("wrk: ").replace(" ", "-")
            result = run_wrk(
                label, url, headers, wrk_seconds, connections, wrk_threads, raw=raw, run_id=run_id, round_no=r + 1
            )
            moved = delta(before, scrape(app))
            result.checks.update({"app_home_requests": app_home_requests(moved)})
            if ("origin" in label or "edge" in label) and app_home_requests(moved) > 0:
                result.problems.append(f"check: {app_home_requests(moved):.0f} requests reached the app's /")
            if "edge" in label:
                vmoved = delta(vbefore, varnish_counters(stack.layout.edge_workdir))
                result.checks.update(vmoved)
                hits = vmoved.get("varnish_cache_hit", 0)
                if hits < 0.99 * result.requests:
                    result.problems.append(f"check: edge hits +{hits:.0f} for {result.requests} requests")
            expected = len(origin_gz) if headers else len(origin_body)
            if result.checks["bytes_per_request"] < expected:
                result.problems.append(f"check: {result.checks['bytes_per_request']:.0f} bytes per response")
            record(summaries, result, rounds)
    _, _, after_body = fetch(origin + "/")
    checks["homepage_unchanged_during_wrk"] = after_body == minimal_body


def locust_pages(run: Run) -> None:
    """2. Locust: static vs Redis-cached dynamic vs uncached dynamic homepage, and the edge."""
    k, stack, app, raw, summaries, selects = run.knobs, run.stack, run.app, run.raw, run.summaries, run.selects
    rounds, users, seconds = k.rounds, k.users, k.seconds
    origin, edge, uncached, primary_only = run.origin, run.edge, run.uncached, run.primary_only
    locust_configs = [
        ("locust: static", origin, "/", "X-Origin-Cache=STATIC;X-Cache=none"),
        ("locust: dynamic cached", origin, "/?bench=1", "X-Cache=hit,stale,miss;X-Origin-Cache=none"),
        ("locust: dynamic uncached", uncached.url, "/", "X-Cache=bypass"),
        ("locust: dynamic uncached primary-only", primary_only.url, "/", "X-Cache=bypass"),
        ("locust: edge", edge, "/", "X-Edge-Cache=HIT"),
    ]
    for label, *_ in locust_configs:
        summaries[label] = Summary(label)
    for r in range(rounds):
        for label, host, path, expect in locust_configs if r % 2 == 0 else list(reversed(locust_configs)):
            server = {uncached.url: uncached.url, primary_only.url: primary_only.url}.get(host, app)
            before = {**scrape(server), **selects.read()}
            vbefore = varnish_counters(stack.layout.edge_workdir) if label.endswith("edge") else {}
            env = {"BENCH_PATH": path, "BENCH_EXPECT_HEADERS": expect}
            result = run_locust(
                label, GET_PATH, host, users, seconds, "target", env,
                raw=raw, run_id=f"locust-r{r + 1}-" + label.removeprefix("locust: ").replace(" ", "-"),
                round_no=r + 1,
            )  # fmt: skip
            moved = delta(before, {**scrape(server), **selects.read()})
            if vbefore:
                moved.update(delta(vbefore, varnish_counters(stack.layout.edge_workdir)))
            result.checks = moved
            home = app_home_requests(moved)
            hits = sum(total(moved, EVENTS, name="home", result=k) for k in ("hit", "stale"))
            bypass = total(moved, EVENTS, name="home", result="bypass")
            need = 0.9 * result.requests
            if (label.endswith("static") or label.endswith("edge")) and home:
                result.problems.append(f"check: {home:.0f} requests reached the app's /")
            if label.endswith("edge") and moved.get("varnish_cache_hit", 0) < 0.99 * result.requests:
                result.problems.append(f"check: edge hits +{moved.get('varnish_cache_hit', 0):.0f}")
            if label.endswith("primary-only"):
                on_primary, on_replicas = (
                    moved.get("com_select:primary", 0),
                    sum(v for k, v in moved.items() if k.startswith("com_select:replica")),
                )
                if on_primary < result.requests or on_replicas > 0.1 * on_primary:
                    result.problems.append(
                        f"check: expected reads on the primary only; Com_select primary +{on_primary:.0f}, "
                        f"replicas +{on_replicas:.0f}"
                    )
            if label.endswith("cached") and "uncached" not in label and (home < need or hits < need):
                result.problems.append(f"check: expected app-rendered cache hits; / +{home:.0f}, hits +{hits:.0f}")
            if "uncached" in label and (bypass < need or hits):
                result.problems.append(f"check: expected bypass; bypass +{bypass:.0f}, hits +{hits:.0f}")
            record(summaries, result, rounds)


def publish_latency(run: Run) -> None:
    """3. Publish latency under a steady visitor load: from an editor's PATCH to the new title at the origin
    and at the edge."""
    k, stack, raw, publish = run.knobs, run.stack, run.raw, run.publish
    samples, timeout, visitors, visitor_rate = k.samples, k.timeout, k.visitors, k.visitor_rate
    origin, edge = run.origin, run.edge
    token = editor_token(stack)
    articles = [
        {"id": a["id"], "slug": a["slug"], "title": a["title"]}
        for a in editor_call(origin, token, "GET", "/articles")["articles"]
        if a["status"] == "published"
    ][:3]
    if not articles:
        raise RuntimeError("no published article to republish")
    paths = ["/", *(f"/articles/{a['slug']}" for a in articles), "/categories/news"]
    load = start_visitors(edge, origin, paths, visitors, visitor_rate, raw)
    try:
        time.sleep(3)  # let the visitors ramp up
        for i in range(samples):
            sample = publish_sample(origin, edge, token, articles[i % len(articles)], timeout)
            publish.append(sample)
            print(
                f"publish {i + 1}/{samples} {sample.article:<20} origin "
                f"{'-' if sample.origin_s is None else f'{sample.origin_s:.2f} s'}  edge "
                f"{'-' if sample.edge_s is None else f'{sample.edge_s:.2f} s'}"
                f"{'  (edge was stale before)' if sample.edge_stale_before else ''}",
                flush=True,
            )
            time.sleep(0.5)
    finally:
        run.visitor_summary = stop_visitors(load, raw)
    run.articles = len(articles)


def write_report(run: Run) -> None:
    """The comparisons, the notes on method and what was checked, and the figures, as results/bench-static.*"""
    k, summaries, publish, checks = run.knobs, run.summaries, run.publish, run.checks
    visitor_summary, articles = run.visitor_summary, run.articles
    seconds, wrk_seconds, rounds, users, connections = k.seconds, k.wrk_seconds, k.rounds, k.users, k.connections
    wrk_threads, timeout, visitors, visitor_rate = k.wrk_threads, k.timeout, k.visitors, k.visitor_rate
    workers, threads = run.stack.settings.int("WEB_WORKERS"), run.stack.settings.int("WEB_THREADS")
    comparisons = []
    sm = summaries
    comparisons += [
        compare(
            "Origin static / minimal Nginx (wrk, same file, identity; goal at least 0.8)",
            sm["wrk: origin static"],
            sm["wrk: minimal nginx"],
            fmt="{:.2f}",
        ),
        compare(
            "Edge hit / origin static (wrk, gzip)",
            sm["wrk: edge hit gzip"],
            sm["wrk: origin static gzip"],
            fmt="{:.2f}",
        ),
        compare(
            "Static / dynamic uncached (Locust; goal at least 20x)",
            sm["locust: static"],
            sm["locust: dynamic uncached"],
            fmt="{:.1f}",
            extra="x",
        ),
        compare(
            "Static / dynamic cached (Locust)",
            sm["locust: static"],
            sm["locust: dynamic cached"],
            fmt="{:.1f}",
            extra="x",
        ),
        compare(
            "Dynamic uncached (replicas) / dynamic uncached primary-only (Locust)",
            sm["locust: dynamic uncached"],
            sm["locust: dynamic uncached primary-only"],
            fmt="{:.2f}",
            extra="x",
        ),
        compare(
            "Edge / static (Locust; Locust is the limit for both)",
            sm["locust: edge"],
            sm["locust: static"],
            fmt="{:.2f}",
            extra="x",
        ),
        compare(
            "Dynamic cached / dynamic uncached (Locust)",
            sm["locust: dynamic cached"],
            sm["locust: dynamic uncached"],
            fmt="{:.1f}",
            extra="x",
        ),
    ]
    static_flagged = sm["locust: static"].all_cpu_flagged
    n_stale = sum(p.edge_stale_before for p in publish)
    missing_edge = [p for p in publish if p.edge_s is None]
    origin_goal, edge_goal = 1.0, 2.0
    visitor_text = ", ".join(
        f"{name} {v['rps']:.0f} req/s ({v['failures']} failed)"
        for name, v in visitor_summary.get("per_name", {}).items()
        if name != "Aggregated"
    )
    publish_table = "\n".join(
        [
            "",
            "| publish, then the new title at | samples | p50 | p95 | max | fastest | not within timeout | goal |",
            "|---|---|---|---|---|---|---|---|",
            latency_row("origin (Nginx, emitted file)", [p.origin_s for p in publish], timeout, origin_goal),
            latency_row("edge (Varnish, after its purge)", [p.edge_s for p in publish], timeout, edge_goal),
            "",
        ]
    )
    notes = [
        publish_table,
        f"**Publish latency**: {len(publish)} title edits (PATCH /api/editor/articles/<id> with a bearer token, "
        f"round robin over {articles if publish else 0} published articles, 0.5 s apart), timed from the PATCH "
        f"response until an anonymous GET of the article page (polled every 20 ms, give up after {timeout:.0f} s) "
        f"shows the new title; p95 is the nearest rank (sample {max(1, math.ceil(0.95 * len(publish)))} of "
        f"{len(publish)}, fastest first). Before each edit the edge "
        "was made to hold the current page (X-Edge-Cache HIT). Meanwhile Locust visitors "
        f"({visitors} users, at most {visitor_rate:g} pages/s each) read the homepage, those articles and a "
        f"category page: {visitor_text or 'no stats'}"
        f"{'; Locust warned about its CPU' if visitor_summary.get('locust_cpu_warning') else ''}.",
    ]
    if missing_edge:
        notes.append(
            f"**The edge kept the previous page** in {len(missing_edge)} of {len(publish)} publishes"
            f"; {n_stale} times the edge still held an older title when the same article's next edit began, "
            "seconds later (it was then purged by hand so that each sample starts from a correct edge). "
            "A visitor (or the poller) who asks the edge between its purge and the origin serving the new file makes "
            "it fetch the old page again, and the edge then keeps it for s-maxage (86400 s) until the next purge. "
            "Example: "
            f"{missing_edge[0].notes[0] if missing_edge[0].notes else ''}. "
            "Not tuned away here: it is what visitors get."
        )
    notes += [
        "The origin's own delay is the 0.3 s coalescing window and the rebuild; emitted HTML is never served from a "
        "cached descriptor (an earlier run, with `open_file_cache_valid 1s` on HTML, had the edge refetch and keep "
        "the old page in 19 of 20 publishes).",
        f"wrk {wrk_threads} threads x {connections} connections, {wrk_seconds}s per run; Locust FastHttpUser x{users}, "
        f"{seconds}s per run; {rounds} interleaved runs per configuration; everything (load generators, Nginx, "
        "Varnish, gunicorn, MariaDB, Redis) shares the same 2 cores, so each ceiling is also its load generator's. "
        "Locust cannot saturate Nginx: for static pages it is the limit (hence wrk for the ceilings)"
        + (
            ", and here its CPU warning flagged every static run, so static's Locust req/s and every static ratio "
            "are lower bounds, not measurements of the origin"
            if static_flagged
            else ""
        )
        + ".",
        f"Bytes: the homepage is {checks['bytes']['identity']} bytes ({checks['bytes']['gzip']} gzip). Minimal vs "
        "origin: same request, byte-identical body (checked). " + MINIMAL_DIFFERS + " Edge vs origin: both with "
        "Accept-Encoding: gzip, byte-identical gzip bodies (checked); Varnish stores the gzip body and would gunzip "
        "it for a client without gzip.",
        "Locust configurations (FastHttpUser asks for gzip): static = the origin's emitted /; dynamic cached = "
        "/?bench=1 through the same origin (a query string always goes to the app), the stack's gunicorn "
        f"({workers} workers x {threads} threads), homepage data from the cache (its per-process tier, kept current by "
        "Redis), the origin's microcache off (BREAKWATER_ORIGIN_MICROCACHE=0 for the whole stack); dynamic uncached "
        f"= an extra gunicorn, same {workers} x {threads}, BREAKWATER_CACHE_ENABLED=0, hit directly (no Nginx hop, "
        "no compression: both favour it, so static/uncached is if anything understated); dynamic uncached "
        "primary-only = another such gunicorn with one plain engine on the primary (BREAKWATER_DB_ROUTING=0, "
        "BREAKWATER_DB_REPLICAS=<the primary's address>), the site with one database and no cache (checked: "
        "Com_select moves on the primary, not on the replicas); edge = / through Varnish (every response "
        "X-Edge-Cache: HIT, Varnish's hit counter checked).",
        "Checked on every run: wrk's non-2xx/socket errors (failures) and bytes per response; the app's requests "
        "for / (none for static and edge runs); Varnish's hit counter (every edge request a hit); each Locust "
        "response's X-Origin-Cache / X-Cache (a wrong one is a failed request) and the app's cache counters (hits for "
        "dynamic cached, bypasses for uncached). Runs where Locust warned about its own CPU are not used unless all "
        "were flagged (then the row says so).",
    ]
    meta = {
        "seconds": seconds,
        "wrk_seconds": wrk_seconds,
        "rounds": rounds,
        "users": users,
        "wrk": {"threads": wrk_threads, "connections": connections, "version": wrk_version()},
        "checks": checks,
        "minimal_nginx_conf": MINIMAL_CONF,
        "publish": {
            "timeout_s": timeout,
            "samples": [p.__dict__ for p in publish],
            "origin_p50_s": _stat(publish, "origin_s", 0.5),
            "origin_p95_s": _stat(publish, "origin_s", 0.95),
            "edge_p50_s": _stat(publish, "edge_s", 0.5),
            "edge_p95_s": _stat(publish, "edge_s", 0.95),
            "visitors": {"users": visitors, "rate_per_user": visitor_rate, **visitor_summary},
        },
    }
    publish_report(
        NAME,
        "Static pages: origin vs minimal Nginx, edge vs origin, static vs dynamic, publish latency",
        list(summaries.values()),
        notes,
        comparisons,
        meta,
    )


def main() -> int:
    ensure_wrk()
    run, tmp = start(Knobs.from_env())
    try:
        run.uncached.start()
        run.primary_only.start()
        run.minimal.start()
        check_bytes(run)
        wrk_ceilings(run)
        locust_pages(run)
        publish_latency(run)
    finally:
        stop(run, tmp)
    write_report(run)
    return 0


def _stat(samples: list[PublishSample], attr: str, fraction: float) -> float | None:
    """The nearest-rank percentile in seconds; None when it is past the timeout (not seen)."""
    value = percentile([getattr(p, attr) if getattr(p, attr) is not None else math.inf for p in samples], fraction)
    return None if math.isinf(value) or math.isnan(value) else round(value, 3)


def wrk_version() -> str:
    proc = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    return (proc.stdout or proc.stderr).splitlines()[0] if (proc.stdout or proc.stderr) else ""


if __name__ == "__main__":
    sys.exit(main())
