"""A small circuit breaker for Redis.

A refused or reset connection opens it at once: Redis is down, so cached views compute from the
database straight away for ``cooldown`` seconds instead of each paying a timeout. A timeout only
counts: ``threshold`` in a row open it. Under a traffic spike Redis can be slow for a moment, and
sending every request to the database then would be exactly the wrong reaction.
"""

from __future__ import annotations

import time


class CircuitBreaker:
    def __init__(self, cooldown: float = 5.0, threshold: int = 3):
        self.cooldown = cooldown
        self.threshold = threshold
        self._open_until = 0.0
        self._consecutive = 0

    def allow(self) -> bool:
        return time.monotonic() >= self._open_until

    def failure(self, hard: bool = True) -> None:
        self._consecutive += 1
        if hard or self._consecutive >= self.threshold:
            self._open_until = time.monotonic() + self.cooldown

    def success(self) -> None:
        self._consecutive = 0
        self._open_until = 0.0


def is_hard_failure(exc: BaseException) -> bool:
    """Connection refused/reset (Redis is down) rather than a slow answer."""
    import redis

    return isinstance(exc, redis.ConnectionError) and not isinstance(exc, redis.TimeoutError)
