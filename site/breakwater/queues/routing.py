"""Which queue each task goes to, and which pool serves each queue: the one place that says so.

A queue per kind of work, so a flood of one kind never waits in front of another (the queue-blocking
problem): CPU-bound renders in `pages` (prefork), I/O-bound HTTP and SMTP calls in `purge` and
`notify` (gevent: one process waits on many calls at once), database writes in `orders` (prefork,
few processes, so a sale's peak is shaved instead of flooding the primary), the rest in `default`.
"""

from __future__ import annotations

#: queue -> (pool, concurrency setting)
QUEUES: dict[str, tuple[str, str]] = {
    "pages": ("prefork", "WORKER_PAGES_CONCURRENCY"),
    "purge": ("gevent", "WORKER_PURGE_CONCURRENCY"),
    "notify": ("gevent", "WORKER_NOTIFY_CONCURRENCY"),
    "orders": ("prefork", "WORKER_ORDERS_CONCURRENCY"),
    "default": ("prefork", "WORKER_DEFAULT_CONCURRENCY"),
}

#: task name (or glob) -> queue; anything not listed goes to `default`
ROUTES: dict[str, str] = {
    "breakwater.pages.rebuild": "pages",
    "breakwater.pages.purge": "purge",
    "breakwater.notify.*": "notify",
    "breakwater.orders.*": "orders",
    "breakwater.flash.write_order": "orders",  # the flash sale's order writes (its reconcile stays in default)
}


def queue_for(task_name: str) -> str:
    from fnmatch import fnmatchcase

    for pattern, queue in ROUTES.items():
        if fnmatchcase(task_name, pattern):
            return queue
    return "default"
