"""A per-process tier in front of Redis, kept correct by Redis itself (server-assisted invalidation).

A hit in Redis still costs a network round trip, which on a small machine is a third of a cached
request. So each process also keeps the values it has seen, together with the generations they were
computed under, and the current generation of each namespace. Redis tells us when a generation
moves: a tracker thread turns on ``CLIENT TRACKING ... BCAST PREFIX <prefix>g:`` with its
invalidation messages redirected to a connection subscribed to ``__redis__:invalidate``; every
bump, from any process, makes Redis push the key name and the tracker forgets that generation.

Rules that keep it correct:

* Only while the tracker is connected and subscribed; if it loses Redis everything local is dropped
  and requests use Redis (or the database) until it is back.
* A generation read from Redis is remembered only if no invalidation arrived while it was being read
  (an epoch counter), so a late message can never leave an old generation behind.
* A bump made by this process forgets its generations at once, without waiting for the message.
* ``seq`` is the highest bump sequence number whose invalidation this process has processed: each
  bump also writes a marker key named ``<prefix>g:~<seq>``, so the same ordered stream that carries
  the generation keys carries the number. A request whose publish has a higher number skips this
  tier (``Cache.get_or_compute``): read-your-writes across processes holds by construction, not
  because the tracker thread is usually fast. Visitors who never published keep the tier and its
  window of a few milliseconds.

Redis 6+ (CLIENT TRACKING with BCAST and REDIRECT). redis-py's own client-side cache needs Redis 7.4.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict

import redis

from breakwater import redis_clients
from breakwater.background import PerProcessThread

log = logging.getLogger(__name__)


class LocalTier:
    def __init__(self, redis_url: str, gen_prefix: str, seq_key: str | None = None, max_values: int = 2048):
        # RESP2 on purpose: the invalidations then arrive as ordinary pub/sub messages on the
        # subscribed connection (with RESP3 they are push frames the client library consumes itself).
        # A timeout and keepalive: a half-open connection must end tracking (and the tier) quickly.
        self.client = redis_clients.from_url(
            redis_url, protocol=2, socket_connect_timeout=1, socket_timeout=5, socket_keepalive=True,
            health_check_interval=0,
        )  # fmt: skip
        self.gen_prefix = gen_prefix
        self.seq_key = seq_key
        self.seq_marker = gen_prefix + "~"
        self.seq = 0
        self.max_values = max_values
        self.generations: dict[str, tuple[int, str]] = {}
        self.values: OrderedDict[str, tuple[list[int], float, bytes]] = OrderedDict()
        self.epoch = 0
        self.healthy = False
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread = PerProcessThread("cache-invalidation", self._run, before_start=self._drop)

    # ------------------------------------------------------------------ tracker thread
    def ensure_running(self) -> None:
        self._thread.ensure()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._track()
            except Exception as exc:  # Redis gone: forget everything local, retry shortly
                if self.healthy:
                    log.warning("cache invalidation stream lost (%s); local cache off until Redis returns", exc)
                self._drop()
            self._stop.wait(1.0)

    def _track(self) -> None:
        pool = self.client.connection_pool
        subscriber, control = pool.make_connection(), pool.make_connection()
        try:
            subscriber.connect()
            subscriber.send_command("CLIENT", "ID")
            subscriber_id = int(subscriber.read_response())
            subscriber.send_command("SUBSCRIBE", "__redis__:invalidate")
            subscriber.read_response()
            control.connect()
            control.send_command(
                "CLIENT", "TRACKING", "ON", "REDIRECT", subscriber_id, "BCAST", "PREFIX", self.gen_prefix
            )
            if control.read_response() not in (b"OK", "OK"):
                raise redis.RedisError("CLIENT TRACKING was refused")
            # Every bump up to this number ran before the clear below, so nothing remembered after
            # the clear can predate it; later bumps arrive as messages.
            current = 0
            if self.seq_key:
                control.send_command("GET", self.seq_key)
                current = int(control.read_response() or 0)
            self._clear(seq=current)  # anything remembered before tracking started cannot be trusted
            self.healthy = True
            log.info("local cache tier on (tracking %s*)", self.gen_prefix)
            last_ping = time.monotonic()
            while not self._stop.is_set():
                if subscriber.can_read(timeout=1.0):
                    message = subscriber.read_response()
                    if message and message[0] in (b"message", "message"):
                        self._invalidate(message[2])
                if time.monotonic() - last_ping > 5:
                    control.send_command("PING")  # tracking lives as long as this connection does
                    control.read_response()
                    subscriber.send_command("PING")  # answered as a ["pong", ""] message above
                    last_ping = time.monotonic()
        finally:
            self.healthy = False
            subscriber.disconnect()
            control.disconnect()

    def _invalidate(self, keys) -> None:
        with self._lock:
            self.epoch += 1
            if keys is None:  # Redis flushed or lost track: forget everything
                self.generations.clear()
                return
            seq = self.seq
            for key in keys:
                key = key.decode() if isinstance(key, bytes) else key
                if key.startswith(self.seq_marker):
                    seq = max(seq, int(key[len(self.seq_marker) :] or 0))
                else:
                    self.generations.pop(key[len(self.gen_prefix) :], None)
            self.seq = seq  # after the generations of the same message are gone

    def _drop(self) -> None:
        self.healthy = False
        self._clear()

    def _clear(self, seq: int | None = None) -> None:
        with self._lock:
            self.epoch += 1
            self.generations.clear()
            self.values.clear()
            if seq is not None:
                self.seq = seq

    # ------------------------------------------------------------------ lookups
    def get(self, key: str, deps: tuple[str, ...]) -> bytes | None:
        """The local value when it is current for every dependency and within its soft TTL."""
        if not self.healthy:
            return None
        entry = self.values.get(key)
        if entry is None:
            return None
        gens, soft_expiry, payload = entry
        for dep, gen in zip(deps, gens, strict=True):
            known = self.generations.get(dep)
            if known is None or known[0] != gen:
                return None
        if time.time() >= soft_expiry:
            return None
        return payload

    def remember(self, key: str, deps: tuple[str, ...], gens: list[int], tokens: list[str], epoch: int,
                 soft_expiry: float, payload: bytes) -> None:  # fmt: skip
        """Keep a value and the generations it was read with, unless an invalidation raced the read."""
        if not self.healthy:
            return
        with self._lock:
            if self.epoch != epoch:
                return
            for dep, gen, token in zip(deps, gens, tokens, strict=True):
                self.generations[dep] = (gen, token)
            self.values[key] = (gens, soft_expiry, payload)
            self.values.move_to_end(key)
            while len(self.values) > self.max_values:
                self.values.popitem(last=False)

    def forget(self, namespaces: tuple[str, ...]) -> None:
        with self._lock:
            self.epoch += 1
            for ns in namespaces:
                self.generations.pop(ns, None)
