"""`make bench-flash`, part 4: sold-out rejections answered upstream, by the Nginx origin (issue 21, point 2).

A sold-out sale's purchase attempts are answered by the origin from the sale's marker (site/breakwater/flash/
markers.py, nginx/origin.conf.j2) and never reach gunicorn. Measured with wrk, side by side in the same run
and interleaved (home, sold-out, then reversed, per round), through the stack's origin:

* ``upstream: static homepage (origin, wrk)``: ``GET /``, the emitted homepage from disk (the baseline);
* ``upstream: sold_out POST (origin marker, wrk)``: a signed-in buyer's ``POST /api/flash/<id>/orders`` (wrk
  ``-s`` with a Lua script setting the method, the JSON body, the session cookie, Content-Type and an
  Idempotency-Key; static, so wrk keeps its fast path, as in the homepage's run) on a sold-out sale the buyer
  has no order in.

Goal: the sold-out POST at least 0.5 of the static homepage's req/s (before markers it was about 0.01, the app
answering). wrk counts every answer of 400 or more as a "status error": the POST run must have nothing but
those (and no socket error), the homepage run none at all. Checked besides: 200 attempts sent one by one
before and after the runs all get exactly the app's 409 ``sold_out`` body from the marker (X-Origin-Cache:
MARKER), and gunicorn's request counter for the purchase endpoint (its /metrics on loopback) does not move
over the POST runs: not one attempt reached the app.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import requests
from benchlib import WRK_DONE_LUA, RunResult, Summary, compare, run_wrk_once, scrape, total
from flashlib import BODY, buy, make_sale

HOME = "upstream: static homepage (origin, wrk)"
SOLD_OUT = "upstream: sold_out POST (origin marker, wrk)"
GOAL = 0.5

DONE_LUA = WRK_DONE_LUA


def post_lua(cookie: str, key: str) -> str:
    """The signed-in buyer's purchase attempt, set once for every request (no per-request Lua)."""
    body = json.dumps(BODY, separators=(",", ":"))
    return (
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body)}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Cookie"] = "bw_session={cookie}"\n'
        f'wrk.headers["Idempotency-Key"] = "{key}"\n' + DONE_LUA
    )


def run_wrk(config: str, url: str, script: Path, *, seconds: int, connections: int, threads: int, raw: Path,
            run_id: str, round_no: int, rejections: bool) -> RunResult:  # fmt: skip
    """One wrk run. ``rejections``: every answer is expected to be a 4xx (wrk's "status errors"), so those are
    the throughput and anything else is a failure; otherwise a status error is a failure."""
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--timeout", "5s", "-s", str(script)]
    run = run_wrk_once([*cmd, url], config, raw, run_id, seconds + 60)
    s = run.summary
    socket_errors = s["connect"] + s["read"] + s["write"] + s["timeout"]
    failures = socket_errors + (s["requests"] - s["status"] if rejections else s["status"])
    checks = {"bytes_per_request": s["bytes"] / max(s["requests"], 1), "status_errors": s["status"]}
    return run.result(config, round_no, failures, checks)


def _app_purchases(stack) -> float:
    """gunicorn's count of purchase attempts it handled (every app instance's /metrics, from loopback)."""
    urls = [f"http://{a.address}:{a.port}" for a in stack.layout.apps]
    return sum(
        total(scrape(u), "breakwater_http_requests_total", endpoint="flash_api.place_order") for u in urls
    )  # fmt: skip


def _answers(origin: str, sale_id: int, cookie: str, key: str, n: int) -> dict[str, int]:
    """``n`` attempts one by one, as wrk sends them: how each was answered (the marker's 409 counted apart)."""
    seen: dict[str, int] = {}
    with requests.Session() as session:
        for _ in range(n):
            resp = session.post(
                f"{origin}/api/flash/{sale_id}/orders", data=json.dumps(BODY, separators=(",", ":")),
                headers={"Content-Type": "application/json", "Cookie": f"bw_session={cookie}", "Idempotency-Key": key},
                timeout=10,
            )  # fmt: skip
            marker = resp.headers.get("X-Origin-Cache") == "MARKER"
            what = f"{resp.status_code} {resp.text.strip()}{' (marker)' if marker else ''}"
            seen[what] = seen.get(what, 0) + 1
    return seen


def sold_out_upstream(app, stack, buyers, raw: Path, *, seconds: int, rounds: int, connections: int,
                      threads: int) -> tuple[list[Summary], object, list[dict], dict]:  # fmt: skip
    """Part 4 (see the module docstring): (summaries, the comparison, checks, figures for the report's meta)."""
    from breakwater.pages.builder import Builder
    from breakwater_tools.stack.programs import ensure_wrk

    ensure_wrk()
    origin = stack.settings.origin_url
    static = Path(stack.settings["STATIC_DIR"])
    if not (static / "index.html").exists():  # BENCH_QUICK=1 skips the full build: emit the homepage alone
        Builder(app).rebuild(["ads"])
    home = requests.get(origin + "/", timeout=10)
    if home.status_code != 200 or home.headers.get("X-Origin-Cache") != "STATIC":
        raise RuntimeError(f"the origin did not serve the emitted homepage: {home.status_code} {home.headers}")

    (_, outsider), (_, cookie) = buyers[0], buyers[1]
    sale_id = make_sale(app, 1)
    first = buy(origin, outsider, sale_id)
    if first[1] != 202:
        raise RuntimeError(f"the sold-out sale's only unit was not accepted: {first}")
    marker = static / "flash" / str(sale_id) / "closed-sold_out"
    deadline = time.monotonic() + 10
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    if not marker.exists():
        raise RuntimeError(f"no sold-out marker {marker} 10 s after the last unit (is flash-markers running?)")
    if not _app_purchases(stack):  # the unit bought above went through gunicorn: the counter must see it
        raise RuntimeError("gunicorn's /metrics has no breakwater_http_requests_total for flash_api.place_order")

    key = "bench-" + uuid.uuid4().hex
    expected = json.dumps({"error": {"code": "sold_out", "message": "The sale is sold out."}}, separators=(",", ":"))
    want = f"409 {expected} (marker)"
    before_answers = _answers(origin, sale_id, cookie, key, 200)
    (raw / "upstream-post.lua").write_text(post_lua(cookie, key))
    (raw / "upstream-home.lua").write_text(DONE_LUA)
    configs = [
        (HOME, origin + "/", raw / "upstream-home.lua", False),
        (SOLD_OUT, f"{origin}/api/flash/{sale_id}/orders", raw / "upstream-post.lua", True),
    ]
    summaries = {name: Summary(name) for name, *_ in configs}
    for r in range(rounds):
        for name, url, script, rejections in configs if r % 2 == 0 else list(reversed(configs)):
            app_before = _app_purchases(stack) if rejections else 0.0
            result = run_wrk(
                name, url, script, seconds=seconds, connections=connections, threads=threads, raw=raw,
                run_id=f"upstream-r{r + 1}-{'post' if rejections else 'home'}", round_no=r + 1, rejections=rejections,
            )  # fmt: skip
            if rejections:
                reached = _app_purchases(stack) - app_before
                result.checks["app_purchase_requests"] = reached
                if reached:
                    result.problems.append(f"check: {reached:.0f} sold-out attempts reached gunicorn")
            summaries[name].runs.append(result)
            flags = result.problems + ([f"{result.failures} failures"] if result.failures else [])
            print(
                f"round {r + 1}/{rounds} {name:<46} {result.rps:8.0f} req/s  p50 {result.p50:.1f} p99 "
                f"{result.p99:.1f} ms  {'; '.join(flags)}",
                flush=True,
            )
    after_answers = _answers(origin, sale_id, cookie, key, 200)
    home_s, post_s = summaries[HOME], summaries[SOLD_OUT]
    comparison = compare(
        f"**sold_out POST answered by the origin** / static homepage through the origin (wrk, goal at least {GOAL})",
        post_s, home_s, fmt="{:.2f}",
    )  # fmt: skip
    answers_ok = set(before_answers) == {want} == set(after_answers)
    reached = sum(r.checks.get("app_purchase_requests", 0) for r in post_s.runs)
    check = {
        "sale_id": sale_id,
        "what": "sold-out attempts answered upstream",
        "answers_before": before_answers,
        "answers_after": after_answers,
        "app_purchase_requests_during_runs": reached,
        "ok": answers_ok and not reached and post_s.reliable and home_s.reliable,
    }
    figures = {
        "ratio": round(comparison.ratio, 3),
        "goal": GOAL,
        "met": comparison.ratio >= GOAL,
        "sale_id": sale_id,
        "wrk": {"threads": threads, "connections": connections, "seconds": seconds, "rounds": rounds},
        "app_purchase_requests_during_runs": reached,
        "answers_checked": answers_ok,
    }
    return [home_s, post_s], comparison, [check], figures


def notes(figures: dict, comparison) -> list[str]:
    """The report's paragraph on part 4."""
    w = figures["wrk"]
    return [
        f"**Sold out, answered upstream** (wrk, {w['threads']} threads x {w['connections']} connections, "
        f"{w['seconds']} s per run, {w['rounds']} interleaved rounds, through the stack's Nginx origin): a "
        "signed-in buyer's purchase attempt on a sold-out sale (POST with its session cookie, JSON body and "
        "Idempotency-Key, set by wrk's Lua script) is answered by the origin from the sale's marker "
        "(`flash-markers` writes it beside the static page when the gate sells the last unit), with the app's "
        "own 409 body, against the emitted homepage served by the same origin. "
        f"Ratio **{comparison.ratio:.2f}** (goal at least {figures['goal']}: "
        f"**{'met' if figures['met'] else 'NOT met'}**; before markers about 0.01, every attempt answered by "
        "gunicorn). Checked: 200 attempts before and after the runs all got the marker's 409 `sold_out`, and "
        f"gunicorn counted {figures['app_purchase_requests_during_runs']:.0f} purchase requests during the POST "
        "runs. wrk sends from 127.0.0.1; the marker answers before Nginx's per-address write limit applies.",
        "",
    ]


def knobs(quick: bool, rounds: int) -> dict[str, int]:
    """wrk's settings for part 4: BENCH_WRK_SECONDS (10, quick 2), BENCH_WRK_CONNECTIONS (64), BENCH_WRK_THREADS
    (2), the runner's rounds."""
    import os

    def knob(name: str, full: int, short: int) -> int:
        return int(os.environ.get(name) or (short if quick else full))

    return {
        "seconds": knob("BENCH_WRK_SECONDS", 10, 2),
        "rounds": rounds,
        "connections": knob("BENCH_WRK_CONNECTIONS", 64, 64),
        "threads": knob("BENCH_WRK_THREADS", 2, 2),
    }


def check_line(check: dict) -> str:
    return (
        f"sale {check['sale_id']} (sold out, answered upstream): answers before the runs {check['answers_before']}, "
        f"after {check['answers_after']}; purchase requests gunicorn counted during the POST runs "
        f"{check['app_purchase_requests_during_runs']:.0f}: **{'pass' if check['ok'] else 'FAIL'}**"
    )
