"""Celery wired through the app factory: tasks run inside the Flask app context.

Every task inherits the reliability defaults of the shared design notes from :class:`FlaskTask`:
late acks with prefetch 1 (a crash means redelivery, so tasks are idempotent), re-queue when the
worker process dies, capped at ``BREAKWATER_TASK_MAX_DELIVERIES`` deliveries of one attempt (a
poison message must not loop forever), automatic retries of transient errors with exponential
backoff and jitter, a time limit, and a record in ``failed_tasks`` when a task finally fails.

Broker: the stack's RabbitMQ by default (durable queues, persistent messages, publisher confirms:
a ``delay()`` that returned means the broker has the message), or Redis (``BREAKWATER_BROKER_URL``).
Results, where a caller asks for one, go to the broker Redis with an expiry; the rest are ignored.
"""

from __future__ import annotations

import logging

from celery import Celery, Task
from flask import Flask
from kombu import Exchange, Queue

from breakwater import extensions
from breakwater.queues.errors import transient_errors
from breakwater.queues.routing import QUEUES, queue_for
from breakwater.settings import Settings

log = logging.getLogger(__name__)


def _route(name: str, args, kwargs, options, task=None, **kw) -> dict:
    return {"queue": queue_for(name)}


def celery_init_app(app: Flask, settings: Settings) -> Celery:
    max_deliveries = settings.int("TASK_MAX_DELIVERIES")
    time_limit = settings.int("TASK_TIME_LIMIT")

    class FlaskTask(Task):
        acks_late = True
        reject_on_worker_lost = True
        autoretry_for = transient_errors()
        retry_backoff = 1
        retry_backoff_max = 60
        retry_jitter = True
        max_retries = settings.int("TASK_MAX_RETRIES")
        time_limit = settings.int("TASK_TIME_LIMIT")
        soft_time_limit = int(time_limit * 0.9)

        def __call__(self, *args: object, **kwargs: object) -> object:
            from breakwater.database import causal

            # Each task starts with fresh consistency state; a task may pass a causal token in.
            token = causal.current.set(causal.Causality())
            try:
                with app.app_context():
                    if not self._delivery_allowed(args, kwargs):
                        return None
                    return self.run(*args, **kwargs)
            finally:
                causal.current.reset(token)

        def _delivery_allowed(self, args, kwargs) -> bool:
            """Count deliveries of this attempt (id + retry number) in the broker Redis; past the cap the
            message is recorded as failed and acknowledged instead of killing yet another worker."""
            req = self.request
            if req.called_directly or not req.id or not req.delivery_info:
                return True
            key = f"bw:task:deliveries:{req.id}:{req.retries}"
            try:
                client = extensions.broker(app)
                count = client.incr(key)
                client.expire(key, 86400)
            except Exception:
                return True  # fail open: without Redis the task runs (at least once)
            if count <= max_deliveries:
                return True
            from breakwater.queues import failures

            failures.record(
                req.id, self.name, list(args), dict(kwargs),
                f"delivered {count} times, its worker died each time (poison message?)", req.retries + 1,
                (req.delivery_info or {}).get("routing_key", ""),
            )  # fmt: skip
            return False

        def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
            from breakwater.queues import failures

            with app.app_context():
                failures.record(
                    task_id, self.name, list(args or ()), dict(kwargs or {}), f"{type(exc).__name__}: {exc}",
                    self.request.retries + 1, (self.request.delivery_info or {}).get("routing_key", ""),
                )  # fmt: skip

    from breakwater.redis_clients import celery_backend

    # Through the Sentinels when there are any
    broker, broker_sentinel = celery_backend(settings.broker_url, timeout=2.0)
    amqp = broker.startswith(("amqp://", "pyamqp://"))
    if amqp:
        transport = {"confirm_publish": True, "connect_timeout": 4}
    else:
        # Redis redelivers an unacknowledged message only after the visibility timeout: longer than any task.
        transport = {"visibility_timeout": 3600, "socket_timeout": 5, "socket_connect_timeout": 2, **broker_sentinel}
    results, results_sentinel = celery_backend(settings.redis_url, timeout=2.0)
    celery = Celery(app.name, task_cls=FlaskTask)
    celery.conf.update(
        broker_url=broker,
        result_backend=results,
        result_backend_transport_options=results_sentinel,
        result_expires=3600,
        redis_socket_timeout=5.0,  # the result backend's waits are bounded too (Celery's default: 120 s)
        redis_socket_connect_timeout=2.0,
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        broker_transport_options=transport,
        task_queues=[Queue(q, Exchange(q, type="direct", durable=True), routing_key=q, durable=True) for q in QUEUES],
        task_default_queue="default",
        task_default_exchange="default",
        task_default_routing_key="default",
        task_routes=(_route,),
        task_default_delivery_mode="persistent",
        task_publish_retry=True,
        task_publish_retry_policy={"max_retries": 3, "interval_start": 0, "interval_step": 0.5, "interval_max": 1},
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_time_limit=time_limit,
        task_soft_time_limit=int(time_limit * 0.9),
        worker_prefetch_multiplier=1,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_soft_shutdown_timeout=settings.float("WORKER_SHUTDOWN_TIMEOUT"),
        worker_enable_soft_shutdown_on_idle=not amqp,  # Redis: re-queue held ETA tasks on shutdown too
        worker_hijack_root_logger=False,
        beat_schedule={
            "outbox-relay": {
                "task": "breakwater.outbox.relay",
                "schedule": settings.float("OUTBOX_RELAY_INTERVAL"),
                "options": {"expires": max(settings.float("OUTBOX_RELAY_INTERVAL"), 1.0)},
            },
            # Measures the flash gate against the database, repairs nothing: safe during a sale (the repairing
            # reconcile is not, it may overwrite the stock while purchases arrive). In `default`, not `orders`:
            # a sale's backlog there would hold it back.
            "flash-drift-check": {
                "task": "breakwater.flash.drift_check",
                "schedule": settings.float("FLASH_DRIFT_CHECK_SECONDS"),
                "options": {"expires": max(settings.float("FLASH_DRIFT_CHECK_SECONDS"), 1.0)},
            },
        },
        timezone="UTC",
    )
    from breakwater.queues.green import GuardEventDrain

    celery.steps["consumer"].add(GuardEventDrain)  # gevent workers: see breakwater/queues/green.py
    from breakwater.queues import metrics as task_metrics

    task_metrics.connect()  # task outcomes and runtimes, into the multiprocess directory /metrics reads
    celery.set_default()
    app.extensions["celery"] = celery
    return celery
