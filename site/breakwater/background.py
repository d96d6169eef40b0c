"""Background threads that must run once in every process, including processes forked later.

gunicorn and Celery fork after the app is built, and a fork keeps no threads, so each user of this
starts its thread lazily on first use in the current process.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable


class PerProcessThread:
    def __init__(self, name: str, target: Callable[[], None], before_start: Callable[[], None] | None = None):
        self.name = name
        self.target = target
        self.before_start = before_start
        self._pid: int | None = None
        self._lock = threading.Lock()

    def ensure(self) -> None:
        """Start the thread unless this process already has it (``before_start`` runs first, once)."""
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            if self.before_start is not None:
                self.before_start()
            threading.Thread(target=self.target, name=self.name, daemon=True).start()

    def forget(self) -> None:
        """Allow :meth:`ensure` to start a new thread in this process (after a stop)."""
        self._pid = None
