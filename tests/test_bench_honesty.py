"""Benchmarks cannot flatter (issue 19, point 6): the computations behind the load tests' and benchmarks'
verdicts, tested directly, without a stack.

- the Locust flash buyer counts 5xx answers and network errors as failures (retried or not);
- a recomposed report does not count the reused runners' checks as passed this run;
- the queue-blocking percentiles count the tasks that never ran (as infinitely late, not dropped);
- "peak shaved" compares the peak 1-s bin of accepted orders with the peak 1-s bin of written ones;
- the composite row of the purchase path says it measured mostly sold-out rejections.

The Locust scenario is imported in a subprocess: importing Locust monkey-patches the process with gevent.
"""

from __future__ import annotations

import importlib
import json
import math
import subprocess
import sys
from pathlib import Path

LOADTESTS = Path(__file__).resolve().parents[1] / "loadtests"
INF = math.inf


def loadtests_module(name: str):
    """A module of loadtests/ (its modules import each other by their bare names, as the runners do)."""
    if str(LOADTESTS) not in sys.path:
        sys.path.append(str(LOADTESTS))  # after everything else: it shadows nothing
    return importlib.import_module(name)


def in_locust_process(code: str) -> object:
    """Run ``code`` (which prints one JSON value last) where loadtests/scenarios is importable; that value."""
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=LOADTESTS / "scenarios", capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": str(LOADTESTS / "scenarios"), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------- the Locust flash buyer
def test_the_flash_buyer_counts_server_errors_and_network_errors_as_failures():
    table = in_locust_process(
        "import json, flash_buyer as f\n"
        "codes = [0, 201, 202, 400, 401, 403, 404, 409, 429, 500, 502, 503, 504]\n"
        "out = {s: f.classify(s, '', {202, 409}) for s in codes}\n"
        "out['403 not_started'] = f.classify(403, 'not_started', {202, 409})\n"
        "print(json.dumps(out))"
    )
    # (a failure in Locust's statistics?, retried with the same key?)
    assert table == {
        "0": [True, True],  # no answer: refused, reset, timed out
        "201": [True, False],  # not what a purchase answers
        "202": [False, False],
        "400": [True, False],
        "401": [True, False],
        "403": [True, False],
        "404": [True, False],
        "409": [False, False],  # sold_out / limit_reached: an answer
        "429": [False, True],  # a rate limit: an expected refusal, retried
        "500": [True, True],
        "502": [True, True],
        "503": [True, True],
        "504": [True, True],
        "403 not_started": [False, False],
    }, table


SEND = """
import http.server, json, socket, threading
import flash_buyer as f
from locust import events
from locust.env import Environment

f.RETRY_S = 0.01
seen = []


def record(name, exception, **_kw):
    seen.append([name, bool(exception)])


def send(host):
    env = Environment(user_classes=[f.FlashBuyer], host=host, events=events)
    env.events.request.add_listener(record)
    f.FlashBuyer.host = host
    user = f.FlashBuyer(env)
    user.path = "/api/flash/1"
    answer = user.send("POST", "/api/flash/1/orders", {}, {202, 409})
    env.events.request.remove_listener(record)
    return answer is None


# a port nobody listens on: every attempt is a refused connection
s = socket.socket()
s.bind(("127.0.0.1", 0))
closed = s.getsockname()[1]
s.close()
refused = send(f"http://127.0.0.1:{closed}")
# Python's own HTTP server answers a POST with 501 Not Implemented: a real 5xx
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
threading.Thread(target=server.serve_forever, daemon=True).start()
five = send(f"http://127.0.0.1:{server.server_address[1]}")
server.shutdown()
print(json.dumps({"refused_gave_none": refused, "five_gave_none": five, "seen": seen}))
"""


def test_the_flash_buyers_send_records_every_retried_error_as_a_failure_on_its_own_row():
    """send() against a closed port and a real server answering 501: each of its 10 tries is a failure."""
    out = in_locust_process(SEND)
    assert out["refused_gave_none"] and out["five_gave_none"], out
    expected = [["/api/flash/[id]/orders [network error]", True]] * 10 + [["/api/flash/[id]/orders [501]", True]] * 10
    assert out["seen"] == expected, out["seen"]


# ---------------------------------------------------------------------- queue blocking (bench_queue.py)
def test_the_queue_blocking_percentiles_count_unfinished_tasks_as_infinitely_late():
    bq = loadtests_module("bench_queue")
    # 90 of 100 short tasks waited 10 ms; 10 never started: the p95 is theirs, not the finished ones'
    s = bq.wait_summary([10.0] * 90, 100)
    assert (s["short_sent"], s["short_done"], s["short_unfinished"]) == (100, 90, 10), s
    assert s["p50_ms"] == 10.0 and s["p95_ms"] == INF and s["max_ms"] == INF, s
    # 3 of 100 unfinished: the p95 is a measured wait, but ranked among all 100 (94 ms; dropping them: 91 ms)
    s = bq.wait_summary([float(ms) for ms in range(97)], 100)
    assert s["p95_ms"] == 94.0 and s["max_ms"] == INF and s["short_unfinished"] == 3, s
    # all done: the plain figures
    s = bq.wait_summary([float(ms) for ms in range(100)], 100)
    assert (s["p95_ms"], s["max_ms"], s["short_unfinished"]) == (94.0, 99.0, 0), s
    assert math.isnan(bq.wait_summary([], 0)["p95_ms"])


def test_the_queue_report_shows_unfinished_tasks_and_fails_the_goal_on_them():
    bq = loadtests_module("bench_queue")
    c = {**bq.wait_summary([5.0] * 150, 160), "p95_by_round_ms": [INF, 5.0]}
    a = {**bq.wait_summary([5.0] * 160, 160), "p95_by_round_ms": [5.0, 5.0]}
    text = bq.report({"a-defaults": a, "c-separate-queues": c}, {}, {}, {"cpus": 2, "machine": "m",
                     "loadavg_at_end": [0.0]}, "now")  # fmt: skip
    assert "| c-separate-queues | 5 | never | never | never / 5 | 150/160 (10 unfinished) |" in text, text
    assert "Goal (c) p95 < 50 ms: NOT met" in text, text


# ---------------------------------------------------------------------- the flash burst (bench_flash.py)
def burst_samples() -> list[tuple[float, int, int]]:
    """A burst sampled every 100 ms for 5 s, the first attempt at 0.5 s: 180 orders accepted at once at 1.0 s;
    written 10 at 1.0 s, 90 more at 2.0 s, 10 more at 3.0 s (the queue's busiest second: 90)."""

    def accepted(t: float) -> int:
        return 180 if t >= 1.0 else 0

    def written(t: float) -> int:
        return (10 if t >= 1.0 else 0) + (90 if t >= 2.0 else 0) + (10 if t >= 3.0 else 0)

    return [(round(i * 0.1, 3), accepted(i * 0.1), written(i * 0.1)) for i in range(51)]


def test_peak_shaved_compares_the_peak_second_accepted_with_the_peak_second_written():
    flashlib = loadtests_module("flashlib")
    rates, figures = flashlib.burst_rates(burst_samples(), 0.5, 2.0, 180, 110)
    assert rates["accepted"] == [180, 0, 0, 0] and rates["written"] == [10, 90, 10, 0], rates  # full seconds only
    assert figures["peak_accepted_per_s"] == 180 and figures["peak_written_per_s"] == 90, figures
    # the queue's average while writing (110 over 2 s) would make it 3.3x: not like with like
    assert figures["written_per_s_while_writing"] == 55.0, figures
    assert figures["peak_shaved"] == 2.0, figures
    text = flashlib.peak_shaved_text(figures)
    assert text.startswith("Peak shaved: 2.0x") and "180/s" in text and "90/s" in text, text
    # results written before peak_shaved existed: the same ratio from their two peaks
    assert flashlib.peak_shaved_text({"peak_accepted_per_s": 195, "peak_written_per_s": 85,
                                      "written_per_s_while_writing": 52.0}).startswith("Peak shaved: 2.3x")  # fmt: skip
    assert flashlib.peak_shaved([5], [0]) is None


# ---------------------------------------------------------------------- the report (report.py, report_parts.py)
RECOMPOSED = {"status": "recomposed from an earlier run", "seconds": 0.0, "fresh": True}
RAN = {"status": "ok", "seconds": 100.0, "fresh": True}


def queue_results(unfinished: int = 0) -> dict:
    bq = loadtests_module("bench_queue")
    block = {
        name: {**bq.wait_summary([5.0] * (320 - (unfinished if name == "c-separate-queues" else 0)), 320),
               "p95_by_round_ms": [5.0, 5.0]}
        for name in ("a-defaults", "b-prefetch1-late-fair", "c-separate-queues")
    }  # fmt: skip
    return {
        "measured": "2026-11-28 11:39 UTC",
        "blocking": block,
        "pools": {"prefork": {"concurrency": 2, "tasks": 40, "done": 40, "runs": True, "tasks_per_s": 17.5}},
        "brokers": {"rabbitmq": {"publish_per_s": 800.0, "consume_per_s": 1100.0, "tasks": 200, "done": 200,
                                 "redelivery_s": 0.6}},
    }  # fmt: skip


def report_of(tmp_path: Path, runs: dict[str, dict], results: dict[str, dict]):
    """A Report over ``results`` written as the runners' JSON in a folder of its own (nothing under loadtests/)."""
    report = loadtests_module("report")
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    for name, data in results.items():
        (src / f"{name}.json").write_text(json.dumps(data))
    return report.Report(tmp_path / "out", runs, (0.0, 0.0), src)


def test_a_recomposed_report_marks_the_reused_runners_checks_reused_never_passed(tmp_path):
    parts = loadtests_module("report_parts")
    rep = report_of(tmp_path, {"bench-queue": RECOMPOSED}, {"bench-queue": queue_results()})
    rep.run_checks()
    rep.queues()
    assert len(rep.checks) == 7, rep.checks  # ran to the end, 3 layouts started, p95 goal, one pool, one broker
    for check, ok, _detail, reused_from in rep.checks:
        assert reused_from == "bench-queue measured 2026-11-28 11:39 UTC", (check, reused_from)
        assert parts.verdict(ok, reused_from).startswith("reused from bench-queue measured 2026-11-28 11:39 UTC")
    counts = parts.check_counts(rep.checks)
    assert counts["passed"] == 0 and counts["failed"] == 0 and counts["reused"] == 7, counts
    assert parts.checks_line(rep.checks).startswith("Correctness checks: 0 passed, 0 failed, 0 not measured, 7 reused")
    # the same results measured for this report: their checks pass
    rep = report_of(tmp_path, {"bench-queue": RAN}, {"bench-queue": queue_results()})
    rep.run_checks()
    rep.queues()
    assert [parts.verdict(ok, r) for _, ok, _, r in rep.checks] == ["pass"] * 7, rep.checks
    assert parts.check_counts(rep.checks)["passed"] == 7


def test_the_report_fails_the_queue_checks_on_unfinished_short_tasks(tmp_path):
    # 20 of 320 never started (over 5%): the p95 falls among them
    rep = report_of(tmp_path, {"bench-queue": RAN}, {"bench-queue": queue_results(unfinished=20)})
    rep.queues()
    verdicts = {check: ok for check, ok, _, _ in rep.checks}
    assert verdicts["queues: every short task of c-separate-queues started"] is False, verdicts
    assert verdicts["queues: short tasks wait < 50 ms p95 with separate queues"] is False, verdicts
    assert verdicts["queues: every short task of a-defaults started"] is True, verdicts
    assert "| c-separate-queues | 5 | never | never | 300/320 (20 unfinished) |" in rep.md, rep.md
    # 10 of 320 (3%): the p95 is a measured wait, but the layout's "every short task started" fails
    rep = report_of(tmp_path, {"bench-queue": RAN}, {"bench-queue": queue_results(unfinished=10)})
    rep.queues()
    verdicts = {check: ok for check, ok, _, _ in rep.checks}
    assert verdicts["queues: short tasks wait < 50 ms p95 with separate queues"] is True, verdicts
    assert verdicts["queues: every short task of c-separate-queues started"] is False, verdicts


PATH_RUNS = [  # bench-flash's meta.purchase_paths.runs: a rush of 150 units per run
    {"path": "gate", "answers": {"202": 150, "409 sold_out": 6531, "409 limit_reached": 241}},
    {"path": "gate", "answers": {"202": 150, "409 sold_out": 6100, "409 limit_reached": 200}},
    {"path": "database", "answers": {"201": 150, "409 sold_out": 2300, "409 limit_reached": 60}},
]


def test_the_purchase_paths_row_says_it_measured_mostly_sold_out_rejections():
    parts = loadtests_module("report_parts")
    label = parts.purchase_label("purchase, gate path", PATH_RUNS)
    assert label == "purchase attempts, gate path: mostly sold-out rejections (2% accepted, 98% rejected)", label
    label = parts.purchase_label("purchase, database path", PATH_RUNS)
    assert label == "purchase attempts, database path: mostly sold-out rejections (6% accepted, 94% rejected)", label
    assert parts.purchase_label("purchase, gate path", []).startswith("purchase attempts, gate path (")
    assert parts.purchase_label("flash sold_out", PATH_RUNS) == "flash sold_out"  # the rejection rows say it already


def flash_results() -> dict:
    def runs(config: str, rps: float) -> dict:
        return {"runs": [{"config": config, "round": r, "requests": 1000, "failures": 0, "other_failures": 0,
                          "rps": rps, "p50": 10.0, "p95": 20.0, "p99": 30.0, "locust_cpu_warning": False,
                          "exit_code": 0, "raw": "x"} for r in (1, 2, 3)]}  # fmt: skip

    return {
        "measured": "2026-11-28 11:43 UTC",
        "configs": {name: runs(name, rps) for name, rps in (("home cached", 1500.0), ("purchase, gate path", 670.0))},
        "meta": {"purchase_paths": {"runs": PATH_RUNS},
                 "burst": {"attempts": 400, "buyers": 200, "stock": 180, "peak_accepted_per_s": 180,
                           "peak_written_per_s": 90, "peak_shaved": 2.0, "written_per_s_while_writing": 55.0}},
    }  # fmt: skip


def test_the_composite_row_of_the_purchase_path_and_the_burst_line_say_what_they_measured(tmp_path):
    rep = report_of(tmp_path, {"bench-flash": RAN}, {"bench-flash": flash_results()})
    rep.flash()
    row = "| flash: purchase attempts, gate path: mostly sold-out rejections (2% accepted, 98% rejected) | 670 |"
    assert any(line.startswith(row) for line in rep.headline), rep.headline
    burst = next(line for line in rep.md if line.startswith("Burst:"))
    assert "Peak shaved: 2.0x (the busiest 1-s bin accepted at the gate, 180/s" in burst, burst
