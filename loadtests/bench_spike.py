"""`make bench-spike`: the edge under a sudden crowd (issue 20, point 5).

A private stack of its own with the default limits (nothing raised; the origin logs every request,
BREAKWATER_ORIGIN_LOG_STATIC=1, so that its access log counts what reached it), and in one run:

1. **A cold edge hit by 1,000 connections at once** (wrk, 2 threads, ``Accept-Encoding: gzip`` as browsers
   ask, the homepage), side by side with a **bare varnishd 7.1 with default settings** (``-a``, ``-b`` the same
   origin, ``-n``, ``-j none``; no parameter set) serving the same page. Interleaved rounds, each round:
   ``edge`` = the stack's edge program restarted through its supervisord (empty cache, only its minimum
   threads), then wrk; ``bare`` = a fresh bare varnishd, then wrk. Both start cold the same way: wrk begins
   as soon as ``varnishadm status`` says the child runs, so the first request is a miss that the other 999
   wait on. Reported per configuration: medians and spread of req/s and p50/p95/p99, wrk's timeouts (no
   answer within 2 s) and errors; the edge's p99 over the bare Varnish's p99 (goal: at most 1.5x, 0 timeouts,
   0 errors). Checked per run: Varnish's hit counter (every request but the first a hit) and gzip bytes.
2. **A spike of visitors through the edge** (Locust, scenarios/spike_visitors.py: a LoadTestShape from
   BENCH_SPIKE_BASE visitors to ten times as many in 10 s, held, back in 10 s), the edge restarted cold first;
   each visitor from its own 127/8 source address, reading pages and their assets like a browser. Reported:
   failures (goal 0), p50/p99 per second with the visitors (chart), and the share of requests that reached
   the origin and the app, from counters before/after: Varnish's (varnishstat -j of the stack's edge), the
   origin's Nginx access log (lines written during the run, the edge's health probes left out) and the app's
   Prometheus request counter on loopback /metrics (its /healthz and /metrics left out).

Writes loadtests/results/bench-spike.{md,json} and raw files in loadtests/results/bench-spike/ (wrk output,
Locust CSV/JSON/log, the per-second timeline and its chart; under BENCH_QUICK=1 in loadtests/results/quick/).
Always a stack of its own, also under `make bench`: it restarts the edge and needs the default limits.
"""

from __future__ import annotations

import gzip
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench_static import WRK_LUA, fetch, wrk_version
from benchlib import (
    BIN,
    QUICK,
    RESULTS_REL,
    SHARED_STACK,
    BenchFolder,
    RunResult,
    SharedStack,
    Summary,
    delta,
    knob,
    publish_report,
    raw_dir,
    run_wrk_once,
    scrape,
    start_private_stack,
)

from breakwater_tools.stack.ports import free_ports
from breakwater_tools.stack.programs import ensure_wrk, which
from breakwater_tools.stack.supervised import EDGE_SIZING

NAME = "bench-spike"
SCENARIO = Path(__file__).parent / "scenarios" / "spike_visitors.py"
GZIP = {"Accept-Encoding": "gzip"}
EDGE, BARE = "cold edge, 1,000 connections at once", "bare Varnish 7.1, default settings, same page"
P99_GOAL = 1.5
REQUESTS = "breakwater_http_requests_total"
#: Varnish counters read before and after every run (the -f list of varnishstat)
VARNISH_COUNTERS = (
    "client_req", "cache_hit", "cache_miss", "cache_hitpass", "cache_hitmiss", "backend_req", "sess_conn",
    "sess_queued", "sess_dropped", "req_dropped", "sess_fail", "threads", "threads_created", "threads_limited",
    "threads_failed", "ws_client_overflow", "ws_backend_overflow", "ws_session_overflow", "ws_thread_overflow",
)  # fmt: skip


# ---------------------------------------------------------------------- Varnish
def varnishadm(workdir: Path, *args: str, timeout: float = 10) -> subprocess.CompletedProcess:
    return subprocess.run(
        [which("varnishadm") or "varnishadm", "-n", str(workdir), *args],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def wait_child(workdir: Path, timeout: float = 60) -> None:
    """Until varnishd's child process runs (its listen socket is open before: a connect proves nothing)."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            proc = varnishadm(workdir, "status")
            last = proc.stdout + proc.stderr
            if proc.returncode == 0 and "running" in proc.stdout:
                return
        except subprocess.TimeoutExpired:
            last = "varnishadm timed out"
        time.sleep(0.05)
    raise RuntimeError(f"varnishd in {workdir} did not start its child: {last[-300:]}")


def counters(workdir: Path) -> dict[str, float]:
    args = [a for c in VARNISH_COUNTERS for a in ("-f", f"MAIN.{c}")]
    out = subprocess.run(
        ["varnishstat", "-n", str(workdir), "-1", "-j", *args], capture_output=True, text=True, timeout=20, check=True
    ).stdout
    data = json.loads(out)
    found = data.get("counters", data)  # varnishstat 7 nests them
    return {k.removeprefix("MAIN."): float(v["value"]) for k, v in found.items() if "value" in v}


def moved_counters(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Every counter's change, zeros included (a 0 for sess_dropped is a finding); gauges (threads) as they are."""
    return {k: v if k == "threads" else v - before.get(k, 0.0) for k, v in sorted(after.items())}


def restart_edge(stack) -> float:
    """The stack's edge program stopped and started again through its supervisord; seconds until its child ran."""
    started = time.monotonic()
    stack.supervisor.rpc().stopProcess("edge", True)
    stack.supervisor.start("edge", wait=True)
    wait_child(stack.layout.edge_workdir)
    return time.monotonic() - started


class BareVarnish:
    """A varnishd with every parameter at its default, in front of the same origin (the built-in VCL)."""

    def __init__(self, folder: Path, origin: str) -> None:
        self.folder, self.origin = folder, origin
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.workdir = folder / "bare-varnish"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> float:
        self.stop()
        self.port = free_ports(1)[0]
        cmd = [which("varnishd") or "varnishd", "-F", "-n", str(self.workdir), "-a", f"127.0.0.1:{self.port}",
               "-b", self.origin, "-j", "none"]  # fmt: skip
        log = open(self.folder / "bare-varnish.log", "ab")  # noqa: SIM115
        started = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_child(self.workdir)
        return time.monotonic() - started

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()
        self.proc = None


# ---------------------------------------------------------------------- 1. the cold crowd (wrk)
def run_wrk(config: str, url: str, seconds: int, connections: int, threads: int, raw: Path, run_id: str,
            round_no: int) -> RunResult:  # fmt: skip
    """wrk with gzip, ``--timeout 2s`` (its default): a request unanswered for 2 s is a timeout."""
    script = raw / "wrk-summary.lua"
    if not script.exists():
        script.write_text(WRK_LUA)
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--timeout", "2s",
           "-s", str(script), "-H", "Accept-Encoding: gzip", url]  # fmt: skip
    run = run_wrk_once(cmd, config, raw, run_id, seconds + 60)
    s = run.summary
    errors = s["status"] + s["connect"] + s["read"] + s["write"]
    checks = {
        "timeouts": s["timeout"],
        "errors": errors,
        "non_2xx": s["status"],
        "max_ms": s["max_us"] / 1000,
        "bytes_per_request": s["bytes"] / max(s["requests"], 1),
    }
    return run.result(config, round_no, errors + s["timeout"], checks)


def cold_crowd(stack, folder: Path, raw: Path, rounds: int, seconds: int, connections: int, threads: int):
    s = stack.settings
    origin_hostport = f"{s['HOST']}:{s.int('ORIGIN_PORT')}"
    edge_url = f"http://{s['HOST']}:{s.int('EDGE_PORT')}"
    _, oh, origin_gz = fetch(f"http://{origin_hostport}/", GZIP)
    if oh.get("Content-Encoding") != "gzip":
        raise RuntimeError("the origin does not send the homepage gzipped")
    bare = BareVarnish(folder, origin_hostport)
    summaries = {EDGE: Summary(EDGE), BARE: Summary(BARE)}
    starts: dict[str, list[float]] = {EDGE: [], BARE: []}
    try:
        for r in range(1, rounds + 1):
            for config in (EDGE, BARE):  # A B, A B, ...
                if config == EDGE:
                    starts[config].append(restart_edge(stack))
                    url, workdir = edge_url + "/", stack.layout.edge_workdir
                else:
                    starts[config].append(bare.start())
                    url, workdir = bare.url + "/", bare.workdir
                before = counters(workdir)
                run_id = f"wrk-r{r}-{'edge' if config == EDGE else 'bare'}"
                result = run_wrk(config, url, seconds, connections, threads, raw, run_id, r)
                moved = moved_counters(before, counters(workdir))
                result.checks.update({f"varnish_{k}": v for k, v in moved.items()})
                result.checks["varnish_threads_at_start"] = before.get("threads", 0.0)  # ready when wrk began
                hits = moved.get("cache_hit", 0)
                if hits < result.requests - connections:  # the first wave may wait on the one miss
                    result.problems.append(f"check: {hits:.0f} cache hits for {result.requests} requests")
                _, h, body = fetch(url, GZIP)
                if h.get("Content-Encoding") != "gzip" or gzip.decompress(body) != gzip.decompress(origin_gz):
                    result.problems.append("check: not the origin's homepage, gzipped")
                if result.requests and result.checks["bytes_per_request"] < len(origin_gz):
                    result.problems.append(f"check: {result.checks['bytes_per_request']:.0f} bytes per response")
                summaries[config].runs.append(result)
                c = result.checks
                print(
                    f"round {r}/{rounds} {config:<48} {result.rps:8.0f} req/s  p99 {result.p99:7.1f} ms  "
                    f"timeouts {c['timeouts']} errors {c['errors']}  queued {moved.get('sess_queued', 0):.0f}  "
                    f"threads created {moved.get('threads_created', 0):.0f}  {'; '.join(result.problems)}",
                    flush=True,
                )
            bare.stop()
    finally:
        bare.stop()
    return summaries, starts


def p99_figures(summaries: dict[str, Summary]) -> dict:
    edge, bare = summaries[EDGE], summaries[BARE]
    per_round = [
        round(e.p99 / b.p99, 2) if b.p99 else None for e, b in zip(edge.runs, bare.runs, strict=False)
    ]  # fmt: skip
    edge_p99, bare_p99 = edge.median("p99"), bare.median("p99")
    ratio = edge_p99 / bare_p99 if bare_p99 else float("nan")
    timeouts = {k: int(sum(r.checks["timeouts"] for r in v.runs)) for k, v in summaries.items()}
    errors = {k: int(sum(r.checks["errors"] for r in v.runs)) for k, v in summaries.items()}

    def median_check(summary: Summary, key: str) -> float:
        return statistics.median(r.checks.get(key, 0.0) for r in summary.runs)

    mechanism = {
        name: {
            "threads_at_start": median_check(summary, "varnish_threads_at_start"),
            "threads_created": median_check(summary, "varnish_threads_created"),
            "sess_queued": median_check(summary, "varnish_sess_queued"),
            "sess_dropped": sum(r.checks.get("varnish_sess_dropped", 0.0) for r in summary.runs),
        }
        for name, summary in summaries.items()
    }
    return {
        "mechanism": mechanism,
        "edge_p99_ms": round(edge_p99, 1),
        "bare_p99_ms": round(bare_p99, 1),
        "edge_p99_spread_ms": [round(x, 1) for x in edge.spread("p99")],
        "bare_p99_spread_ms": [round(x, 1) for x in bare.spread("p99")],
        "p99_ratio": round(ratio, 2),
        "p99_ratio_per_round": per_round,
        "goal": P99_GOAL,
        "timeouts": timeouts,
        "errors": errors,
        "met": bool(ratio <= P99_GOAL and timeouts[EDGE] == 0 and errors[EDGE] == 0),
    }


# ---------------------------------------------------------------------- 2. the spike (Locust)
def page_paths(static_dir: Path, articles: int = 8, categories: int = 3) -> list[str]:
    """The pages the visitors read: the homepage, some articles and category pages, the region picker."""
    found_articles = sorted(p.parent.name for p in (static_dir / "articles").glob("*/index.html"))[:articles]
    found_categories = sorted(p.parent.name for p in (static_dir / "categories").glob("*/index.html"))[:categories]
    paths = ["/", *(f"/articles/{a}" for a in found_articles), *(f"/categories/{c}" for c in found_categories)]
    return paths + (["/regions"] if (static_dir / "regions" / "index.html").exists() else [])


def log_requests(path: Path, offset: int) -> tuple[int, dict[str, int]]:
    """Requests in the origin's access log after ``offset``: (lines, count per path), the probe's /healthz apart."""
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            lines = fh.read().decode(errors="replace").splitlines()
    except FileNotFoundError:
        return 0, {}
    per_path: dict[str, int] = {}
    for line in lines:
        try:
            target = line.split('"')[1].split()[1]
        except IndexError:
            target = "?"
        per_path[target] = per_path.get(target, 0) + 1
    return len(lines), per_path


def app_requests(moved: dict[str, float]) -> tuple[float, dict[str, float]]:
    """The app's requests (its counter) but the edge's health probes and our own scrapes."""
    per_endpoint: dict[str, float] = {}
    for key, value in moved.items():
        if key.partition("{")[0] != REQUESTS:
            continue
        endpoint = key.split('endpoint="', 1)[1].split('"', 1)[0] if 'endpoint="' in key else "?"
        per_endpoint[endpoint] = per_endpoint.get(endpoint, 0) + value
    visitors = sum(v for k, v in per_endpoint.items() if "health" not in k and "metrics" not in k)
    return visitors, per_endpoint


def spike(stack, raw: Path, shape: dict[str, str]) -> dict:
    s = stack.settings
    edge = f"http://{s['HOST']}:{s.int('EDGE_PORT')}"
    app = f"http://{s['HOST']}:{s.int('APP_PORT')}"
    access_log = stack.layout.logs / "nginx-access.log"
    paths = page_paths(Path(s["STATIC_DIR"]))
    restart_edge(stack)  # cold, as after a deploy
    prefix = raw / "spike"
    timeline_file = raw / "spike-timeline.json"
    env = {**os.environ, **shape, "BENCH_SPIKE_PATHS": ",".join(paths), "BENCH_SPIKE_TIMELINE": str(timeline_file)}
    vbefore, abefore = counters(stack.layout.edge_workdir), scrape(app)
    time.sleep(1.2)  # the origin's log buffer flushes every second: what came before is on disk
    offset = access_log.stat().st_size if access_log.exists() else 0
    cmd = [str(BIN / "locust"), "-f", str(SCENARIO), "--headless", "--host", edge, "--only-summary",
           "--csv", str(prefix), "--json-file", str(prefix)]  # fmt: skip
    expected = sum(float(shape[k]) for k in ("BENCH_SPIKE_WARM", "BENCH_SPIKE_HOLD", "BENCH_SPIKE_TAIL"))
    expected += 2 * float(shape["BENCH_SPIKE_RAMP"])
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=expected + 180)
    seconds = time.monotonic() - started
    prefix.with_suffix(".log").write_text(proc.stderr)
    time.sleep(1.5)  # the last requests' log lines
    vmoved = moved_counters(vbefore, counters(stack.layout.edge_workdir))
    amoved = delta(abefore, scrape(app))
    origin_lines, origin_paths = log_requests(access_log, offset)
    stats_file = next((c for c in (prefix.with_suffix(".json"), prefix) if c.exists()), None)
    if stats_file is None or proc.returncode not in (0, 1):
        raise RuntimeError(f"locust (spike) exited with {proc.returncode}: {proc.stderr[-800:]}")
    stats = json.loads(stats_file.read_text())
    requests = sum(e["num_requests"] for e in stats)
    failures = sum(e["num_failures"] for e in stats)
    recorded = json.loads(timeline_file.read_text()) if timeline_file.exists() else {}
    timeline = recorded.get("seconds", [])
    probes = origin_paths.get("/healthz", 0)
    # Emitted pages are in the origin's access log only with BREAKWATER_ORIGIN_LOG_STATIC=1 (this runner's own
    # stack); on another stack the edge's fetches from it (Varnish's backend_req) count instead.
    counted_by = "its access log" if s.flag("ORIGIN_LOG_STATIC") else "Varnish's backend_req"
    origin_visitors = origin_lines - probes if s.flag("ORIGIN_LOG_STATIC") else int(vmoved.get("backend_req", 0))
    app_visitors, app_endpoints = app_requests(amoved)
    edge_requests = vmoved.get("client_req", 0)
    all_times: dict[float, int] = {}
    for e in stats:
        for k, n in e["response_times"].items():
            all_times[float(k)] = all_times.get(float(k), 0) + n
    result = {
        "shape": {k.removeprefix("BENCH_SPIKE_").lower(): float(v) for k, v in shape.items()},
        "peak_users": int(float(shape["BENCH_SPIKE_BASE"]) * 10),
        "paths": paths,
        "seconds": round(seconds, 1),
        "requests": requests,
        "failures": failures,
        "failures_by_name": {e["name"]: e["num_failures"] for e in stats if e["num_failures"]},
        "requests_by_name": {e["name"]: e["num_requests"] for e in stats},
        "p50_ms": _hist_rank(all_times, 0.50),
        "p99_ms": _hist_rank(all_times, 0.99),
        "rps": round(requests / seconds, 1) if seconds else None,
        "peak_rps": max((row["requests"] for row in timeline), default=None),
        "locust_exit_code": proc.returncode,
        "locust_cpu_warning": "CPU usage above" in proc.stderr or "CPU usage was too high" in proc.stderr,
        "source_addresses": recorded.get("source_addresses"),
        "edge_requests": edge_requests,
        "edge": vmoved,
        "origin_requests": origin_visitors,
        "origin_counted_by": counted_by,
        "origin_probe_requests": probes,
        "origin_requests_by_path": dict(sorted(origin_paths.items(), key=lambda kv: -kv[1])[:20]),
        "app_requests": app_visitors,
        "app_requests_by_endpoint": app_endpoints,
        "origin_share": round(origin_visitors / edge_requests, 5) if edge_requests else None,
        "app_share": round(app_visitors / edge_requests, 5) if edge_requests else None,
        "timeline": timeline,
    }
    chart(raw / "spike-timeline.png", timeline, result)
    return result


def _hist_rank(histogram: dict[float, int], fraction: float) -> float | None:
    n = sum(histogram.values())
    if not n:
        return None
    running = 0
    for value in sorted(histogram):
        running += histogram[value]
        if running >= fraction * n:
            return value
    return max(histogram)


def chart(path: Path, timeline: list[dict], result: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not timeline:
        return
    t = [row["t"] for row in timeline]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    top.plot(t, [row["p50_ms"] for row in timeline], label="p50", color="#55a868")
    top.plot(t, [row["p99_ms"] for row in timeline], label="p99", color="#c44e52")
    top.set_ylabel("response time, ms (per second)")
    top.set_yscale("log")
    top.set_title(
        f"Spike through the edge: {result['requests']} requests, {result['failures']} failed; "
        f"reached the origin {_pct(result['origin_share'])}, the app {_pct(result['app_share'])}",
        fontsize=10,
    )
    top.legend()
    top.grid(alpha=0.3)
    bottom.step(t, [row["requests"] for row in timeline], where="post", label="requests/s", color="#4c72b0")
    fails = [(row["t"], row["failures"]) for row in timeline if row["failures"]]
    if fails:
        bottom.bar([f[0] for f in fails], [f[1] for f in fails], color="#c44e52", label="failed/s")
    bottom.set_ylabel("requests per second")
    bottom.set_xlabel("seconds since the first request")
    users = bottom.twinx()
    users.plot(t, [row["users"] for row in timeline], color="#8172b2", linestyle="--", label="visitors")
    users.set_ylabel("visitors")
    lines = bottom.get_legend_handles_labels()
    more = users.get_legend_handles_labels()
    bottom.legend(lines[0] + more[0], lines[1] + more[1], loc="upper left")
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _pct(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:.2f}%"


# ---------------------------------------------------------------------- main
def main() -> int:
    rounds = knob("BENCH_ROUNDS", 5, 1)
    wrk_seconds = knob("BENCH_WRK_SECONDS", 8, 2)
    connections = int(os.environ.get("BENCH_CONNECTIONS", "1000"))
    wrk_threads = int(os.environ.get("BENCH_WRK_THREADS", "2"))
    shape = {
        "BENCH_SPIKE_BASE": str(knob("BENCH_SPIKE_BASE", 30, 3)),
        "BENCH_SPIKE_WARM": str(knob("BENCH_SPIKE_WARM", 10, 2)),
        "BENCH_SPIKE_RAMP": str(knob("BENCH_SPIKE_RAMP", 10, 3)),
        "BENCH_SPIKE_HOLD": str(knob("BENCH_SPIKE_HOLD", 10, 2)),
        "BENCH_SPIKE_TAIL": str(knob("BENCH_SPIKE_TAIL", 5, 1)),
        "BENCH_SPIKE_THINK": os.environ.get("BENCH_SPIKE_THINK", "1.0"),
    }
    ensure_wrk()
    # wrk's 1,000 sockets (and Locust's) need file descriptors: the soft limit raised to the hard one
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))
    raw = raw_dir(NAME)
    # A stack of its own even under `make bench`: the edge is restarted, and the limits must be the defaults.
    # BENCH_SPIKE_STACK (a JSON file of a running stack's environment, the test suite's) uses that one instead.
    os.environ.pop(SHARED_STACK, None)
    given = os.environ.get("BENCH_SPIKE_STACK", "")
    if given:
        stack, tmp = SharedStack(json.loads(Path(given).read_text())), BenchFolder()
    else:
        stack, tmp = start_private_stack(overrides={"BREAKWATER_ORIGIN_LOG_STATIC": "1"})
    folder = BenchFolder()
    try:
        s = stack.settings
        sizing = {param: s[name] for param, name in EDGE_SIZING.items()}
        summaries, starts = cold_crowd(stack, Path(folder.name), raw, rounds, wrk_seconds, connections, wrk_threads)
        crowd = p99_figures(summaries)
        crowd["start_seconds"] = {k: [round(x, 2) for x in v] for k, v in starts.items()}
        spike_result = spike(stack, raw, shape)
    finally:
        stack.down(quiet=True, kill=True)
        tmp.cleanup()
        folder.cleanup()

    sp = spike_result
    verdict = "met" if crowd["met"] else "**NOT met**"
    notes = [
        "",
        f"**Cold edge vs bare Varnish, p99**: {crowd['edge_p99_ms']:.0f} ms vs {crowd['bare_p99_ms']:.0f} ms "
        f"(medians of {rounds} rounds; edge {crowd['edge_p99_spread_ms'][0]:.0f}-{crowd['edge_p99_spread_ms'][1]:.0f}"
        f" ms, bare {crowd['bare_p99_spread_ms'][0]:.0f}-{crowd['bare_p99_spread_ms'][1]:.0f} ms): "
        f"**{crowd['p99_ratio']:.2f}x** (round by round {', '.join(str(x) for x in crowd['p99_ratio_per_round'])}); "
        f"timeouts edge {crowd['timeouts'][EDGE]}, bare {crowd['timeouts'][BARE]}; errors edge "
        f"{crowd['errors'][EDGE]}, bare {crowd['errors'][BARE]}. Goal: at most {P99_GOAL}x, 0 timeouts, 0 errors: "
        f"{verdict}.",
        "",
        "Why (medians per run, Varnish's counters): "
        + "; ".join(
            f"{name}: {m['threads_at_start']:.0f} worker threads when wrk began, {m['threads_created']:.0f} created "
            f"during the run, {m['sess_queued']:.0f} sessions queued for a thread, {m['sess_dropped']:.0f} dropped"
            for name, m in crowd["mechanism"].items()
        )
        + ".",
        "",
        f"**Spike through the edge**: {sp['shape']['base']:.0f} visitors, {sp['peak_users']} within "
        f"{sp['shape']['ramp']:.0f} s, held {sp['shape']['hold']:.0f} s, back within {sp['shape']['ramp']:.0f} s "
        f"({sp['seconds']:.0f} s in all), each from its own 127/8 address ({sp['source_addresses']} addresses): "
        f"{sp['requests']} requests, "
        f"**{sp['failures']} failed** (goal 0), p50 {sp['p50_ms']} ms, p99 {sp['p99_ms']} ms over the run. "
        f"Reached the origin: **{_pct(sp['origin_share'])}** ({sp['origin_requests']} of the edge's "
        f"{sp['edge_requests']:.0f} client requests; {sp['origin_counted_by']}, the edge's "
        f"{sp['origin_probe_requests']} health probes left out; Varnish's backend_req "
        f"+{sp['edge'].get('backend_req', 0):.0f}); reached the app: "
        f"**{_pct(sp['app_share'])}** ({sp['app_requests']:.0f}; its request counter, /healthz and /metrics left "
        f"out). The edge was restarted (empty) just before: the origin's share is the first fetch of each URL. "
        f"Per second: `{RESULTS_REL}/{NAME}/spike-timeline.json`, chart "
        f"`{RESULTS_REL}/{NAME}/spike-timeline.png`"
        + ("; Locust warned about its CPU" if sp["locust_cpu_warning"] else "")
        + ".",
        "",
        "The edge's sizing (varnishd -p, from the BREAKWATER_EDGE_* settings): "
        + ", ".join(f"{k}={v}" for k, v in sizing.items())
        + ". The bare Varnish: `varnishd -F -n <dir> -a 127.0.0.1:<port> -b <origin> -j none`, every parameter at "
        "its default (thread_pools 2, thread_pool_min 100, thread_pool_max 5000, listen_depth 1024), the built-in "
        "VCL. wrk: "
        f"{wrk_threads} threads x {connections} connections, {wrk_seconds} s per run, `Accept-Encoding: gzip`, "
        "`--timeout 2s`; each run starts the moment `varnishadm status` says the child runs (empty cache). "
        "Everything (wrk, both Varnishes, the stack) shares the same 2 cores.",
    ]
    meta = {
        "rounds": rounds,
        "wrk": {"threads": wrk_threads, "connections": connections, "seconds": wrk_seconds,
                "version": wrk_version(), "timeout_s": 2},
        "edge_sizing": sizing,
        "cold_crowd": crowd,
        "spike": spike_result,
        "quick": QUICK,
    }  # fmt: skip
    publish_report(NAME, "The edge under a sudden crowd", [summaries[EDGE], summaries[BARE]], notes, [], meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
