"""Prometheus metrics of the Celery workers: task outcomes and runtimes, tasks failed for good, the outbox's
backlog and the flash gate's drift from the database as the drift check measures it.

How Prometheus gets them: every program of the stack runs with the same ``PROMETHEUS_MULTIPROC_DIR`` (the
stack's supervisord passes it on, stack/lifecycle.py), so a worker process writes its samples there beside
gunicorn's, and the app's ``/metrics`` (observability/metrics.py) sums every process's files: the ``app`` job
carries the workers' series too (with several gunicorn instances each one reports the same worker series:
rules take ``max``, not ``sum``, across instances). Nothing here touches a database or Redis at scrape time:
the gauges are set where the work runs (the outbox relay, the drift check) and read from the files.

* ``breakwater_tasks_total{task, queue, outcome}``: every task run, outcome ``succeeded``, ``retried`` or
  ``failed`` (Celery's task_prerun/task_postrun signals; ``failed`` = raised after its last retry);
* ``breakwater_task_runtime_seconds{task, queue}``: how long each run took;
* ``breakwater_tasks_failed_for_good_total{task, queue}``: rows written to ``failed_tasks``
  (queues/failures.py: the last retry failed, or the poison-message cap);
* ``breakwater_outbox_backlog_rows``, ``breakwater_outbox_oldest_seconds``,
  ``breakwater_outbox_relay_timestamp_seconds``: what the outbox relay left behind after its last run;
* ``breakwater_flash_gate_drift{sale, kind}`` (kind ``stock``: the gate's stock minus the database's stock less
  the accepted but unwritten units; ``buyers``: buyers whose count in the gate is wrong) and
  ``breakwater_flash_drift_check_timestamp_seconds{sale}``: what the last ``breakwater.flash.drift_check`` (beat,
  every ``FLASH_DRIFT_CHECK_SECONDS``) measured, without repairing anything (flash.orders.measure_drift);
* ``breakwater_flash_reconcile_timestamp_seconds{sale}``: when a ``breakwater.flash.reconcile`` task last
  repaired the sale's gate.
"""

from __future__ import annotations

import logging
import threading
import time

from prometheus_client import Counter, Gauge, Histogram

log = logging.getLogger(__name__)

TASKS = Counter(
    "breakwater_tasks_total",
    "Celery task runs by outcome: succeeded, retried (raised, sent again), failed (raised after its last retry)",
    ["task", "queue", "outcome"],
)
RUNTIME = Histogram(
    "breakwater_task_runtime_seconds",
    "Time a Celery task run took (any outcome)",
    ["task", "queue"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
FAILED_FOR_GOOD = Counter(
    "breakwater_tasks_failed_for_good_total",
    "Tasks recorded in failed_tasks: their last retry failed, or their worker died on them too often",
    ["task", "queue"],
)
OUTBOX_BACKLOG = Gauge(
    "breakwater_outbox_backlog_rows",
    "Outbox rows not sent yet, counted by the relay after its last run",
    multiprocess_mode="mostrecent",
)
OUTBOX_OLDEST = Gauge(
    "breakwater_outbox_oldest_seconds",
    "Age of the oldest outbox row not sent yet (0 when none), measured by the relay after its last run",
    multiprocess_mode="mostrecent",
)
OUTBOX_CHECKED = Gauge(
    "breakwater_outbox_relay_timestamp_seconds",
    "When the outbox relay last measured the backlog (Unix time)",
    multiprocess_mode="max",
)
GATE_DRIFT = Gauge(
    "breakwater_flash_gate_drift",
    "How far the gate is from the database, as the last drift check of a sale measured it: kind=stock, the gate's "
    "stock minus the database's (less the accepted but unwritten units); kind=buyers, buyers whose count is wrong",
    ["sale", "kind"],
    multiprocess_mode="mostrecent",
)
DRIFT_CHECKED = Gauge(
    "breakwater_flash_drift_check_timestamp_seconds",
    "When the drift check last measured a sale (Unix time)",
    ["sale"],
    multiprocess_mode="max",
)
RECONCILED = Gauge(
    "breakwater_flash_reconcile_timestamp_seconds",
    "When a sale's gate was last reconciled by the task (Unix time)",
    ["sale"],
    multiprocess_mode="max",
)

RECONCILE_TASK = "breakwater.flash.reconcile"
DRIFT_TASK = "breakwater.flash.drift_check"
OUTCOMES = {"SUCCESS": "succeeded", "RETRY": "retried", "FAILURE": "failed"}

_started: dict[str, float] = {}
_lock = threading.Lock()
_connected = False


def _queue(task) -> str:
    info = getattr(task.request, "delivery_info", None) or {}
    if info.get("routing_key"):
        return info["routing_key"]
    from breakwater.queues.routing import queue_for

    return queue_for(task.name)


def _prerun(task_id=None, task=None, **_kw) -> None:
    if task_id:
        with _lock:
            _started[task_id] = time.perf_counter()


def _postrun(task_id=None, task=None, retval=None, state=None, **_kw) -> None:
    with _lock:
        started = _started.pop(task_id, None)
    if task is None:
        return
    try:
        queue = _queue(task)
        if started is not None:
            RUNTIME.labels(task.name, queue).observe(time.perf_counter() - started)
        TASKS.labels(task.name, queue, OUTCOMES.get(state or "", str(state or "unknown").lower())).inc()
        if task.name == RECONCILE_TASK and state == "SUCCESS" and isinstance(retval, dict):
            record_reconcile(retval)
        if task.name == DRIFT_TASK and state == "SUCCESS" and isinstance(retval, dict):
            record_drift(retval)
    except Exception:  # a metric never fails a task
        log.exception("task metrics: could not record %s[%s]", getattr(task, "name", "?"), task_id)


def _zero_series(sender=None, **_kw) -> None:
    """A worker starts every task's failure series at 0: Prometheus's increase() counts no first failure
    of a series that appears already at 1."""
    from breakwater.queues.routing import queue_for

    app = getattr(sender, "app", None)
    for name in list(getattr(app, "tasks", {}) or {}):
        if not name.startswith("celery."):
            FAILED_FOR_GOOD.labels(name, queue_for(name))
            TASKS.labels(name, queue_for(name), "failed")


def connect() -> None:
    """Listen to Celery's task signals (once per process; a worker's every pool process inherits it)."""
    global _connected
    if _connected:
        return
    from celery.signals import task_postrun, task_prerun, worker_ready

    task_prerun.connect(_prerun, weak=False)
    task_postrun.connect(_postrun, weak=False)
    worker_ready.connect(_zero_series, weak=False)
    _connected = True


def record_failed_for_good(task: str, queue: str) -> None:
    FAILED_FOR_GOOD.labels(task, queue).inc()


def record_outbox(rows: int, oldest_seconds: float | None) -> None:
    OUTBOX_BACKLOG.set(rows)
    OUTBOX_OLDEST.set(max(oldest_seconds or 0.0, 0.0))
    OUTBOX_CHECKED.set(time.time())


def record_reconcile(reports: dict) -> None:
    """``{sale_id: report}`` as flash.orders.reconcile returns it: when each sale's gate was repaired."""
    now = time.time()
    for sale_id in reports:
        RECONCILED.labels(str(sale_id)).set(now)


def record_drift(reports: dict) -> None:
    """``{sale_id: report}`` as flash.orders.measure_drift returns it: the gate's stock minus the one expected,
    and how many buyers' counts are off. A measurement that never found a moment without an order write between
    its two reads (``quiet`` false) is no measurement: the sale keeps its last one until the next check."""
    now = time.time()
    for sale_id, report in reports.items():
        if report.get("quiet") is False:
            continue
        GATE_DRIFT.labels(str(sale_id), "stock").set(int(report.get("stock_drift") or 0))
        GATE_DRIFT.labels(str(sale_id), "buyers").set(len(report.get("buyers_off") or {}))
        DRIFT_CHECKED.labels(str(sale_id)).set(now)
