"""Prometheus metrics; multi-process aware under gunicorn (PROMETHEUS_MULTIPROC_DIR)."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from flask import Flask, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

REQUESTS = Counter("breakwater_http_requests_total", "HTTP requests handled", ["method", "endpoint", "status"])
LATENCY = Histogram(
    "breakwater_http_request_duration_seconds",
    "Time spent handling a request",
    ["method", "endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


def init_metrics(app: Flask) -> None:
    @app.before_request
    def _start():
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _record(response):
        started = g.get("metrics_started")
        if started is not None:
            endpoint = request.endpoint or "unmatched"
            LATENCY.labels(request.method, endpoint).observe(time.perf_counter() - started)
            REQUESTS.labels(request.method, endpoint, str(response.status_code)).inc()
        return response


def forget_dead_processes(path: str) -> list[int]:
    """Drop the ``live*`` gauge files of processes that are gone, whatever ended them: gunicorn marks its workers
    dead itself (gunicorn_conf.child_exit), but a Celery pool process, a killed worker or a command run by hand
    exits without a word, and its last view (a replica out of rotation, a lag) would count for ever. The folder
    is one host's: every pid in it is a process of this machine."""
    dead = []
    for f in Path(path).glob("gauge_live*_*.db"):
        try:
            pid = int(f.stem.rsplit("_", 1)[1])
        except ValueError:
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            dead.append(pid)
        except PermissionError:  # alive, someone else's
            continue
    for pid in set(dead):
        with contextlib.suppress(OSError):
            multiprocess.mark_process_dead(pid, path)
    return sorted(set(dead))


def render_metrics() -> tuple[bytes, str]:
    if path := os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        forget_dead_processes(path)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
