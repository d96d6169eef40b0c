"""Building blocks of `make bench`'s report (loadtests/report.py): rows read back from the runners' JSON,
Markdown tables with ratios, the issue's targets, matplotlib charts, the machine's description, HTML."""

from __future__ import annotations

import json
import math
import os
import platform
import re
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

from benchlib import RESULTS, RunResult, Summary


@dataclass
class Row:
    name: str
    summary: Summary
    has_ceiling: bool = True  # False: the section's ceiling does not apply (a file Nginx serves vs a Flask route)

    @property
    def rps(self) -> float:
        return self.summary.median("rps")


def load(name: str, src: Path = RESULTS) -> dict | None:
    path = src / f"{name}.json"
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
        if s is None and data.get(runner) is None:
            missing.append(f"{label} ({runner} left no results in this run)")
        elif s is None:
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
            f"{ratio(row.rps, ceiling.rps if ceiling and row.has_ceiling else None)} | {'; '.join(s.flags()) or '-'} |"
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


# ---------------------------------------------------------------------- honest labels and verdicts
#: one correctness check: (check, passed (None: not measured), detail, reused from: "" when checked this run)
Check = tuple[str, bool | None, str, str]


def reused(info: dict) -> bool:
    """Whether a report reuses a runner's results from an earlier run rather than running it (a recomposed
    report: ``python report.py``, ``bench_all.recompose``)."""
    return bool(info.get("reused") or info.get("reused_from")) or str(info.get("status", "")).startswith("recomposed")


def verdict(ok: bool | None, reused_from: str = "") -> str:
    """A check's verdict in the report: a reused runner's check is not passed (nor failed) this run."""
    if reused_from:
        then = {True: ": passed then", False: ": **FAILED** then", None: ""}[ok]
        return f"reused from {reused_from}{then}, not checked this run"
    return "pass" if ok else ("not measured" if ok is None else "**FAIL**")


def check_counts(checks: list[Check]) -> dict[str, int]:
    """Passed, failed and not measured this run, and reused from earlier runs (counted apart, whatever they
    were then)."""
    mine = [ok for _, ok, _, reused_from in checks if not reused_from]
    return {
        "passed": sum(1 for ok in mine if ok),
        "failed": sum(1 for ok in mine if ok is False),
        "not measured": sum(1 for ok in mine if ok is None),
        "reused": sum(1 for *_, reused_from in checks if reused_from),
        "reused, failed then": sum(1 for _, ok, _, reused_from in checks if reused_from and ok is False),
    }


def checks_line(checks: list[Check]) -> str:
    n = check_counts(checks)
    line = f"Correctness checks: {n['passed']} passed, {n['failed']} failed, {n['not measured']} not measured"
    if not n["reused"]:
        return line + " (see the report)."
    failed_then = f"{n['reused, failed then']} of them had failed then; " if n["reused, failed then"] else ""
    return line + f", {n['reused']} reused from earlier runs, not checked this run ({failed_then}see the report)."


def ms(value: float) -> str:
    """A latency in whole ms; an infinite one (a task that never ran) as "never"."""
    return "never" if value == math.inf else f"{value:.0f}"


def _share(n: int, total: int) -> str:
    pct = 100 * n / total
    return f"{pct:.0f}%" if pct >= 1 or not n else f"{pct:.1f}%"


def purchase_label(config: str, runs: list[dict]) -> str:
    """What a purchase path's attempts/s measured, for its row: ``purchase, gate path`` counts every answer of
    a rush on a small sale, mostly sold-out rejections once the stock is gone; the shares are from the runs'
    answers (bench-flash's ``meta.purchase_paths.runs``). Other configurations keep their name."""
    if not config.startswith("purchase, "):
        return config
    path = config.removeprefix("purchase, ").split()[0]
    answers: dict[str, int] = {}
    for run in runs:
        if run.get("path") == path:
            for answer, n in (run.get("answers") or {}).items():
                answers[answer] = answers.get(answer, 0) + n
    total = sum(answers.values())
    if not total:
        return f"purchase attempts, {path} path (accepted and rejected; shares not recorded)"
    accepted = sum(n for a, n in answers.items() if a.split()[0] in ("201", "202"))
    sold_out = answers.get("409 sold_out", 0)
    rejected = sum(n for a, n in answers.items() if a.startswith("409"))
    other = total - accepted - rejected
    what = (
        "mostly sold-out rejections" if sold_out * 2 > total
        else "mostly rejections" if rejected * 2 > total
        else "mostly accepted" if accepted * 2 > total
        else "mixed answers"
    )  # fmt: skip
    shares = f"{_share(accepted, total)} accepted, {_share(rejected, total)} rejected"
    shares += f", {_share(other, total)} other answers" if other else ""
    return f"purchase attempts, {path} path: {what} ({shares})"


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
    names = [textwrap.fill(r.name, 48, break_on_hyphens=False) for r in rows]  # a long label on several lines
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
    ax.set_yticks(range(len(rows)), [textwrap.fill(r.name, 48, break_on_hyphens=False) for r in rows])
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

    from breakwater_tools.stack.programs import which

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
