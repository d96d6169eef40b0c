"""How many messages wait in each queue and how many consumers take from it (`make status`)."""

from __future__ import annotations

import contextlib

from breakwater.queues.routing import QUEUES
from breakwater.settings import Settings


def queue_depths(settings: Settings, timeout: float = 2.0) -> list[dict]:
    import kombu

    url = settings.broker_url
    rows = []
    with kombu.Connection(url, connect_timeout=timeout) as conn:
        conn.ensure_connection(max_retries=1)
        if url.startswith(("amqp://", "pyamqp://")):
            for name in QUEUES:
                channel = conn.channel()
                try:
                    ok = channel.queue_declare(name, passive=True)
                    rows.append({"queue": name, "messages": ok.message_count, "consumers": ok.consumer_count})
                except Exception:  # not declared yet: no worker has started on it
                    rows.append({"queue": name, "messages": 0, "consumers": 0})
                finally:
                    with contextlib.suppress(Exception):
                        channel.close()
        else:
            client = conn.default_channel.client
            consumers = _consumers(settings, timeout)
            for name in QUEUES:
                waiting = sum(client.llen(key) for key in (name, *(f"{name}\x06\x16{p}" for p in (3, 6, 9))))
                rows.append({"queue": name, "messages": waiting, "consumers": consumers.get(name, 0)})
    return rows


def _consumers(settings: Settings, timeout: float) -> dict[str, int]:
    """Redis has no consumer count: ask the workers which queues they take from."""
    from celery import Celery

    app = Celery(broker=settings.broker_url)
    try:
        replies = app.control.inspect(timeout=min(timeout, 1.0)).active_queues() or {}
    except Exception:
        return {}
    finally:
        app.close()
    counts: dict[str, int] = {}
    for queues in replies.values():
        for q in queues:
            counts[q["name"]] = counts.get(q["name"], 0) + 1
    return counts
