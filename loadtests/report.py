"""`make bench`'s one report: every runner's results/<name>.json composed into results/<timestamp>/report.md/.html.

Sections follow issue 12: 1 homepage ladder, 2 region cascade, 3 flash sale, 4 router overhead, 5 queues,
6 worker classes; and issue 20: 7 the edge under a sudden crowd. Each table row is named for a reader
(``static homepage (origin)``), shows the median req/s with its spread, p50/p95/p99 and failures, and its ratio to
the section's baseline and (where one was measured) to the machine's ceiling. A runner that did not run, failed, or
lacks a configuration leaves its rows out and
says so; nothing is invented. Charts are PNGs drawn with matplotlib into charts/.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

from benchlib import QUICK, RESULTS, ROOT
from flash_upstream import HOME as UPSTREAM_HOME
from flash_upstream import SOLD_OUT as UPSTREAM_SOLD_OUT
from flash_upstream import check_line as upstream_check_line
from flashlib import peak_shaved_text
from report_parts import (
    Check,
    Row,
    chart_latency,
    chart_throughput,
    checks_line,
    html,
    load,
    machine,
    ms,
    purchase_label,
    ratio,
    reused,
    rows_for,
    summary_of,
    table,
    target,
    verdict,
)

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
CROWD = [
    ("cold edge, 1,000 connections at once (wrk, gzip)", "bench-spike", "cold edge, 1,000 connections at once"),
    ("bare Varnish 7.1, default settings, same page (anchor)", "bench-spike",
     "bare Varnish 7.1, default settings, same page"),
]  # fmt: skip
WORKER_ROUTES = {
    "replica": "uncached replica read",
    "upstream": "50 ms local upstream",
    "markdown": "Markdown render (CPU)",
}
WORKER_CLASSES = {"sync": "processes", "gthread": "threads", "gevent": "coroutines"}
REUSED_NOTE = [
    "A check of a runner whose results this report reuses from an earlier run is marked reused: it was not "
    "checked for this report, and is not counted as passed.",
    "",
]

#: every runner of a full `make bench`, in the report's order
RUNNERS = ["bench-static", "bench-cache", "bench-db", "bench-workers", "bench-queue", "bench-flash", "bench-spike"]
#: the composite table, beside each report (`make bench-publish` copies it and puts it in docs/benchmarks.md)
README_TABLE = "readme-table.md"


# ---------------------------------------------------------------------- sections
class Report:
    def __init__(self, out: Path, runs: dict[str, dict], stack_seconds=(0.0, 0.0), src: Path = RESULTS) -> None:
        self.out = out
        self.src = src  # where the runners' <name>.json are: results/, or an earlier report's folder
        self.runs = runs  # runner name -> {"status", "seconds", "fresh"}
        self.stack_seconds = stack_seconds
        # A runner that wrote nothing this time: its older results are left out, not passed off as this run's.
        self.data = {name: load(name, src) if info.get("fresh") else None for name, info in runs.items()}
        #: any runner's figures came from a BENCH_QUICK=1 run
        self.quick = any(d.get("quick") or d.get("meta", {}).get("quick") for d in self.data.values() if d)
        self.md: list[str] = []
        self.checks: list[Check] = []  # (check, passed, detail, reused from: "" if checked this run)
        self.section_runners: list[str] = []  # the runners of the section being composed
        self.targets: list[tuple[str, bool | None]] = []  # the performance targets
        self.headline: list[str] = []
        (out / "charts").mkdir(parents=True, exist_ok=True)

    def status(self, runner: str) -> str:
        info = self.runs.get(runner, {})
        data = self.data.get(runner)
        when = f"measured {data.get('measured')}" if data else "no results"
        quick = "; BENCH_QUICK=1" if data and (data.get("quick") or data.get("meta", {}).get("quick")) else ""
        knobs = "".join(f"; {k}={v}" for k, v in info.get("knobs", {}).items())
        return f"`{runner}`: {info.get('status', 'not run')}, {info.get('seconds', 0):.0f} s ({when}{quick}{knobs})"

    def reused_from(self, runners: list[str]) -> str:
        """Which earlier runs a check's figures come from ("" when every runner ran for this report)."""
        parts = []
        for runner in runners:
            info = self.runs.get(runner, {})
            if reused(info):
                data = self.data.get(runner) or {}
                source = info.get("reused_from") or f"measured {data.get('measured', 'earlier')}"
                parts.append(f"{runner} {source}")
        return "; ".join(parts)

    def add_check(self, check: str, ok: bool | None, detail: str, runners: list[str] | None = None) -> None:
        """One correctness check of ``runners``' results (default: the section's runners); a reused runner's
        check is marked reused, from which run, never counted as passed this run."""
        self.checks.append((check, ok, detail, self.reused_from(self.section_runners if runners is None else runners)))

    def section(self, title: str, runners: list[str], intro: str) -> None:
        self.section_runners = runners
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
        if not rows:
            self.add_check(f"{section}: every configuration served as claimed", None, "no results this run")
            return
        problems = [f"{row.name}: {f}" for row in rows for f in row.summary.flags() if "check:" in f or "failed" in f]
        detail = "; ".join(problems) or f"{len(rows)} configurations, {sum(len(r.summary.runs) for r in rows)} runs"
        self.add_check(f"{section}: every configuration served as claimed, no failed request", not problems, detail)

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
                "Publish latency under load (bench-static): "
                + ", ".join(
                    f"{where} p95 "
                    + (f"{pub[key]} s" if pub.get(key) is not None else f"over the {pub.get('timeout_s')} s timeout")
                    for where, key in (("origin", "origin_p95_s"), ("edge", "edge_p95_s"))
                )
                + f" ({len(pub.get('samples', []))} title edits; goals origin < 1 s, edge < 2 s; details in "
                "bench-static.md).",
            ]
            samples = pub.get("samples", [])
            for label, key, goal in (("origin", "origin_p95_s", 1.0), ("edge", "edge_p95_s", 2.0)):
                v = pub.get(key)
                unseen = sum(1 for s in samples if s.get(f"{label}_s") is None)
                detail = f"p95 {v} s" if v is not None else f"p95 over the {pub.get('timeout_s')} s timeout"
                detail += f"; {unseen} of {len(samples)} publishes not seen within it" if unseen else ""
                self.add_check(f"publish visible at the {label} (p95 < {goal:g} s)", v is not None and v < goal,
                               detail, ["bench-static"])  # fmt: skip

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
        for row in rows:
            row.has_ceiling = "static" not in row.name
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
        # A purchase path's row says what its attempts/s counted: mostly sold-out rejections, with the shares.
        path_runs = data.get("meta", {}).get("purchase_paths", {}).get("runs", [])
        rows = [
            Row(purchase_label(name, path_runs), s)
            for name in data.get("configs", {})
            if not name.startswith("upstream: ") and (s := summary_of(data, name))
        ]
        base = rows[0] if rows else None
        self.md += table(rows, base, None)
        self.md += ["", *(f"- {c['text']}" for c in data.get("comparisons", []))]
        self.chart("flash", "Flash sale (Locust)", rows)
        upstream = self.flash_upstream(data)
        burst = data.get("meta", {}).get("burst")
        if burst:
            self.md += [
                "",
                f"Burst: {burst.get('attempts')} attempts by {burst.get('buyers')} buyers for "
                f"{burst.get('stock')} units. {peak_shaved_text(burst)}; the orders queue wrote "
                f"{burst.get('written_per_s_while_writing')}/s on average while writing.",
            ]
        raw = self.src / ("raw/bench-flash" if self.src != RESULTS else "bench-flash")
        src = raw / "burst.png"
        if src.exists():
            shutil.copyfile(src, self.out / "charts" / "flash-burst.png")
            self.md += ["", "![Flash burst: accepted vs written](charts/flash-burst.png)"]
        known = {"users", "seconds", "rounds", "overrides", "burst", "checks", "upstream"}
        for extra in sorted(set(data.get("meta", {})) - known):
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
            self.add_check(f"flash sale {check.get('sale_id')}: no oversell, limit kept, no duplicates",
                           bool(check.get("ok")), detail)  # fmt: skip
        self.flags_as_checks("flash", rows + upstream)
        for r in upstream[1:]:
            self.headline.append(
                f"| flash: {r.name} | {r.rps:.0f} | {r.summary.median('p99'):.0f} | "
                f"{ratio(r.rps, upstream[0].rps)} vs {upstream[0].name} |"
            )
        for r in rows:
            self.headline.append(
                f"| flash: {r.name} | {r.rps:.0f} | {r.summary.median('p99'):.0f} | "
                f"{ratio(r.rps, base.rps if base else None)} vs {base.name if base else '-'} |"
            )

    def flash_upstream(self, data: dict) -> list[Row]:
        """bench-flash's part 4: the sold-out POST the origin answers from the sale's marker against the static
        homepage through the same origin (wrk, the same run); its target and its check."""
        rows = [
            Row(label, s)
            for label, config in (("static homepage (origin, wrk)", UPSTREAM_HOME),
                                  ("sold_out POST answered by the origin's marker (wrk)", UPSTREAM_SOLD_OUT))
            if (s := summary_of(data, config))
        ]  # fmt: skip
        if not rows:
            self.md += ["", "Sold out answered upstream: not in these results (bench-flash before issue 21)."]
            return rows
        self.md += [
            "",
            "Sold out, answered upstream: a signed-in buyer's purchase attempt on a sold-out sale, answered by the "
            "Nginx origin from the sale's marker without gunicorn, against the emitted homepage from the same origin "
            "(wrk, interleaved in the same run; baseline: the homepage):",
            "",
            *table(rows, rows[0], None),
        ]
        find = {r.name: r for r in rows}.get
        self.add_targets(
            [
                target(
                    "Sold-out POST answered by the origin / static homepage through the origin (wrk)",
                    find("sold_out POST answered by the origin's marker (wrk)"),
                    find("static homepage (origin, wrk)"),
                    0.5,
                )
            ]
        )
        for check in data.get("meta", {}).get("upstream", {}).get("checks", []):
            self.add_check(
                "flash: sold-out attempts answered upstream, none reached gunicorn", bool(check.get("ok")),
                upstream_check_line(check),
            )  # fmt: skip
        return rows

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
        unfinished = {}  # a short task that never started is infinitely late ("never"), and a failure
        for name, r in data.get("blocking", {}).items():
            unfinished[name] = r.get("short_unfinished", r["short_sent"] - r["short_done"])
            never = f" ({unfinished[name]} unfinished)" if unfinished[name] else ""
            self.md.append(
                f"| {name} | {ms(r['p50_ms'])} | {ms(r['p95_ms'])} | {ms(r['max_ms'])} | "
                f"{r['short_done']}/{r['short_sent']}{never} |"
            )
            self.add_check(f"queues: every short task of {name} started", not unfinished[name],
                           f"{r['short_done']}/{r['short_sent']}")  # fmt: skip
        block = data.get("blocking", {})
        if "c-separate-queues" in block:
            p95 = block["c-separate-queues"]["p95_ms"]
            detail = f"{ms(p95)} ms" + (f" ({unfinished['c-separate-queues']} never started)"
                                          if unfinished["c-separate-queues"] else "")  # fmt: skip
            self.add_check("queues: short tasks wait < 50 ms p95 with separate queues", p95 < 50, detail)
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
            self.add_check(f"queues: every {name} task done", r.get("done") == r.get("tasks"),
                           f"{r.get('done')}/{r.get('tasks')}")  # fmt: skip
        self.md += ["", "| broker | publish/s | consume/s | redelivery after SIGKILL |", "|---|---|---|---|"]
        for name, r in data.get("brokers", {}).items():
            red = (
                "not measured"
                if r.get("redelivery_skipped")
                else (f"{r['redelivery_s']:.1f} s" if r.get("redelivery_s") is not None else "none in time")
            )
            self.md.append(f"| {name} | {r['publish_per_s']:.0f} | {r['consume_per_s']:.0f} | {red} |")
            self.add_check(f"queues: every {name} broker task done", r.get("done") == r.get("tasks"),
                           f"{r.get('done')}/{r.get('tasks')}")  # fmt: skip

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

    # 7 ------------------------------------------------------------------
    def crowd(self) -> None:
        self.section(
            "7. The edge under a sudden crowd",
            ["bench-spike"],
            "A cold edge (its program just restarted: empty cache, only its minimum threads) hit by 1,000 "
            "connections at once (wrk, gzip, the homepage), beside a bare Varnish 7.1 with default settings serving "
            "the same page from the same origin, interleaved rounds; then a Locust spike of visitors through the "
            "edge (ten times as many within 10 s, then back), each from its own address, with the default limits. "
            "Baseline: the bare Varnish.",
        )
        data = self.data.get("bench-spike")
        if not data:
            self.md += ["bench-spike left no results in this run."]
            return
        rows, missing = rows_for(CROWD, self.data)
        bare = next((r for r in rows if r.name == CROWD[1][0]), None)
        self.md += table(rows, bare, None)
        self.missing(missing)
        meta = data.get("meta", {})
        crowd, sp = meta.get("cold_crowd", {}), meta.get("spike", {})
        if crowd:
            ratio_ok = crowd["p99_ratio"] <= crowd["goal"]
            self.add_targets(
                [
                    (
                        "Cold edge's p99 / bare Varnish's p99 at 1,000 connections (issue 20): "
                        f"{crowd['p99_ratio']:.2f} (goal at most {crowd['goal']:g}; {crowd['edge_p99_ms']:.0f} vs "
                        f"{crowd['bare_p99_ms']:.0f} ms): **{'met' if ratio_ok else 'NOT met'}**",
                        ratio_ok,
                    )
                ]
            )
            edge_name = CROWD[0][2]
            self.add_check(
                "crowd: the cold edge had 0 timeouts and 0 errors at 1,000 connections",
                crowd["timeouts"].get(edge_name, 0) == 0 and crowd["errors"].get(edge_name, 0) == 0,
                f"timeouts {crowd['timeouts'].get(edge_name)}, errors {crowd['errors'].get(edge_name)} "
                f"(bare Varnish: {crowd['timeouts'].get(CROWD[1][2])}, {crowd['errors'].get(CROWD[1][2])})",
            )
        problems = [f"{r.name}: {p}" for r in rows for p in sorted({p for run in r.summary.runs for p in run.problems})]
        self.add_check("crowd: both Varnishes served the origin's gzip homepage from cache", not problems,
                       "; ".join(problems) or f"{sum(len(r.summary.runs) for r in rows)} runs")  # fmt: skip
        spike_row = ""
        if sp:
            share = lambda v: "-" if v is None else f"{100 * v:.2f}%"  # noqa: E731
            self.md += [
                "",
                f"Spike through the edge (Locust, each visitor from its own address): {sp['shape']['base']:.0f} to "
                f"{sp['peak_users']} visitors within {sp['shape']['ramp']:.0f} s and back; {sp['requests']} requests, "
                f"{sp['failures']} failed, p50 {sp['p50_ms']} ms, p99 {sp['p99_ms']} ms; reached the origin "
                f"{share(sp['origin_share'])}, the app {share(sp['app_share'])} (edge restarted empty just before).",
            ]
            self.add_check("spike: 0 failed requests through the edge with the default limits", sp["failures"] == 0,
                           f"{sp['failures']} of {sp['requests']}")  # fmt: skip
            spike_row = (
                f"| spike through the edge: {sp['shape']['base']:.0f} to {sp['peak_users']} visitors in "
                f"{sp['shape']['ramp']:.0f} s (Locust; req/s: the busiest second) | {sp.get('peak_rps') or 0:.0f} | "
                f"{sp['p99_ms']:.0f} | {sp['failures']} failed; {share(sp['origin_share'])} reached the origin, "
                f"{share(sp['app_share'])} the app |"
            )
        raw = self.src / ("raw/bench-spike" if self.src != RESULTS else "bench-spike")
        src = raw / "spike-timeline.png"
        if src.exists():
            shutil.copyfile(src, self.out / "charts" / "spike-timeline.png")
            self.md += ["", "![Spike through the edge: p50/p99 per second](charts/spike-timeline.png)"]
        base = bare.summary.median("p99") if bare else None
        for r in sorted(rows, key=lambda r: r is not bare):  # the anchor first, the cold edge beside it
            p99 = r.summary.median("p99")
            self.headline.append(f"| {r.name} | {r.rps:.0f} | {p99:.0f} | p99 {ratio(p99, base)} of the anchor's |")
        if spike_row:
            self.headline.append(spike_row)

    def missing(self, items: list[str]) -> None:
        if items:
            self.md += ["", "Not in this run's results: " + "; ".join(items) + "."]

    # ------------------------------------------------------------------
    def run_checks(self) -> None:
        """One check per runner: it ran to the end for this report; a reused runner did not run at all."""
        for name, info in self.runs.items():
            if reused(info):
                self.add_check(f"{name} ran to the end", None, f"not run for this report ({info.get('status')})",
                               [name])  # fmt: skip
            else:
                self.add_check(f"{name} ran to the end", info.get("status") == "ok",
                               f"{info.get('status')}, {info.get('seconds', 0):.0f} s", [name])  # fmt: skip

    def build(self, quick: bool, total_seconds: float) -> Path:
        self.run_checks()
        for step in (self.homepage, self.regions, self.flash, self.router, self.queues, self.workers, self.crowd):
            try:
                step()
            except Exception as exc:  # one runner's odd JSON must not cost the others' sections
                self.md += ["", f"(This section could not be composed: {type(exc).__name__}: {exc})"]
        head = [
            "# Breakwater benchmark report",
            "",
            f"Composed {self.out.name}; the run took {total_seconds / 60:.1f} min"
            + (
                f" (of which {self.stack_seconds[0]:.0f} s starting"
                + (f" and {self.stack_seconds[1]:.0f} s stopping" if self.stack_seconds[1] else "")
                + " the one private stack the runners share)"
                if any(self.stack_seconds)
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
            *(REUSED_NOTE if any(reused_from for *_, reused_from in self.checks) else []),
            "| check | verdict | detail |",
            "|---|---|---|",
            *(f"| {c} | {verdict(ok, reused_from)} | {d} |" for c, ok, d, reused_from in self.checks),
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
                    if self.src != self.out:
                        shutil.copyfile(self.src / f"{name}.{ext}", self.out / f"{name}.{ext}")
                if self.src == RESULTS and (RESULTS / name).is_dir():
                    shutil.copytree(RESULTS / name, self.out / "raw" / name, dirs_exist_ok=True)
        text = "\n".join(head + self.md + raw) + "\n"
        (self.out / "report.md").write_text(text)
        (self.out / "report.html").write_text(html(text))
        (self.out / "report.json").write_text(
            json.dumps(
                {
                    "runs": self.runs,
                    # a reused check was not checked for this report: "passed" is null, "reused_from" says
                    # where its figures come from and "passed_when_measured" what it was then
                    "checks": [
                        {"check": c, "passed": None if reused_from else ok, "detail": d}
                        | ({"reused_from": reused_from, "passed_when_measured": ok} if reused_from else {})
                        for c, ok, d, reused_from in self.checks
                    ],
                    "quick": quick,
                    "seconds": total_seconds,
                    "stack_seconds": self.stack_seconds,
                },
                indent=1,
            )
            + "\n"
        )
        return self.out / "report.md"

    def readme_table(self) -> str:
        rel = self.out.relative_to(ROOT)
        return "\n".join(
            [
                f"Latest `make bench`: [{rel}/report.md]({rel}/report.md) ([HTML]({rel}/report.html)).",
                "",
                "| configuration | req/s (median) | p99 ms | ratio |",
                "|---|---|---|---|",
                *self.headline,
                "",
                checks_line(self.checks),
            ]
        )


def compose(out: Path, runs: dict[str, dict], total: float, stack_seconds=(0.0, 0.0), src: Path = RESULTS) -> int:
    report = Report(out, runs, stack_seconds, src)
    quick = QUICK or report.quick
    path = report.build(quick, total)
    # The composite table for this run, put in docs/benchmarks.md only by `make bench-publish` (a full run)
    (out / README_TABLE).write_text(
        ("(BENCH_QUICK=1: short runs, fewer repeats; a check that everything works, not a measurement.)\n\n"
         if quick else "") + report.readme_table() + "\n"
    )  # fmt: skip
    print(path.read_text())
    print(f"Report: {path} and {path.with_suffix('.html')}")
    return 0 if all(v["status"] == "ok" for v in runs.values()) else 1


def recompose(runners: list[str], folder: Path | None = None) -> int:
    """A report from results already measured (no runner is run): those in loadtests/results/ into a new
    folder, or an earlier report's folder rewritten in place from its own copies (its run times kept)."""
    if folder is None:
        out = RESULTS / (time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-recomposed")
        (out / "logs").mkdir(parents=True)
        runs = {n: {"status": "recomposed from an earlier run", "seconds": 0.0, "fresh": True} for n in runners}
        return compose(out, runs, 0.0)
    before = json.loads((folder / "report.json").read_text())
    runs = {n: {**info, "fresh": (folder / f"{n}.json").exists()} for n, info in before["runs"].items()}
    stack = before.get("stack_seconds", 0.0)
    return compose(folder, runs, before.get("seconds", 0.0), stack if isinstance(stack, list) else (stack, 0.0), folder)


if __name__ == "__main__":
    # `python report.py`: a new report from the results in loadtests/results/;
    # `python report.py results/<timestamp>`: that report rewritten from its own copies.
    sys.exit(recompose(RUNNERS, Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else None))
