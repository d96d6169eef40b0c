"""Shared pieces of the benchmark runners: a private stack, extra app servers, Locust runs, reports.

Rules (docs/benchmarks.md, "Method"): compare configurations side by side in one run,
interleave them (A B B A ...), drop ramp-up (--reset-stats), report medians with spread and
failure counts, and flag runs in which Locust itself ran out of CPU. Failed requests are not
throughput; a configuration whose runs all ran out of Locust CPU, failed requests or did not pass
its server-side check is flagged, and so is every ratio built on it. Each run's Locust CSV, JSON
and log stay in results/<bench>/, beside the report.

Results stay out of git: loadtests/results/ is ignored (a BENCH_QUICK=1 run writes to results/quick/, so it
never replaces a full run's files), and no run writes a tracked file. `make bench-publish` (publish.py) copies
one full run's report, charts and JSON into docs/benchmarks/ and puts its tables in docs/benchmarks.md.

Nothing a benchmark starts outlives it: every process it starts inherits BENCH_RUN_ID, and the process
that set it (bench_all.py, or a runner started alone) kills whatever still carries it when it exits, also
after an exception, Ctrl-C, SIGTERM or SIGHUP (see ``_guard_processes``); a private stack's folder
kills every process in or from it before it is deleted (:class:`BenchFolder`).
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from breakwater.settings import Settings
from breakwater_tools.stack import Stack
from breakwater_tools.stack.ports import free_ports
from breakwater_tools.stack.supervised import worker_class_args
from breakwater_tools.stack.supervisor import kill_processes, kill_processes_under, scan_processes

ROOT = Path(__file__).resolve().parents[1]
#: every run's results (ignored by git); `make bench-publish` copies one full run into PUBLISHED
RESULTS_ROOT = ROOT / "loadtests" / "results"
PUBLISHED = ROOT / "docs" / "benchmarks"
BIN = Path(sys.executable).parent
#: BENCH_QUICK=1 (`make bench QUICK=1`): shorter runs and fewer repeats, to see that everything works
QUICK = os.environ.get("BENCH_QUICK", "") == "1"
QUICK_NOTE = " with BENCH_QUICK=1 (short runs, fewer repeats: a check that everything works, not a measurement)"
#: where this run writes: a quick run in a folder of its own, so it never replaces a full run's files
RESULTS = RESULTS_ROOT / "quick" if QUICK else RESULTS_ROOT
RESULTS_REL = RESULTS.relative_to(ROOT)  # as the reports name it


# ---------------------------------------------------------------------- nothing outlives a benchmark
#: every process a benchmark starts inherits it (not BREAKWATER_*: the stack's programs would not get it)
RUN_MARK = "BENCH_RUN_ID"
_stopping = False


def run_processes(mark: str) -> list[int]:
    """Every process (but this one and its ancestors) that carries ``BENCH_RUN_ID=mark``."""
    wanted = f"{RUN_MARK}={mark}".encode()
    return scan_processes(lambda _cwd, _args, env: wanted in env)


def _sweep_run(mark: str) -> None:
    killed = kill_processes(lambda: run_processes(mark), timeout=15)
    if killed:
        print(f"stopped {len(killed)} leftover process(es) of this benchmark: {killed}", file=sys.stderr, flush=True)


def _stop_on_signal(signum, _frame) -> None:
    """SIGINT, SIGTERM, SIGHUP: unwind (every ``finally`` stops what it started); a second one while that
    cleanup runs is ignored, so that a repeated Ctrl-C cannot leave a half-stopped stack behind."""
    global _stopping
    if _stopping:
        print(f"signal {signum}: still stopping what this benchmark started", file=sys.stderr, flush=True)
        return
    _stopping = True
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)


def _guard_processes() -> None:
    """The first benchmark process (bench_all.py, or a runner started alone) marks itself with a fresh
    BENCH_RUN_ID, which every process it starts inherits (its runners, their stacks' programs, the extra
    gunicorns, Locust, wrk); when it exits, however it exits but SIGKILL, it kills every process still
    carrying that mark. Runners started by bench_all.py keep its mark and leave the sweep to it."""
    if not os.environ.get(RUN_MARK):
        mark = os.environ[RUN_MARK] = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        atexit.register(_sweep_run, mark)
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _stop_on_signal)


_guard_processes()


class BenchFolder(tempfile.TemporaryDirectory):
    """A private stack's temporary folder: before it is deleted, every process still running in or from it
    is killed (a program supervisord restarted while the stack was being killed, a server a runner started
    with the stack's settings), so none is left running with its state folder gone."""

    def __init__(self) -> None:
        super().__init__(prefix="breakwater-bench-")

    def cleanup(self) -> None:
        kill_processes_under(Path(self.name))
        super().cleanup()


def knob(name: str, full: int | float, quick: int | float) -> int | float:
    """``name`` from the environment if set, else the full run's value (or the quick one under BENCH_QUICK=1)."""
    raw = os.environ.get(name, "").strip()
    return type(full)(raw) if raw else (quick if QUICK else full)


class MemorySampler:
    """The resident memory of a process and all its descendants (a gunicorn master and its workers), sampled
    every ``interval`` seconds in a thread while a run lasts; the peak sums are kept. The RSS sum counts a page
    that forked workers share in every one of them; PSS splits it between them, so it adds up to what the tree
    really uses."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        self.pid, self.interval = pid, interval
        self.peak_rss = self.peak_pss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> tuple[int, int]:
        import psutil  # Locust depends on it

        root = psutil.Process(self.pid)
        rss = pss = 0
        for proc in [root, *root.children(recursive=True)]:
            try:
                info = proc.memory_full_info()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            rss, pss = rss + info.rss, pss + getattr(info, "pss", info.rss)
        return rss, pss

    def _run(self) -> None:
        while not self._stop.is_set():
            rss, pss = self.sample()
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
            self._stop.wait(self.interval)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


#: `make bench` starts one private stack for all its runners and names a JSON file with its environment here
SHARED_STACK = "BENCH_SHARED_STACK"
#: settings that only shape a stack's start (or its logs): a shared stack need not match them
START_ONLY = {"BREAKWATER_PAGES_BUILD_ON_START", "BREAKWATER_LOG_LEVEL"}


class SharedStack(Stack):
    """The stack `make bench` started for all its runners: used as it is; ``down`` leaves it running."""

    def down(self, *args, **kwargs) -> None:
        return None


def shared_stack_env(overrides: dict[str, str], echo=print) -> dict[str, str] | None:
    """The environment of `make bench`'s stack when there is one and it has every setting this runner asks for."""
    path = os.environ.get(SHARED_STACK, "")
    if not path:
        return None
    env = json.loads(Path(path).read_text())
    missing = {k: v for k, v in overrides.items() if k not in START_ONLY and env.get(k) != v}
    if missing:
        echo(f"the shared stack lacks {missing}; starting a private one")
        return None
    return env


def start_private_stack(
    echo=print, overrides: dict[str, str] | None = None, extra: dict | None = None
) -> tuple[Stack, tempfile.TemporaryDirectory]:
    """A stack of its own on free ports; a failed start is cleaned up and tried once more (on a
    shared machine mariadb-install-db now and then trips over another process's temporary files).
    ``overrides`` are BREAKWATER_* settings for the whole stack (e.g. the origin's microcache); ``extra``
    the same without the prefix. Under `make bench` (BENCH_SHARED_STACK) the composer's stack is used
    instead when it has those settings: one stack start instead of one per runner."""
    wanted = {**(overrides or {}), **{f"BREAKWATER_{k}": v for k, v in (extra or {}).items()}}
    env = shared_stack_env(wanted, echo)
    if env is not None:
        echo(f"using the shared stack in {env['BREAKWATER_STATE_DIR']}")
        # A scratch folder of the runner's own (the stack's state stays the composer's)
        return SharedStack(env, echo=echo), BenchFolder()
    try:
        return _start_private_stack(echo, overrides or {}, extra or {})
    except Exception as exc:
        echo(f"private stack failed to start ({str(exc)[:300]}); trying once more")
        return _start_private_stack(echo, overrides or {}, extra or {})


def _start_private_stack(echo, overrides: dict[str, str], extra: dict) -> tuple[Stack, tempfile.TemporaryDirectory]:
    tmp = BenchFolder()
    keys = ("PRIMARY_PORT", "REDIS_PORT", "REDIS_CACHE_PORT", "APP_PORT", "ORIGIN_PORT", "EDGE_PORT",
            "RABBITMQ_PORT", "RABBITMQ_DIST_PORT", "SMTP_PORT", "FLOWER_PORT")  # fmt: skip
    ports = free_ports(len(keys) + 2)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BREAKWATER_")}
    env.update({f"BREAKWATER_{k}": str(p) for k, p in zip(keys, ports, strict=False)})
    env["BREAKWATER_REPLICA_PORTS"] = f"{ports[-2]},{ports[-1]}"
    env["BREAKWATER_STATE_DIR"] = str(Path(tmp.name) / "state")
    env["BREAKWATER_STATIC_DIR"] = str(Path(tmp.name) / "static_build")
    env["BREAKWATER_LOG_LEVEL"] = "WARNING"
    # No Prometheus: its scrapes would load the machine being measured, and its ports are fixed (a runner's own
    # stack beside `make bench`'s shared one found 9490 taken)
    env["BREAKWATER_PROMETHEUS"] = "0"
    env.update(overrides)
    Path(env["BREAKWATER_STATIC_DIR"]).mkdir(parents=True)
    env.update({f"BREAKWATER_{k}": v for k, v in extra.items()})
    stack = Stack(env, echo=echo)
    try:
        stack.up(echo_steps=True)
    except BaseException:
        stack.down(quiet=True, kill=True)
        tmp.cleanup()
        raise
    return stack, tmp


WSGI_APP = "breakwater.wsgi:app"


@dataclass
class AppServer:
    """One extra gunicorn on a free port with its own BREAKWATER_* overrides."""

    name: str
    stack: Stack
    overrides: dict[str, str]
    workers: int = 1
    threads: int = 4
    worker_class: str = "gthread"  # sync | gthread | gevent (as BREAKWATER_WEB_WORKER_CLASS)
    connections: int = 100  # gevent: requests one worker serves at once
    port: int = 0
    proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.port = free_ports(1)[0]
        env = self.stack.settings.child_env()
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        env.update(self.overrides)
        log = open(self.stack.layout.logs / f"bench-{self.name}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.workers),
                *worker_class_args(
                    Settings(
                        {
                            "WEB_WORKER_CLASS": self.worker_class,
                            "WEB_THREADS": str(self.threads),
                            "WEB_GEVENT_CONNECTIONS": str(self.connections),
                        }
                    )
                ),
                "--no-control-socket",
                # the /_bench/ routes come with the tooling's entry point, never with the app's
                "breakwater_tools.bench.wsgi:app" if env.get("BREAKWATER_BENCH_ROUTES") == "1" else WSGI_APP,
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=5) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"bench app server {self.name} did not start; see {log.name}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


@dataclass
class RunResult:
    config: str
    round: int
    requests: int  # requests to the measured endpoint, failed ones included
    failures: int  # failed requests to the measured endpoint
    other_failures: int  # failed requests to anything else (e.g. the scenario's login)
    rps: float  # successful requests to the endpoint per second: failures are not throughput
    p50: float
    p95: float
    p99: float
    locust_cpu_warning: bool
    exit_code: int
    raw: str  # prefix of this run's raw files (Locust CSV, JSON, log), relative to the checkout
    checks: dict[str, float] = field(default_factory=dict)  # server-side counters over the run
    problems: list[str] = field(default_factory=list)  # the configuration was not what it claims

    @property
    def all_failures(self) -> int:
        return self.failures + self.other_failures


#: wrk's own summary as one JSON line (percentiles in microseconds). Appended to a request script, or alone:
#: with only ``done`` scripted wrk keeps its fast path (no per-request Lua).
WRK_DONE_LUA = """\
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,'
    .. '"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p95_us":%d,"p99_us":%d,"max_us":%d}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""


@dataclass
class WrkRun:
    """One wrk run: its summary (``WRK_DONE_LUA``'s fields), where its output stays, its exit code."""

    summary: dict[str, int]
    raw: str
    exit_code: int

    def result(self, config: str, round_no: int, failures: int, checks: dict[str, float]) -> RunResult:
        """A RunResult: ``failures`` (what counts as failed is the caller's) are not throughput."""
        s = self.summary
        return RunResult(
            config=config, round=round_no, requests=s["requests"], failures=failures, other_failures=0,
            rps=(s["requests"] - failures) / max(s["duration_us"] / 1e6, 1e-9),
            p50=s["p50_us"] / 1000, p95=s["p95_us"] / 1000, p99=s["p99_us"] / 1000,
            locust_cpu_warning=False, exit_code=self.exit_code, raw=self.raw, checks=checks,
        )  # fmt: skip


def run_wrk_once(cmd: list[str], config: str, raw: Path, run_id: str, timeout: float) -> WrkRun:
    """Run ``cmd`` (wrk, its script ending in ``WRK_DONE_LUA``); its output stays in ``raw/<run_id>.txt``."""
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    out = raw / f"{run_id}.txt"
    out.write_text(f"$ {' '.join(cmd)}\n{proc.stdout}{proc.stderr}")
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk ({config}) failed with {proc.returncode}: {proc.stderr[-500:]}")
    return WrkRun(json.loads(line.removeprefix("WRK_JSON ")), str(out.relative_to(ROOT)), proc.returncode)


def _percentile(histogram: dict[str, int], fraction: float) -> float:
    points = sorted((float(k), v) for k, v in histogram.items())
    total = sum(v for _, v in points)
    if not total:
        return float("nan")
    threshold, running = fraction * total, 0
    for value, count in points:
        running += count
        if running >= threshold:
            return value
    return points[-1][0]


def raw_dir(name: str) -> Path:
    """An empty RESULTS/<name>/ for this run's raw Locust files (the previous run's are replaced)."""
    path = RESULTS / name
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def run_locust(
    config: str,
    scenario: Path,
    host: str,
    users: int,
    seconds: int,
    endpoint: str,
    env: dict | None = None,
    *,
    raw: Path,
    run_id: str,
    round_no: int = 0,
) -> RunResult:
    """One headless Locust run; its CSV, JSON and log stay in ``raw`` as ``<run_id>_*``."""
    prefix = raw / run_id
    cmd = [
        str(BIN / "locust"), "-f", str(scenario), "--headless", "-u", str(users), "-r", str(users),
        "-t", f"{seconds}s", "--host", host, "--reset-stats", "--only-summary",
        "--csv", str(prefix), "--json-file", str(prefix),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=seconds + 120)
    prefix.with_suffix(".log").write_text(proc.stderr)
    stats_file = next((c for c in (prefix.with_suffix(".json"), prefix) if c.exists()), None)
    if stats_file is None:
        raise RuntimeError(f"locust ({config}) produced no stats, exit code {proc.returncode}: {proc.stderr[-800:]}")
    if proc.returncode not in (0, 1):  # 1 = failures or errors, recorded below; anything else is a crash
        raise RuntimeError(f"locust ({config}) exited with {proc.returncode}: {proc.stderr[-800:]}")
    stats = json.loads(stats_file.read_text())
    entry = next((s for s in stats if s["name"] == endpoint), None)
    if entry is None:
        raise RuntimeError(f"locust ({config}) made no {endpoint} requests: {proc.stderr[-800:]}")
    elapsed = max(entry["last_request_timestamp"] - entry["start_time"], 1e-9)
    result = RunResult(
        config=config,
        round=round_no,
        requests=entry["num_requests"],
        failures=entry["num_failures"],
        other_failures=sum(s["num_failures"] for s in stats if s["name"] != endpoint),
        rps=(entry["num_requests"] - entry["num_failures"]) / elapsed,
        p50=_percentile(entry["response_times"], 0.50),
        p95=_percentile(entry["response_times"], 0.95),
        p99=_percentile(entry["response_times"], 0.99),
        locust_cpu_warning="CPU usage above" in proc.stderr or "CPU usage was too high" in proc.stderr,
        exit_code=proc.returncode,
        raw=str(prefix.relative_to(ROOT)),
    )
    if proc.returncode == 1 and not result.all_failures:
        result.problems.append("Locust exited with 1 without a recorded failure (an error in the scenario)")
    return result


# ---------------------------------------------------------------------- server-side checks
_SAMPLE = re.compile(r"^([A-Za-z_:][\w:]*(?:\{[^}]*\})?)\s+(\S+)$")


def scrape(url: str) -> dict[str, float]:
    """Counter samples (``*_total``, garbage-collector ones left out) from a server's /metrics,
    keyed by name{labels}; process_cpu_seconds_total gives the server's CPU time per run."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as resp:
        body = resp.read().decode()
    samples = {}
    for line in body.splitlines():
        m = _SAMPLE.match(line)
        if m and "_total" in m.group(1) and not m.group(1).startswith("python_gc_"):
            samples[m.group(1)] = float(m.group(2))
    return samples


def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """What moved between two scrapes (counters that did not move are left out)."""
    return {k: v - before.get(k, 0.0) for k, v in sorted(after.items()) if v - before.get(k, 0.0)}


def total(samples: dict[str, float], metric: str, /, **labels: str) -> float:
    """Sum of the samples of ``metric`` whose labels include every ``labels`` item."""
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    return sum(v for k, v in samples.items() if k.partition("{")[0] == metric and all(w in k for w in wanted))


# ---------------------------------------------------------------------- summaries and comparisons
@dataclass
class Summary:
    config: str
    runs: list[RunResult] = field(default_factory=list)

    def usable(self) -> list[RunResult]:
        """Runs in which Locust did not warn about its own CPU."""
        return [r for r in self.runs if not r.locust_cpu_warning]

    @property
    def all_cpu_flagged(self) -> bool:
        return bool(self.runs) and not self.usable()

    def basis(self) -> list[RunResult]:
        """The runs the figures come from: the usable ones, or all of them (then flagged unreliable)."""
        return self.usable() or self.runs

    @property
    def failures(self) -> int:
        return sum(r.all_failures for r in self.runs)

    def flags(self) -> list[str]:
        """Why this configuration's figures should not be trusted as they are; empty when they can."""
        out = []
        if self.all_cpu_flagged:
            out.append(f"Locust CPU warning in all {len(self.runs)} runs")
        if self.failures:
            out.append(f"{self.failures} failed requests")
        out += sorted({p for r in self.runs for p in r.problems})
        return out

    @property
    def reliable(self) -> bool:
        return not self.flags()

    def median(self, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in self.basis())

    def spread(self, attr: str) -> tuple[float, float]:
        values = [getattr(r, attr) for r in self.basis()]
        return min(values), max(values)

    def runs_used(self) -> str:
        n = len(self.runs)
        if self.all_cpu_flagged:
            return f"0/{n} (all flagged; figures from all {n})"
        return f"{len(self.usable())}/{n}"

    def row(self) -> str:
        lo, hi = self.spread("rps")
        flags = "; ".join(self.flags()) or "-"
        return (
            f"| {self.config} | {self.median('rps'):.0f} | {lo:.0f}-{hi:.0f} | {self.median('p50'):.0f} | "
            f"{self.median('p95'):.0f} | {self.median('p99'):.0f} | {self.failures} | {self.runs_used()} | "
            f"{flags} |"
        )


TABLE_HEAD = (
    "| configuration | req/s (median) | req/s (min-max) | p50 ms | p95 ms | p99 ms | failures | runs used | flags |\n"
    "|---|---|---|---|---|---|---|---|---|"
)


@dataclass
class Comparison:
    label: str
    a: str
    b: str
    ratio: float  # median req/s of a / median req/s of b
    low: float  # min of a / max of b
    high: float  # max of a / min of b
    inside_spread: bool  # a's median lies within b's own min-max
    reliable: bool
    reasons: list[str]
    text: str


def compare(label: str, a: Summary, b: Summary, *, fmt: str = "{:.3f}", extra: str = "") -> Comparison:
    """``a`` against baseline ``b`` in req/s: the ratio of medians, its range over the runs, and
    whether the difference lies inside the baseline's own run-to-run spread."""
    (a_lo, a_hi), (b_lo, b_hi) = a.spread("rps"), b.spread("rps")
    am, bm = a.median("rps"), b.median("rps")
    ratio = am / bm if bm else float("nan")
    low, high = (a_lo / b_hi if b_hi else float("nan")), (a_hi / b_lo if b_lo else float("nan"))
    inside = b_lo <= am <= b_hi
    reasons = [f"{s.config}: {f}" for s in (a, b) for f in s.flags()]
    text = f"{label}: **{fmt.format(ratio)}**{extra} (run by run {low:.2f}-{high:.2f})"
    if inside:
        text += (
            f"; {a.config}'s median ({am:.0f} req/s) lies inside {b.config}'s own spread "
            f"({b_lo:.0f}-{b_hi:.0f}), so the difference is within noise"
        )
    elif low <= 1.0 <= high:
        text += "; the run-by-run range includes 1.0, so not even the sign of the difference is established"
    if reasons:
        text += "; **unreliable** (" + "; ".join(reasons) + ")"
    return Comparison(label, a.config, b.config, ratio, low, high, inside, not reasons, reasons, text + ".")


def update_readme(name: str, report: str) -> None:
    """A run leaves docs/benchmarks.md (and every tracked file) alone: `make bench-publish` puts a full run's
    tables there (publish.py)."""
    print(f"{name}: no tracked file is changed by a run; `make bench-publish` publishes a full run", flush=True)


def write_report(
    name: str,
    title: str,
    summaries: list[Summary],
    notes: list[str],
    comparisons: list[Comparison] = (),
    meta: dict | None = None,
) -> Path:
    """RESULTS/<name>.md (the report), RESULTS/<name>.json (every run, with its checks and the path
    of its raw Locust files in RESULTS/<name>/)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    measured = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    stamp = f"Measured {measured}" + (QUICK_NOTE if QUICK else "")
    md = [f"# {title}", "", stamp, "", TABLE_HEAD]
    md += [s.row() for s in summaries]
    md += ["", *(c.text for c in comparisons), *notes]
    md += [
        f"Raw data: `{RESULTS_REL}/{name}.json` (every run, its server-side checks and flags) and "
        f"`{RESULTS_REL}/{name}/` (Locust CSV, JSON and log per run).",
        "",
    ]
    path = RESULTS / f"{name}.md"
    path.write_text("\n".join(md))
    (RESULTS / f"{name}.json").write_text(
        json.dumps(
            {
                "measured": measured,
                "quick": QUICK,
                "meta": meta or {},
                "comparisons": [c.__dict__ for c in comparisons],
                "configs": {
                    s.config: {"flags": s.flags(), "runs_used": s.runs_used(), "runs": [r.__dict__ for r in s.runs]}
                    for s in summaries
                },
            },
            indent=2,
        )
        + "\n"
    )
    return path


def publish_report(
    name: str, title: str, summaries: list[Summary], notes: list[str], comparisons: list[Comparison] = (),
    meta: dict | None = None,
) -> Path:  # fmt: skip
    """write_report, then the report on stdout (docs/benchmarks.md is `make bench-publish`'s: see update_readme)."""
    path = write_report(name, title, summaries, notes, comparisons, meta)
    update_readme(name, path.read_text())
    print(path.read_text())
    return path
