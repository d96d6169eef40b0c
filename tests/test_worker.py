"""The Celery worker the stack runs takes tasks from the Redis broker."""

from __future__ import annotations

import os
import uuid


def test_task_round_trips_through_the_real_worker(app):
    # Use this app's Celery explicitly: other tests create apps for other stacks in this process.
    celery = app.extensions["celery"]
    value = uuid.uuid4().hex
    result = celery.send_task("breakwater.health.echo", args=[value]).get(timeout=20)
    assert result["value"] == value
    assert result["worker_pid"] != os.getpid()
