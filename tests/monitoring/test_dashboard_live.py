"""The operator's dashboard (/ops/) in a real browser during a Locust run, on the monitored stack: every chart
draws data points from Prometheus, and the firing alerts are listed.

The load: visitors through the edge (loadtests/scenarios/visitor.py) and flash buyers through the origin
(flash_buyer.py, a sale of its own starting a few seconds in), each simulated user from a source address of its
own (loadtests/scenarios/source_addresses.py). The browser opens the dashboard on the app's own port, as the
operator on loopback does, while the run goes on.
"""

from __future__ import annotations

import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

LOADTESTS = Path(__file__).resolve().parents[2] / "loadtests"
SECONDS = 30
#: every chart must draw points; within each, these lines must (the others may stay empty under this load:
#: the app's cache tiers answer only what the buyers' polling asks the app), and those in RISE must go above 0
LINES = {
    "requests": ["edge (Varnish)", "origin (Nginx)", "app (gunicorn)"],
    "latency": ["app p99"],
    "hit_ratio": ["edge (Varnish)"],
    "replica_lag": ["mariadb-replica1", "mariadb-replica2"],
    "queues": ["orders", "pages", "purge", "notify", "default"],
    "flash": ["accepted at the gate", "orders written"],
}
RISE = {"requests", "latency", "hit_ratio", "flash"}


@contextmanager
def locust_run(stack, logs: Path):
    """Visitors through the edge and flash buyers through the origin, headless, for SECONDS."""
    settings = stack.settings
    plan = {
        "visitor": ("scenarios/visitor.py", settings.edge_url, 5, ["--visitor-wait", "0.5"]),
        "buyer": ("scenarios/flash_buyer.py", settings.origin_url, 4, ["--flash-stock", "3", "--flash-start-in", "4"]),
    }
    procs = {}
    for name, (locustfile, host, users, extra) in plan.items():
        log = (logs / f"{name}.log").open("w")
        cmd = [
            sys.executable, "-m", "locust", "-f", locustfile, "--headless", "-u", str(users), "-r", str(users),
            "-t", f"{SECONDS}s", "--stop-timeout", "30", "--host", host, "--only-summary", *extra,
        ]  # fmt: skip
        proc = subprocess.Popen(cmd, cwd=LOADTESTS, env=settings.child_env(), stdout=log, stderr=subprocess.STDOUT)
        procs[name] = (proc, log)
    try:
        yield procs
    finally:
        for proc, log in procs.values():
            try:
                proc.wait(timeout=SECONDS + 90)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()


def _figures(page) -> dict[str, tuple[str, str]]:
    """{panel: (data-state, data-points)} as the page shows them."""
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('[data-panel]')].map(
            f => [f.dataset.panel, [f.dataset.state, f.dataset.points]]))"""
    )


def _lines(base: str, name: str) -> dict[str, tuple[int, float]]:
    """{line: (data points, highest value)} of a panel's last 5 minutes, from the API the page reads."""
    body = requests.get(f"{base}/ops/api/panels/{name}?minutes=5", timeout=10).json()
    out = {}
    for series in body.get("series", []):  # none while Prometheus is not answering yet (503)
        values = [v for v in series["values"] if v is not None]
        out[series["label"]] = (len(values), max(values, default=0.0))
    return out


def _missing(base: str) -> dict[str, tuple[list[str], dict]]:
    """{panel: (its lines in LINES without data, every line's (points, highest))} for the panels short of data."""
    missing = {}
    for name, wanted in LINES.items():
        lines = _lines(base, name)
        empty = [w for w in wanted if lines.get(w, (0, 0.0))[0] == 0 or (name in RISE and lines[w][1] <= 0)]
        if empty:
            missing[name] = (empty, lines)
    return missing


@pytest.mark.timeout(240)
def test_the_dashboard_charts_every_tier_during_a_locust_run(monitored, page, tmp_path):
    base = monitored.settings.app_url  # the operator: loopback, straight to the app
    with locust_run(monitored, tmp_path) as procs:
        time.sleep(5)  # the load is on
        page.goto(f"{base}/ops/")
        page.select_option("[data-ops-minutes]", "5")
        # The API the page reads, until every line has data (Prometheus scrapes every 5 s; rates need two scrapes)
        deadline = time.monotonic() + 60
        while (missing := _missing(base)) and time.monotonic() < deadline:
            time.sleep(2)
        assert not missing, f"lines without data points (or never above 0) after a minute: {missing}"
        # ... and the browser draws them: each chart within two of its refreshes.
        try:
            page.wait_for_function(
                """names => names.every(n => {
                    const f = document.querySelector(`[data-panel="${n}"]`);
                    return f && f.dataset.state === 'ok' && Number(f.dataset.points) > 0;
                })""",
                arg=list(LINES),
                timeout=12_000,
                polling=500,
            )
        except Exception as exc:  # playwright's TimeoutError: say which charts stayed empty
            pytest.fail(f"charts without data points: {_figures(page)} ({type(exc).__name__})")
        alerts = page.locator("[data-ops-alerts]")
        assert alerts.count() == 1 and alerts.get_attribute("data-count") not in (None, ""), alerts.inner_html()
        assert page.locator("[data-ops-status]").is_hidden(), page.locator("[data-ops-status]").inner_text()
        page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
    for name, (proc, _log) in procs.items():
        assert proc.returncode is not None, name
