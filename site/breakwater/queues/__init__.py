"""Background work that never blocks and never loses a task.

* ``routing``: one queue per kind of work (pages, purge, notify, orders, default) and the pool that
  serves it; every task's queue is decided there by name.
* ``tasks`` (breakwater.tasks): the Celery app; every task acks late, re-queues when its worker dies
  (at most ``TASK_MAX_DELIVERIES`` times per attempt), retries transient errors with backoff and jitter.
* ``outbox``: tasks to send after a commit are written in the commit; a relay under Celery beat
  sends what a dying process did not.
* ``failures``: tasks that finally failed, listed by ``breakwater tasks failed`` and sent again by
  ``breakwater tasks retry ID``.
* ``depth``: messages waiting and consumers per queue (``make status``).
"""
