"""The Celery worker the stack runs takes tasks from the Redis broker."""

from __future__ import annotations

import uuid


def test_task_round_trips_through_the_real_worker(app, stack):
    from breakwater.health.tasks import echo

    value = uuid.uuid4().hex
    result = echo.delay(value).get(timeout=20)
    assert result["value"] == value
    assert result["worker_pid"] != __import__("os").getpid()
