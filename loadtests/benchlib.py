"""Shared pieces of the benchmark runners: a private stack, extra app servers, Locust runs, reports.

Rules from ../shared/design/load-testing.md: compare configurations side by side in one run,
interleave them (A B B A ...), drop ramp-up (--reset-stats), report medians with spread and
failure counts, and flag runs in which Locust itself ran out of CPU.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from breakwater.stack import Stack
from breakwater.stack.ports import free_ports

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "loadtests" / "results"
BIN = Path(sys.executable).parent


def start_private_stack(echo=print) -> tuple[Stack, tempfile.TemporaryDirectory]:
    tmp = tempfile.TemporaryDirectory(prefix="breakwater-bench-")
    keys = ("PRIMARY_PORT", "REDIS_PORT", "REDIS_CACHE_PORT", "APP_PORT", "ORIGIN_PORT")
    ports = free_ports(len(keys) + 2)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BREAKWATER_")}
    env.update({f"BREAKWATER_{k}": str(p) for k, p in zip(keys, ports, strict=False)})
    env["BREAKWATER_REPLICA_PORTS"] = f"{ports[-2]},{ports[-1]}"
    env["BREAKWATER_STATE_DIR"] = str(Path(tmp.name) / "state")
    env["BREAKWATER_STATIC_DIR"] = str(Path(tmp.name) / "static_build")
    env["BREAKWATER_LOG_LEVEL"] = "WARNING"
    Path(env["BREAKWATER_STATIC_DIR"]).mkdir(parents=True)
    stack = Stack(env, echo=echo)
    stack.up(echo_steps=True)
    return stack, tmp


@dataclass
class AppServer:
    """One extra gunicorn on a free port with its own BREAKWATER_* overrides."""

    name: str
    stack: Stack
    overrides: dict[str, str]
    workers: int = 1
    threads: int = 4
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
                "--threads",
                str(self.threads),
                "--worker-class",
                "gthread",
                "--no-control-socket",
                "breakwater.wsgi:app",
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
    requests: int
    failures: int
    rps: float
    p50: float
    p95: float
    p99: float
    locust_cpu_warning: bool


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


def run_locust(
    config: str, scenario: Path, host: str, users: int, seconds: int, endpoint: str, env: dict | None = None
) -> RunResult:
    with tempfile.TemporaryDirectory() as tmp:
        prefix = Path(tmp) / "stats"  # locust appends .json
        cmd = [
            str(BIN / "locust"), "-f", str(scenario), "--headless", "-u", str(users), "-r", str(users),
            "-t", f"{seconds}s", "--host", host, "--reset-stats", "--only-summary", "--json-file", str(prefix),
        ]  # fmt: skip
        proc = subprocess.run(
            cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=seconds + 120
        )
        candidates = [prefix.with_suffix(".json"), prefix]
        stats_file = next((c for c in candidates if c.exists()), None)
        if stats_file is None:
            raise RuntimeError(f"locust produced no stats: {proc.stderr[-800:]}")
        stats = json.loads(stats_file.read_text())
    entry = next(s for s in stats if s["name"] == endpoint)
    elapsed = max(entry["last_request_timestamp"] - entry["start_time"], 1e-9)
    return RunResult(
        config=config,
        requests=entry["num_requests"],
        failures=entry["num_failures"],
        rps=entry["num_requests"] / elapsed,
        p50=_percentile(entry["response_times"], 0.50),
        p95=_percentile(entry["response_times"], 0.95),
        p99=_percentile(entry["response_times"], 0.99),
        locust_cpu_warning="CPU usage above" in proc.stderr or "CPU usage was too high" in proc.stderr,
    )


@dataclass
class Summary:
    config: str
    runs: list[RunResult] = field(default_factory=list)

    def usable(self) -> list[RunResult]:
        good = [r for r in self.runs if not r.locust_cpu_warning]
        return good or self.runs

    def median(self, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in self.usable())

    def spread(self, attr: str) -> tuple[float, float]:
        values = [getattr(r, attr) for r in self.usable()]
        return min(values), max(values)

    def row(self) -> str:
        lo, hi = self.spread("rps")
        return (
            f"| {self.config} | {self.median('rps'):.0f} | {lo:.0f}-{hi:.0f} | {self.median('p50'):.0f} | "
            f"{self.median('p95'):.0f} | {self.median('p99'):.0f} | {sum(r.failures for r in self.runs)} | "
            f"{len(self.usable())}/{len(self.runs)} |"
        )


TABLE_HEAD = (
    "| configuration | req/s (median) | req/s (min-max) | p50 ms | p95 ms | p99 ms | failures | runs used |\n"
    "|---|---|---|---|---|---|---|---|"
)


def update_readme(name: str, report: str) -> None:
    """Put the report's table and notes between <!-- NAME:begin/end --> in the README."""
    readme = ROOT / "README.md"
    text = readme.read_text()
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    if begin not in text or end not in text:
        return
    body = report.split("\n", 2)[2].strip()  # drop the title line
    start, stop = text.index(begin) + len(begin), text.index(end)
    readme.write_text(text[:start] + "\n" + body + "\n" + text[stop:])


def write_report(name: str, title: str, summaries: list[Summary], notes: list[str]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    md = [f"# {title}", "", time.strftime("Measured %Y-%m-%d %H:%M UTC", time.gmtime()), "", TABLE_HEAD]
    md += [s.row() for s in summaries]
    md += ["", *notes, ""]
    path = RESULTS / f"{name}.md"
    path.write_text("\n".join(md))
    (RESULTS / f"{name}.json").write_text(
        json.dumps({s.config: [r.__dict__ for r in s.runs] for s in summaries}, indent=2)
    )
    return path
