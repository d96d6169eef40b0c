"""A small circuit breaker for Redis.

A refused or reset connection opens it at once: Redis is down, so cached views compute from the
database straight away for ``cooldown`` seconds instead of each paying a timeout. A timeout only
counts: ``threshold`` timeouts *in a row* open it, and every successful round trip (a hit, a read,
a lock, a store) resets the count. Under a traffic spike Redis can be slow for a moment between
thousands of fast answers, and sending every request to the database then would be exactly the
wrong reaction.

Shared by all threads of a process (gunicorn gthread): the count and the deadline change under a lock,
and a success takes the lock only when there is something to reset, so the hot path stays lock-free.
"""

from __future__ import annotations

import threading
import time


class CircuitBreaker:
    def __init__(self, cooldown: float = 5.0, threshold: int = 3):
        self.cooldown = cooldown
        self.threshold = threshold
        self._open_until = 0.0
        self._consecutive = 0
        self._lock = threading.Lock()

    def allow(self) -> bool:
        return time.monotonic() >= self._open_until

    @property
    def consecutive_failures(self) -> int:
        return self._consecutive

    def failure(self, hard: bool = True) -> None:
        with self._lock:
            self._consecutive += 1
            if hard or self._consecutive >= self.threshold:
                self._open_until = time.monotonic() + self.cooldown

    def success(self) -> None:
        if self._consecutive or self._open_until:
            with self._lock:
                self._consecutive = 0
                self._open_until = 0.0


def is_hard_failure(exc: BaseException) -> bool:
    """Connection refused/reset (Redis is down) rather than a slow answer."""
    import redis

    return isinstance(exc, redis.ConnectionError) and not isinstance(exc, redis.TimeoutError)
