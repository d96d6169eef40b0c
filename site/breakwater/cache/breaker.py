"""A small circuit breaker: after a Redis failure, skip Redis for ``cooldown`` seconds.

While open, cached views compute from the database straight away instead of each paying a
socket timeout. After the cooldown the next requests try Redis again; one more failure reopens it.
"""

from __future__ import annotations

import time


class CircuitBreaker:
    def __init__(self, cooldown: float = 5.0):
        self.cooldown = cooldown
        self._open_until = 0.0

    def allow(self) -> bool:
        return time.monotonic() >= self._open_until

    def failure(self) -> None:
        self._open_until = time.monotonic() + self.cooldown

    def success(self) -> None:
        self._open_until = 0.0

    @property
    def is_open(self) -> bool:
        return not self.allow()
