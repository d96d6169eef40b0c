"""Run by tests/test_green_worker.py in a process of its own (gevent patches everything, as `celery -P gevent` does).

Replays, against the real broker, the interleaving that froze the `purge` and `notify` workers: a
greenlet publishes an event with publisher confirms and waits for the ack; the ack reaches the socket
while that greenlet is not running; Celery's green loop then drains the event connection, as it does
after every message. Exit 0 when every publisher got its ack, 3 when one waited in vain.
"""

from gevent import monkey

monkey.patch_all()

import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
from celery.worker.loops import _quick_drain  # noqa: E402

from breakwater.app import create_app  # noqa: E402
from breakwater.queues.green import GuardEventDrain  # noqa: E402


class _Pool:
    is_green = True


class _Consumer:
    """The two attributes of Celery's consumer the step reads."""

    def __init__(self, dispatcher):
        self.pool = _Pool()
        self.event_dispatcher = dispatcher


def main(rounds: int) -> int:
    celery = create_app().extensions["celery"]
    assert GuardEventDrain in celery.steps["consumer"], "the worker would run without the guard"
    # As Celery's Events step builds it: a connection of its own, with the app's transport options (confirms).
    connection = celery.connection_for_write()
    connection.ensure_connection(max_retries=3)
    dispatcher = celery.events.Dispatcher(connection, hostname="green-drain-probe@test", enabled=True)
    GuardEventDrain(parent=None).start(_Consumer(dispatcher))
    try:
        dispatcher.send("worker-heartbeat")  # opens the channel and puts it in confirm mode
        for n in range(rounds):
            publisher = gevent.spawn(dispatcher.send, "worker-heartbeat")
            gevent.sleep(0)  # the publisher sends and waits for its ack in the hub
            busy_until = time.monotonic() + 0.05
            while time.monotonic() < busy_until:  # a busy process: the ack arrives, nobody runs the publisher
                pass
            _quick_drain(dispatcher.connection)  # what celery.worker.loops.synloop does after each message
            publisher.join(timeout=3)
            if not publisher.dead:
                print(f"round {n}: the publisher still waits for its ack (the drain took it)", flush=True)
                os._exit(3)  # no clean close: the stuck publisher still owns the socket
            publisher.get()  # re-raises a failed publish
        print(f"{rounds} publishes confirmed", flush=True)
        return 0
    finally:
        connection.release()


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20))
