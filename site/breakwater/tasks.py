"""Celery wired through the app factory: tasks run inside the Flask app context.

Settings follow Celery's own advice for not losing work (see shared design notes):
late acks, prefetch 1, re-queue when a worker process dies, JSON only.
"""

from __future__ import annotations

from celery import Celery, Task
from flask import Flask

from breakwater.settings import Settings


def celery_init_app(app: Flask, settings: Settings) -> Celery:
    class FlaskTask(Task):
        def __call__(self, *args: object, **kwargs: object) -> object:
            from breakwater.database import causal

            # Each task starts with fresh consistency state; a task may pass a causal token in.
            token = causal.current.set(causal.Causality())
            try:
                with app.app_context():
                    return self.run(*args, **kwargs)
            finally:
                causal.current.reset(token)

    celery = Celery(app.name, task_cls=FlaskTask)
    celery.conf.update(
        broker_url=settings.redis_url,
        result_backend=settings.redis_url,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": 3600, "socket_timeout": 5, "socket_connect_timeout": 2},
        result_expires=3600,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_hijack_root_logger=False,
        task_default_queue="default",
        timezone="UTC",
    )
    celery.set_default()
    app.extensions["celery"] = celery
    return celery
