"""The benchmark's own tiny Celery app (no Flask: workers start fast and measure only the queueing).

Configured from the environment by bench_queue.py: BENCH_BROKER, BENCH_REDIS (where timings go),
BENCH_PREFETCH, BENCH_ACKS_LATE, BENCH_VISIBILITY (Redis broker only).
"""

from __future__ import annotations

import os
import time
import urllib.request

import redis
from celery import Celery

BROKER = os.environ.get("BENCH_BROKER", "amqp://guest:guest@127.0.0.1:5672//")
# Up to 200 greenlets or threads write at once: a pool as large (redis-py's default is smaller).
store = redis.Redis.from_url(os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/0"), max_connections=1000)
app = Celery("queue_tasks", broker=BROKER)
app.conf.update(
    task_ignore_result=True,
    task_acks_late=os.environ.get("BENCH_ACKS_LATE", "1") == "1",
    task_reject_on_worker_lost=os.environ.get("BENCH_ACKS_LATE", "1") == "1",
    worker_prefetch_multiplier=int(os.environ.get("BENCH_PREFETCH", "1")),
    task_default_delivery_mode="persistent",
    broker_transport_options=(
        {"confirm_publish": True}
        if BROKER.startswith("amqp")
        else {"visibility_timeout": float(os.environ.get("BENCH_VISIBILITY", "3600"))}
    ),
    worker_hijack_root_logger=False,
    task_routes={"bench.long": {"queue": os.environ.get("BENCH_LONG_QUEUE", "celery")}},
)


@app.task(name="bench.short")
def short(run: str, sent_at: float) -> None:
    store.rpush(f"bench:{run}:wait", time.time() - sent_at)
    time.sleep(0.02)


@app.task(name="bench.long")
def long(run: str) -> None:
    time.sleep(5)


@app.task(name="bench.io")
def io(run: str, url: str) -> None:
    started = time.time()
    with urllib.request.urlopen(url, timeout=30) as resp:
        resp.read()
    store.pipeline().rpush(f"bench:{run}:start", started).rpush(f"bench:{run}:end", time.time()).execute()


@app.task(name="bench.noop")
def noop(run: str) -> None:
    store.rpush(f"bench:{run}:end", time.time())


@app.task(name="bench.slow")
def slow(run: str) -> None:
    store.rpush(f"bench:{run}:start", time.time())
    time.sleep(120)
