from __future__ import annotations

import os

from celery import shared_task


@shared_task(name="breakwater.health.echo")
def echo(value: str) -> dict:
    """Round-trip a value through the worker; proves the broker and a worker process work."""
    return {"value": value, "worker_pid": os.getpid()}
