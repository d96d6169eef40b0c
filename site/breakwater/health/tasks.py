from __future__ import annotations

import json
import os
import time

from celery import shared_task

from breakwater import extensions
from breakwater.queues.errors import TransientError


@shared_task(name="breakwater.health.echo", ignore_result=False)
def echo(value: str) -> dict:
    """Round-trip a value through the worker; proves the broker and a worker process work."""
    return {"value": value, "worker_pid": os.getpid()}


@shared_task(name="breakwater.health.probe", bind=True)
def probe(
    self, key: str, seconds: float = 0.0, fail_times: int = 0, permanent: bool = False, sent_at: float = 0.0
) -> None:
    """A diagnostic task with an idempotent effect, for operators and the reliability tests.

    Records each start (time, pid, retry number, queue wait since ``sent_at``) under ``bw:probe:<key>:*``
    in the broker Redis, fails transiently ``fail_times`` times or permanently, sleeps ``seconds``,
    then marks the key done once (``done`` is set only by the first completion; ``completions`` counts all).
    """
    client = extensions.broker()
    prefix = f"bw:probe:{key}:"
    now = time.time()
    start = {"at": now, "pid": os.getpid(), "retries": self.request.retries, "wait": now - sent_at if sent_at else None}
    client.pipeline().rpush(prefix + "starts", json.dumps(start)).expire(prefix + "starts", 3600).execute()
    if permanent:
        raise ValueError(f"probe {key}: permanent failure")
    if fail_times and client.incr(prefix + "failures") <= fail_times:
        raise TransientError(f"probe {key}: transient failure")
    time.sleep(seconds)
    pipe = client.pipeline()
    pipe.set(prefix + "done", os.getpid(), nx=True, ex=3600).incr(prefix + "completions").expire(
        prefix + "completions", 3600
    )
    pipe.execute()
