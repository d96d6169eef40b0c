"""The gevent workers (`purge`, `notify`) keep taking tasks: their loop never reads the broker's confirm
of an event a greenlet is waiting for (breakwater/queues/green.py), and a flood of purges drains
through the stack's real `purge` worker with task events on, as Flower turns them on."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import requests

from routing_helpers import metric_value, wait_for

PROBE = Path(__file__).with_name("green_drain_probe.py")


def test_the_green_loop_never_takes_the_confirm_an_event_publisher_waits_for(stack):
    env = stack.settings.child_env()
    try:
        proc = subprocess.run([sys.executable, str(PROBE), "20"], env=env, capture_output=True, text=True, timeout=90)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"the probe hung: {exc.stdout!r} {exc.stderr!r}") from None
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "20 publishes confirmed" in proc.stdout


def test_a_purge_flood_drains_through_the_gevent_worker(app, stack, origin):
    celery = app.extensions["celery"]
    worker = f"purge-{stack.settings.int('APP_PORT')}@{os.uname().nodename}"
    celery.control.enable_events(destination=[worker])  # what Flower does every few seconds
    # /metrics from 127.0.0.1, the operator's network
    metrics = requests.get(f"{origin}/metrics", timeout=10).text
    ok_before = metric_value(metrics, "breakwater_edge_purge_total", result="ok")
    tag, n = uuid.uuid4().hex[:8], 200
    for i in range(n):  # one URL and one key each: two PURGE requests per task at the one edge
        celery.send_task("breakwater.pages.purge", args=[[f"/flood/{tag}/{i}"], [f"flood-{tag}-{i}"]], queue="purge")

    def purged() -> float:
        body = requests.get(f"{origin}/metrics", timeout=10).text
        return metric_value(body, "breakwater_edge_purge_total", result="ok") - ok_before

    wait_for(lambda: purged() >= 2 * n, timeout=90, interval=1.0, what=f"{n} purge tasks to drain")
    assert celery.control.ping(destination=[worker], timeout=2.0), "the purge worker stopped answering"
