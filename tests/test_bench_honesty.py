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
        sys.path.insert(0, str(LOADTESTS))
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
