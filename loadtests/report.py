"""`make bench`'s one report: every runner's results/<name>.json composed into results/<timestamp>/report.md/.html.

Sections follow issue 12: 1 homepage ladder, 2 region cascade, 3 flash sale, 4 router overhead, 5 queues,
6 worker classes. Each table row is named for a reader (``static homepage (origin)``), shows the median req/s
with its spread, p50/p95/p99 and failures, and its ratio to the section's baseline and (where one was measured)
to the machine's ceiling. A runner that did not run, failed, or lacks a configuration leaves its rows out and
says so; nothing is invented. Charts are PNGs drawn with matplotlib into charts/.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from benchlib import RESULTS, RunResult, Summary

# (row name shown to readers, runner, configuration in that runner's JSON)
LADDER = [
    ("uncached dynamic homepage (primary only)", "bench-static", "locust: dynamic uncached primary-only"),
    ("uncached dynamic homepage (replicas)", "bench-static", "locust: dynamic uncached"),
    ("Redis-cached dynamic homepage (origin)", "bench-static", "locust: dynamic cached"),
    ("static homepage (origin)", "bench-static", "locust: static"),
    ("static homepage (edge)", "bench-static", "locust: edge"),
]
STATIC_CEILING = [
    ("minimal Nginx, same file (wrk ceiling)", "bench-static", "wrk: minimal nginx"),
    ("static homepage (origin, wrk)", "bench-static", "wrk: origin static"),
    ("static homepage gzip (origin, wrk)", "bench-static", "wrk: origin static gzip"),
    ("static homepage gzip (edge hit, wrk)", "bench-static", "wrk: edge hit gzip"),
]
HOME_DATA = [
    ("homepage data, uncached (/api/home)", "bench-cache", "home uncached"),
    ("homepage data, Redis only (no local tier)", "bench-cache", "home redis-only"),
    ("homepage data, Redis-cached (local tier)", "bench-cache", "home cached"),
    ("bare Flask route, same bytes from memory (ceiling)", "bench-cache", "home memory"),
]
REGIONS = [
    ("region 440000 uncached (/api/regions)", "bench-cache", "regions uncached"),
    ("region 440000 Redis only", "bench-cache", "regions redis-only"),
    ("region 440000 Redis-cached", "bench-cache", "regions cached"),
    ("region 440000 from memory (ceiling)", "bench-cache", "regions memory"),
    ("region 440000 hashed static JSON (origin)", "bench-cache", "regions static json"),
]
ROUTER = [
    ("one plain engine (baseline)", "bench-db", "plain"),
    ("router, one replica", "bench-db", "router-1"),
    ("router, one replica, causal token", "bench-db", "router-1+token"),
    ("router, two replicas", "bench-db", "router-2"),
]
WORKER_ROUTES = {
    "replica": "uncached replica read",
    "upstream": "50 ms local upstream",
    "markdown": "Markdown render (CPU)",
}
WORKER_CLASSES = {"sync": "processes", "gthread": "threads", "gevent": "coroutines"}


@dataclass
class Row:
    name: str
    summary: Summary

    @property
    def rps(self) -> float:
        return self.summary.median("rps")


def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def summary_of(data: dict | None, config: str) -> Summary | None:
    if not data or config not in data.get("configs", {}):
        return None
    runs = [
        RunResult(**{k: v for k, v in r.items() if k in RunResult.__dataclass_fields__})
        for r in data["configs"][config]["runs"]
    ]
    return Summary(config, runs) if runs else None


def rows_for(spec: list[tuple[str, str, str]], data: dict[str, dict | None]) -> tuple[list[Row], list[str]]:
    rows, missing = [], []
    for label, runner, config in spec:
        s = summary_of(data.get(runner), config)
        if s is None:
            missing.append(f"{label} ({runner}: `{config}` not in its results)")
        else:
            rows.append(Row(label, s))
    return rows, missing


def ratio(a: float, b: float | None) -> str:
    if not b or math.isnan(a) or math.isnan(b):
        return "-"
    r = a / b
    return f"{r:.1f}x" if r >= 2 else f"{r:.2f}x"


def table(rows: list[Row], baseline: Row | None, ceiling: Row | None) -> list[str]:
    out = [
        "| configuration | req/s (median) | min-max | p50 ms | p95 ms | p99 ms | failures | runs used | vs baseline "
        "| vs ceiling | flags |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        s = row.summary
        lo, hi = s.spread("rps")
        out.append(
            f"| {row.name} | {row.rps:.0f} | {lo:.0f}-{hi:.0f} | {s.median('p50'):.0f} | {s.median('p95'):.0f} | "
            f"{s.median('p99'):.0f} | {s.failures} | {s.runs_used()} | "
            f"{ratio(row.rps, baseline.rps if baseline else None)} | "
            f"{ratio(row.rps, ceiling.rps if ceiling else None)} | {'; '.join(s.flags()) or '-'} |"
        )
    return out


def target(label: str, a: Row | None, b: Row | None, goal: float) -> tuple[str, bool | None]:
    """One of the issue's targets: ``a``/``b`` at least ``goal``; None when it could not be computed."""
    if a is None or b is None:
        return f"{label}: not measured in this run", None
    value = a.rps / b.rps if b.rps else float("nan")
    ok = value >= goal
    trust = "" if a.summary.reliable and b.summary.reliable else " (figures flagged, see the table)"
    return f"{label}: {value:.2f} (goal {goal:g}): **{'met' if ok else 'NOT met'}**{trust}", ok


# ---------------------------------------------------------------------- charts
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plain_numbers():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _pos: f"{v:g}")


def chart_throughput(path: Path, title: str, rows: list[Row], log: bool = False) -> Path | None:
    if not rows:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(rows) + 1.6))
    med = [r.rps for r in rows]
    lo = [r.rps - r.summary.spread("rps")[0] for r in rows]
    hi = [r.summary.spread("rps")[1] - r.rps for r in rows]
    names = [r.name for r in rows]
    ax.barh(names, med, xerr=[lo, hi], color=["#c44e52" if r.summary.flags() else "#4c72b0" for r in rows])
    ax.invert_yaxis()
    if log:
        ax.set_xscale("log")
        ax.set_xlim(left=1)
        ax.xaxis.set_major_formatter(_plain_numbers())
    for i, v in enumerate(med):
        ax.text(v, i, f" {v:.0f}", va="center", fontsize=8)
    ax.set_xlabel("successful requests/s (median; bars: min-max over runs; red: flagged)")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def chart_latency(path: Path, title: str, rows: list[Row]) -> Path | None:
    if not rows:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 0.6 * len(rows) + 1.6))
    height = 0.27
    for k, (pct, color) in enumerate((("p50", "#55a868"), ("p95", "#dd8452"), ("p99", "#c44e52"))):
        values = [max(r.summary.median(pct), 0.1) for r in rows]
        ax.barh([i + (k - 1) * height for i in range(len(rows))], values, height, label=pct, color=color)
    ax.set_yticks(range(len(rows)), [r.name for r in rows])
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(left=1)
    ax.xaxis.set_major_formatter(_plain_numbers())
    ax.set_xlabel("response time, ms (median over runs; log scale from 1 ms)")
    ax.set_title(title)
    ax.legend()
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------- machine
def _version(cmd: list[str], pattern: str = r"[\d]+\.[\d.]+[\w.+~-]*") -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    m = re.search(pattern, proc.stdout + proc.stderr)
    return m.group(m.lastindex or 0) if m else "unknown"


def machine() -> dict[str, str]:
    from importlib.metadata import version

    from breakwater.stack.programs import which

    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kb = next(
        int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal")
    )
    return {
        "cores": str(os.cpu_count()),
        "cpu": cpu,
        "memory": f"{mem_kb / 2**20:.1f} GiB",
        "kernel": platform.release(),
        "load average (1/5/15 min)": " / ".join(f"{x:.2f}" for x in os.getloadavg()),
        "Python": platform.python_version(),
        "MariaDB": _version([which("mariadbd") or "mariadbd", "--version"]),
        "Redis": _version([which("redis-server") or "redis-server", "--version"], r"v=([\d.]+)"),
        "Nginx": _version([which("nginx") or "nginx", "-v"]),
        "Varnish": _version([which("varnishd") or "varnishd", "-V"]),
        "RabbitMQ": _version(["dpkg-query", "-W", "-f", "${Version}", "rabbitmq-server"]),
        "wrk": _version(["wrk", "--version"]),
        "gunicorn / Locust / Flask / SQLAlchemy": " / ".join(
            version(p) for p in ("gunicorn", "locust", "flask", "sqlalchemy")
        ),
    }


# ---------------------------------------------------------------------- sections
class Report:
    def __init__(self, out: Path, runs: dict[str, dict], stack_seconds: float = 0.0) -> None:
        self.out = out
        self.runs = runs  # runner name -> {"status", "seconds", "fresh"}
        self.stack_seconds = stack_seconds
        # A runner that wrote nothing this time: its older results are left out, not passed off as this run's.
        self.data = {name: load(name) if info.get("fresh") else None for name, info in runs.items()}
        self.md: list[str] = []
        self.checks: list[tuple[str, bool | None, str]] = []  # (check, passed, detail)
        self.targets: list[tuple[str, bool | None]] = []  # the performance targets
        self.headline: list[str] = []
        (out / "charts").mkdir(parents=True, exist_ok=True)

    def status(self, runner: str) -> str:
        info = self.runs.get(runner, {})
        data = self.data.get(runner)
        when = f"measured {data.get('measured')}" if data else "no results"
        quick = "; BENCH_QUICK=1" if data and (data.get("quick") or data.get("meta", {}).get("quick")) else ""
        return f"`{runner}`: {info.get('status', 'not run')}, {info.get('seconds', 0):.0f} s ({when}{quick})"

    def section(self, title: str, runners: list[str], intro: str) -> None:
        self.md += ["", f"## {title}", "", intro, "", "Runners: " + "; ".join(self.status(r) for r in runners), ""]

    def chart(self, name: str, title: str, rows: list[Row], log: bool = False) -> None:
        charts = [
            chart_throughput(self.out / "charts" / f"{name}-throughput.png", title, rows, log),
            chart_latency(self.out / "charts" / f"{name}-latency.png", title + ": latency", rows),
        ]
        self.md += ["", *(f"![{title}](charts/{c.name})" for c in charts if c), ""]

    def flags_as_checks(self, section: str, rows: list[Row]) -> None:
        """One check per section: every configuration was what it claims (its runner's server-side and
        per-response checks) and no request failed."""
        problems = [f"{row.name}: {f}" for row in rows for f in row.summary.flags() if "check:" in f or "failed" in f]
        detail = "; ".join(problems) or f"{len(rows)} configurations, {sum(len(r.summary.runs) for r in rows)} runs"
        self.checks.append((f"{section}: every configuration served as claimed, no failed request", not problems,
                            detail))  # fmt: skip

    def add_targets(self, items: list[tuple[str, bool | None]]) -> None:
        self.md += ["", "Targets:", "", *(f"- {text}" for text, _ in items)]
        self.targets += items

    # 1 ------------------------------------------------------------------
    def homepage(self) -> None:
        self.section(
            "1. Homepage ladder",
            ["bench-static", "bench-cache"],
            "The same homepage five ways, each step one technique more (Locust, interleaved runs): one database "
            "and no cache; read replicas; the Redis-cached data rendered by the app; the emitted static file from "
            "the Nginx origin; the same through the Varnish edge. Baseline: the first row. Locust itself is the "
            "limit for the static rows (it cannot saturate Nginx); their ceiling is measured with wrk below.",
        )
        rows, missing = rows_for(LADDER, self.data)
        base = rows[0] if rows else None
        if base and base.name != LADDER[0][0]:
            self.md += [f"(No primary-only figure in these results: the baseline is {base.name}.)", ""]
        self.md += table(rows, base, None)
        wrk, missing_wrk = rows_for(STATIC_CEILING, self.data)
        ceiling = wrk[0] if wrk and wrk[0].name == STATIC_CEILING[0][0] else None
        self.md += ["", "Static ceiling with wrk (a minimal Nginx serving the same file is the ceiling):", ""]
        self.md += table(wrk, None, ceiling)
        data_rows, missing_data = rows_for(HOME_DATA, self.data)
        memory = next((r for r in data_rows if "ceiling" in r.name), None)
        self.md += [
            "",
            "The homepage data (`/api/home`) per gunicorn process (a bare Flask route returning the same "
            "bytes from memory is the ceiling; baseline: uncached):",
            "",
        ]
        self.md += table(data_rows, data_rows[0] if data_rows and "uncached" in data_rows[0].name else None, memory)
        self.missing(missing + missing_wrk + missing_data)
        self.chart("homepage", "Homepage ladder (Locust)", rows, log=True)
        find = {r.name: r for r in rows + wrk + data_rows}.get
        self.add_targets(
            [
                target(
                    "Static homepage through the origin / minimal Nginx (wrk)", find(STATIC_CEILING[1][0]), ceiling, 0.8
                ),
                target(
                    "Redis-cached homepage data / bare Flask route, same bytes", find(HOME_DATA[2][0]), memory, 0.85
                ),
                target("Cached / uncached dynamic homepage (Locust)", find(LADDER[2][0]), find(LADDER[1][0]), 5),
                target("Static / uncached homepage (Locust)", find(LADDER[3][0]), find(LADDER[1][0]), 20),
            ]
        )
        self.flags_as_checks("homepage", rows + wrk + data_rows)
        for r in rows:
            self.headline.append(
                f"| {r.name} | {r.rps:.0f} | {r.summary.median('p99'):.0f} | "
                f"{ratio(r.rps, base.rps if base else None)} vs {base.name if base else '-'} |"
            )
        static = self.data.get("bench-static") or {}
        pub = static.get("meta", {}).get("publish", {})
        if pub:
            self.md += [
                "",
                f"Publish latency under load (bench-static): origin p95 {pub.get('origin_p95_s')} s, "
                f"edge p95 {pub.get('edge_p95_s')} s ({len(pub.get('samples', []))} title edits; goals "
                "origin < 1 s, edge < 2 s).",
            ]
            for label, key, goal in (("origin", "origin_p95_s", 1.0), ("edge", "edge_p95_s", 2.0)):
                v = pub.get(key)
                self.checks.append(
                    (f"publish visible at the {label} (p95 < {goal:g} s)", v is not None and v < goal, f"p95 {v} s")
                )

    # 2 ------------------------------------------------------------------
    def regions(self) -> None:
        self.section(
            "2. Region cascade",
            ["bench-cache"],
            "One province's children (440000, Guangdong) three ways: computed from a replica on every request, "
            "from the cache, and as the content-hashed static JSON file the address picker loads from the "
            "origin. Baseline: uncached; ceiling: the same bytes from process memory.",
        )
        rows, missing = rows_for(REGIONS, self.data)
        base = rows[0] if rows and "uncached" in rows[0].name else None
        memory = next((r for r in rows if "ceiling" in r.name), None)
        self.md += table(rows, base, memory)
        self.missing(missing)
        self.chart("regions", "Region cascade (Locust)", rows, log=True)
        self.flags_as_checks("regions", rows)
        for r in rows:
            self.headline.append(
                f"| {r.name} | {r.rps:.0f} | {r.summary.median('p99'):.0f} | "
                f"{ratio(r.rps, base.rps if base else None)} vs uncached |"
            )

    # 3 ------------------------------------------------------------------
    def flash(self) -> None:
        self.section(
            "3. Flash sale",
            ["bench-flash"],
            "Purchase attempts through the Nginx origin: every configuration bench-flash measured (the "
            "database-only purchase path against the Redis gate where it measured both), then one burst: "
            "accepted/s at the gate against orders written/s by the queue.",
        )
        data = self.data.get("bench-flash")
        if not data:
            self.md += ["bench-flash left no results in this run."]
            return
        rows = [Row(name, s) for name in data.get("configs", {}) if (s := summary_of(data, name))]
        base = rows[0] if rows else None
        self.md += table(rows, base, None)
        self.md += ["", *(f"- {c['text']}" for c in data.get("comparisons", []))]
        self.chart("flash", "Flash sale (Locust)", rows)
        burst = data.get("meta", {}).get("burst")
        if burst:
            self.md += [
                "",
                f"Burst: {burst.get('attempts')} attempts by {burst.get('buyers')} buyers for "
                f"{burst.get('stock')} units; peak accepted {burst.get('peak_accepted_per_s')}/s at the gate, "
                f"written {burst.get('written_per_s_while_writing')}/s by the orders queue while writing.",
            ]
        src = RESULTS / "bench-flash" / "burst.png"
        if src.exists():
            shutil.copyfile(src, self.out / "charts" / "flash-burst.png")
            self.md += ["", "![Flash burst: accepted vs written](charts/flash-burst.png)"]
        for extra in sorted(set(data.get("meta", {})) - {"users", "seconds", "rounds", "overrides", "burst", "checks"}):
            self.md += ["", f"`{extra}`: `{json.dumps(data['meta'][extra])[:400]}`"]
        for check in data.get("meta", {}).get("checks", []):
            detail = ", ".join(
                f"{k} {check[k]}"
                for k in (
                    "stock",
                    "confirmed_units",
                    "max_per_buyer",
                    "duplicate_db_order_ids",
                    "gate_stock",
                    "db_stock",
                )
                if k in check
            )
            self.checks.append(
                (
                    f"flash sale {check.get('sale_id')}: no oversell, limit kept, no duplicates",
                    bool(check.get("ok")),
                    detail,
                )
            )
        self.flags_as_checks("flash", rows)
        for r in rows:
            self.headline.append(
                f"| flash: {r.name} | {r.rps:.0f} | {r.summary.median('p99'):.0f} | "
                f"{ratio(r.rps, base.rps if base else None)} vs {base.name if base else '-'} |"
            )

    # 4 ------------------------------------------------------------------
    def router(self) -> None:
        self.section(
            "4. Read/write router overhead",
            ["bench-db"],
            "GET /api/auth/me (one primary-key SELECT) on one plain engine against the router on the same "
            "replica, with a causal token, and over both replicas. Baseline: the plain engine.",
        )
        rows, missing = rows_for(ROUTER, self.data)
        base = rows[0] if rows and rows[0].name == ROUTER[0][0] else None
        self.md += table(rows, base, None)
        self.missing(missing)
        self.chart("router", "Router overhead (Locust)", rows)
        self.flags_as_checks("router", rows)
        for r in rows:
            self.headline.append(
                f"| {r.name} | {r.rps:.0f} | {r.summary.median('p99'):.0f} | "
                f"{ratio(r.rps, base.rps if base else None)} vs plain engine |"
            )

    # 5 ------------------------------------------------------------------
    def queues(self) -> None:
        self.section("5. Queues", ["bench-queue"], "Queue blocking and its cure, pools for I/O-bound tasks, brokers.")
        data = self.data.get("bench-queue")
        if not data:
            self.md += ["bench-queue left no results in this run."]
            return
        self.md += [
            "| queue layout | short tasks' wait p50 ms | p95 ms | max ms | short tasks done |",
            "|---|---|---|---|---|",
        ]
        for name, r in data.get("blocking", {}).items():
            self.md.append(
                f"| {name} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} | {r['max_ms']:.0f} | "
                f"{r['short_done']}/{r['short_sent']} |"
            )
        block = data.get("blocking", {})
        if "c-separate-queues" in block:
            p95 = block["c-separate-queues"]["p95_ms"]
            self.checks.append(("queues: short tasks wait < 50 ms p95 with separate queues", p95 < 50, f"{p95:.0f} ms"))
        pools = data.get("pools", {})
        base = pools.get("prefork", {}).get("tasks_per_s")
        self.md += [
            "",
            "| pool (task waits 100 ms on HTTP) | concurrency | tasks/s | vs prefork |",
            "|---|---|---|---|",
        ]
        for name, r in pools.items():
            rate = r.get("tasks_per_s")
            self.md.append(
                f"| {name} | {r['concurrency']} | {f'{rate:.1f}' if rate else 'did not run'} | "
                f"{ratio(rate, base) if rate else '-'} |"
            )
            self.checks.append(
                (
                    f"queues: every {name} task done",
                    r.get("done") == r.get("tasks"),
                    f"{r.get('done')}/{r.get('tasks')}",
                )
            )
        self.md += ["", "| broker | publish/s | consume/s | redelivery after SIGKILL |", "|---|---|---|---|"]
        for name, r in data.get("brokers", {}).items():
            red = (
                "not measured"
                if r.get("redelivery_skipped")
                else (f"{r['redelivery_s']:.1f} s" if r.get("redelivery_s") is not None else "none in time")
            )
            self.md.append(f"| {name} | {r['publish_per_s']:.0f} | {r['consume_per_s']:.0f} | {red} |")
            self.checks.append(
                (
                    f"queues: every {name} broker task done",
                    r.get("done") == r.get("tasks"),
                    f"{r.get('done')}/{r.get('tasks')}",
                )
            )

    # 6 ------------------------------------------------------------------
    def workers(self) -> None:
        self.section(
            "6. Processes, threads and coroutines",
            ["bench-workers"],
            "gunicorn `sync`, `gthread` and `gevent` with the same number of processes "
            "(BREAKWATER_WEB_WORKER_CLASS), on an I/O-bound route (an uncached replica read), a route that waits "
            "50 ms on a local slow upstream, and a CPU-bound Markdown render. Baseline: sync.",
        )
        data = self.data.get("bench-workers")
        if not data:
            self.md += ["bench-workers left no results in this run."]
            return
        memory = data.get("meta", {}).get("memory_mb", {})
        all_rows = []
        for route, title in WORKER_ROUTES.items():
            rows = [
                Row(f"{title}: {wc} ({model})", s)
                for wc, model in WORKER_CLASSES.items()
                if (s := summary_of(data, f"{route} {wc}"))
            ]
            if not rows:
                continue
            self.md += ["", f"**{title}**", "", *table(rows, rows[0], None)]
            all_rows += rows
            for r in rows:
                self.headline.append(
                    f"| {r.name} | {r.rps:.0f} | {r.summary.median('p99'):.0f} | {ratio(r.rps, rows[0].rps)} vs sync |"
                )
        if memory:
            self.md += ["", "| configuration | peak RSS, master + workers (MB) | peak PSS (MB) |", "|---|---|---|"]
            self.md += [f"| {k} | {v['rss_median']:.0f} | {v['pss_median']:.0f} |" for k, v in memory.items()]
        self.chart("workers", "Worker classes (Locust)", all_rows)
        self.flags_as_checks("workers", all_rows)

    def missing(self, items: list[str]) -> None:
        if items:
            self.md += ["", "Not in this run's results: " + "; ".join(items) + "."]

    # ------------------------------------------------------------------
    def build(self, quick: bool, total_seconds: float) -> Path:
        for step in (self.homepage, self.regions, self.flash, self.router, self.queues, self.workers):
            try:
                step()
            except Exception as exc:  # one runner's odd JSON must not cost the others' sections
                self.md += ["", f"(This section could not be composed: {type(exc).__name__}: {exc})"]
        head = [
            "# Breakwater benchmark report",
            "",
            f"Composed {self.out.name}; the run took {total_seconds / 60:.1f} min"
            + (
                f" (of which {self.stack_seconds:.0f} s starting the one private stack the runners share)"
                if self.stack_seconds
                else ""
            )
            + (
                " with BENCH_QUICK=1 (short runs, fewer repeats: a check that everything works, not a measurement)"
                if quick
                else ""
            )
            + ".",
            "",
            "**Machine**",
            "",
            "| | |",
            "|---|---|",
            *(f"| {k} | {v} |" for k, v in machine().items()),
            "",
            "How to read: req/s counts successful requests only; each figure is the median of interleaved runs "
            "(min-max beside it); runs in which Locust warned about its own CPU are not used unless all were; a "
            "flag means the figures should not be trusted as they are. Ratios measured in one run on one machine "
            "hold better than the absolute numbers.",
            "",
            "**Targets** (issue 12; ratios from this run)",
            "",
            *(f"- {text}" for text, _ in self.targets),
            "",
            "**Correctness checks**",
            "",
            "| check | verdict | detail |",
            "|---|---|---|",
            *(
                f"| {c} | {'pass' if ok else ('not measured' if ok is None else '**FAIL**')} | {d} |"
                for c, ok, d in self.checks
            ),
        ]
        raw = [
            "",
            "## Raw data",
            "",
            "Each runner's report, JSON and raw files (Locust CSV/JSON/logs, wrk output, "
            "burst samples) are copied beside this report:",
            "",
        ]
        for name in self.runs:
            log = f", [its log](logs/{name}.log)" if (self.out / "logs" / f"{name}.log").exists() else ""
            if self.data.get(name):
                raw.append(f"- [{name}.md]({name}.md), [{name}.json]({name}.json), [raw/{name}/](raw/{name}/){log}")
            elif log:
                raw.append(f"- {name}: no results this run{log}")
            if self.data.get(name):
                for ext in ("md", "json"):
                    shutil.copyfile(RESULTS / f"{name}.{ext}", self.out / f"{name}.{ext}")
                if (RESULTS / name).is_dir():
                    shutil.copytree(RESULTS / name, self.out / "raw" / name, dirs_exist_ok=True)
        text = "\n".join(head + self.md + raw) + "\n"
        (self.out / "report.md").write_text(text)
        (self.out / "report.html").write_text(html(text))
        (self.out / "report.json").write_text(
            json.dumps(
                {
                    "runs": self.runs,
                    "checks": [{"check": c, "passed": ok, "detail": d} for c, ok, d in self.checks],
                    "quick": quick,
                    "seconds": total_seconds,
                },
                indent=1,
            )
            + "\n"
        )
        return self.out / "report.md"

    def readme_table(self) -> str:
        rel = self.out.relative_to(RESULTS.parents[1])
        return "\n".join(
            [
                f"Latest `make bench`: [{rel}/report.md]({rel}/report.md) ([HTML]({rel}/report.html)).",
                "",
                "| configuration | req/s (median) | p99 ms | ratio |",
                "|---|---|---|---|",
                *self.headline,
                "",
                f"Correctness checks: {sum(1 for _, ok, _ in self.checks if ok)} passed, "
                f"{sum(1 for _, ok, _ in self.checks if ok is False)} failed, "
                f"{sum(1 for _, ok, _ in self.checks if ok is None)} not measured (see the report).",
            ]
        )


def html(markdown_text: str) -> str:
    import markdown

    body = markdown.markdown(markdown_text, extensions=["tables"], output_format="html")
    style = (
        "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:1em 0;font-size:14px}th,td{border:1px solid #ccc;padding:3px 7px}"
        "th{background:#f3f3f3}td:nth-child(n+2){text-align:right}img{max-width:100%}code{background:#f5f5f5}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Breakwater benchmark report</title>"
        f"<style>{style}</style></head><body>{body}</body></html>\n"
    )


if __name__ == "__main__":  # recompose from the results already in loadtests/results/
    from bench_all import RUNNERS, recompose

    sys.exit(recompose(RUNNERS))
