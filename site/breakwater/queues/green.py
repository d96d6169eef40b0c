"""Keep a gevent worker's consumer from stealing the broker's confirms of its own events.

Why: with ``confirm_publish`` (see :mod:`breakwater.tasks`) every publish on the worker's event
connection (``worker-heartbeat`` every 2 s, ``task-received/started/succeeded`` once Flower enables
task events) waits for the broker's ``basic.ack`` while holding the event dispatcher's mutex, reading
that connection itself. Celery's loop for green pools (``celery.worker.loops.synloop``) also drains
the same connection after every message, "so broker heartbeats are consumed", without that mutex.
When the ack lands in the socket while the publishing greenlet has been woken but not yet run (a busy
process, i.e. under load), the consumer's drain reads the ack first. The publisher then waits for a
frame that never comes (only heartbeat frames follow, and those do not end its wait) and keeps the
mutex forever; the next ``task-received`` blocks the consumer itself: the last log line is a task
"received", the task socket fills up unread, the hub sits idle, and a warm shutdown hangs on its
``worker-offline`` event. The edge is then never purged, and no mail goes out.

The fix: that drain takes the dispatcher's mutex without waiting, and skips when a publisher holds it
(the publisher is reading the connection then, and consumes the heartbeats itself); holding it, it reads
only what has already arrived (Celery's drain waits up to 0.1 s for more). Installed as a
consumer bootstep, so it wraps each new event connection after a reconnect too; prefork workers
(an event loop, no greenlets) are left alone.
"""

from __future__ import annotations

from celery import bootsteps

__all__ = ["GuardEventDrain", "guard_event_drain"]


def guard_event_drain(dispatcher) -> None:
    """Make ``dispatcher.connection.drain_events`` a no-op while a publish on it is in flight."""
    connection = getattr(dispatcher, "connection", None)
    if connection is None or getattr(connection, "_bw_guarded", False):
        return
    drain = connection.drain_events
    mutex = dispatcher.mutex

    def drain_events(**_kwargs):
        if not mutex.acquire(blocking=False):
            return None  # a publisher is waiting for its ack on this connection: leave the reading to it
        try:
            # Read what is there, never wait for more while holding the lock: the loop would hold it
            # again for the next message before a publisher waiting for it ever ran (starving task events).
            return drain(timeout=0)
        except TimeoutError:
            return None
        finally:
            mutex.release()

    connection.drain_events = drain_events
    connection._bw_guarded = True


class GuardEventDrain(bootsteps.StartStopStep):
    """Consumer step, after Celery's ``Events`` step has (re)built the event dispatcher."""

    requires = ("celery.worker.consumer.events:Events",)

    def start(self, c) -> None:
        if getattr(c.pool, "is_green", False) and c.event_dispatcher is not None:
            guard_event_drain(c.event_dispatcher)
