"""Every web process learns within a second that a sale sold out, and rejects without calling Redis.

The gate publishes ``soldout <id>`` when it hands out the last unit and ``restock <id>`` when a unit
comes back (a failed order, an editor raising the stock). A thread per process listens; a flag also
expires after a few seconds by itself, so a missed message costs one Redis call, never a lost sale.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time

import redis

from breakwater.background import PerProcessThread
from breakwater.flash.gate import EVENTS

log = logging.getLogger(__name__)
FLAG_SECONDS = 5.0


class SoldOutFlags:
    def __init__(self, redis_url: str):
        # Its own connection: a subscriber waits on its socket far longer than the app's short timeouts.
        self.client = redis.Redis.from_url(redis_url, socket_timeout=10, socket_connect_timeout=2)
        self._until: dict[int, float] = {}
        self._lock = threading.Lock()
        self._thread = PerProcessThread("flash-soldout", self._run, before_start=self._until.clear)

    def is_sold_out(self, sale_id: int) -> bool:
        self._thread.ensure()
        until = self._until.get(sale_id)
        return until is not None and time.monotonic() < until

    def mark(self, sale_id: int) -> None:
        with self._lock:
            self._until[sale_id] = time.monotonic() + FLAG_SECONDS

    def clear(self, sale_id: int) -> None:
        with self._lock:
            self._until.pop(sale_id, None)

    def _run(self) -> None:
        while True:
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(EVENTS)
                while True:
                    message = pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    kind, _, sale = message["data"].decode().partition(" ")
                    if sale.isdigit():
                        (self.mark if kind == "soldout" else self.clear)(int(sale))
            except Exception as exc:  # Redis gone: flags expire by themselves; listen again shortly
                log.debug("sold-out listener lost Redis: %s", exc)
                with self._lock:
                    self._until.clear()
                time.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    pubsub.close()
