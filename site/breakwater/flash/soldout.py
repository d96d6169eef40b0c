"""Every web process learns within a second that a sale sold out, and rejects without calling Redis.

The gate publishes ``soldout <id>`` when it hands out the last unit and ``restock <id>`` when a unit
comes back (a failed order, an editor raising the stock). A thread per process listens; a flag also
expires after a few seconds by itself, so a missed message costs one Redis call, never a lost sale.

The same for buyers at their limit: a process that sees the gate accept a buyer's last allowed unit,
or answer ``limit_reached`` for a buyer with no unit left to claim, remembers (sale, buyer) for a
minute and answers that buyer's further attempts without the rate limiter and the gate script.
``unlimit <id> <user>`` (a failed order gave the buyer's claim back) and ``unlimit <id>`` (the gate
was loaded again: the limit may have changed, reconcile rebuilt the counts) forget it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time

from breakwater import redis_clients
from breakwater.background import PerProcessThread
from breakwater.flash.gate import EVENTS

log = logging.getLogger(__name__)
FLAG_SECONDS = 5.0
# A buyer at the limit stays there until a unit of theirs comes back, which the gate announces
# (``unlimit``); the expiry only bounds a missed message, and a lost subscription forgets them all.
LIMIT_SECONDS = 60.0
MAX_LIMITED = 100_000  # (sale, buyer) pairs remembered per process; past that, forget them all


class SoldOutFlags:
    def __init__(self, redis_url: str):
        # Its own connection: a subscriber waits on its socket far longer than the app's short timeouts.
        self.client = redis_clients.from_url(redis_url, socket_timeout=10, socket_connect_timeout=2)
        self._until: dict[int, float] = {}
        self._limited: dict[tuple[int, int], float] = {}
        self._lock = threading.Lock()
        self._thread = PerProcessThread("flash-soldout", self._run, before_start=self._forget_all)

    def _forget_all(self) -> None:
        with self._lock:
            self._until.clear()
            self._limited.clear()

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

    # ------------------------------------------------------------------ buyers at their limit
    def limit_reached(self, sale_id: int, user_id: int) -> bool:
        self._thread.ensure()
        until = self._limited.get((sale_id, user_id))
        return until is not None and time.monotonic() < until

    def mark_limit(self, sale_id: int, user_id: int) -> None:
        with self._lock:
            if len(self._limited) >= MAX_LIMITED:
                self._limited.clear()
            self._limited[(sale_id, user_id)] = time.monotonic() + LIMIT_SECONDS

    def clear_limit(self, sale_id: int, user_id: int | None = None) -> None:
        with self._lock:
            if user_id is not None:
                self._limited.pop((sale_id, user_id), None)
            else:
                for pair in [p for p in self._limited if p[0] == sale_id]:
                    del self._limited[pair]

    def _handle(self, data: str) -> None:
        kind, *ids = data.split()
        if not ids or not all(i.isdigit() for i in ids):
            return
        if kind == "soldout":
            self.mark(int(ids[0]))
        elif kind == "restock":
            self.clear(int(ids[0]))
        elif kind == "unlimit":
            self.clear_limit(int(ids[0]), int(ids[1]) if len(ids) > 1 else None)

    def _run(self) -> None:
        while True:
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(EVENTS)
                while True:
                    message = pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    self._handle(message["data"].decode())
            except Exception as exc:  # Redis gone: flags expire by themselves; listen again shortly
                log.debug("sold-out listener lost Redis: %s", exc)
                self._forget_all()
                time.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    pubsub.close()
