"""A log handler that never makes its caller wait for the sink.

A process's log lines end in a pipe (supervisord, journald, a container runtime's log driver). When the
reader of that pipe stalls, the pipe fills (64 KiB on Linux), and a plain ``StreamHandler`` blocks every
thread that logs: with an access line per request, every request of the process hangs on the logging lock.

:class:`NonBlockingHandler` formats the record in the caller's thread (so the request id is the caller's),
appends the line to a bounded buffer and returns. A writer thread of its own writes the buffer to the
stream; only that thread ever waits on the sink. When the buffer is full the line is dropped and counted
(``breakwater_log_records_dropped_total``); once the writer gets through again it writes one warning line
saying how many were lost.

The writer is a real OS thread even in a gevent process (a greenlet blocked in ``write(2)`` would stop
the whole hub), and each process starts its own on first use, since a fork keeps no threads.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import sys
import time
from typing import TextIO

from prometheus_client import Counter

DROPPED = Counter(
    "breakwater_log_records_dropped_total",
    "Log records dropped because the log sink (stdout/stderr reader) was not keeping up",
)

#: Lines held while the sink stalls: a few seconds of a busy process, a few megabytes at most.
CAPACITY = 10_000


def _original(module: str, name: str):
    """``module.name`` as it was before gevent's monkey-patching (the plain attribute without gevent)."""
    if "gevent.monkey" in sys.modules:
        from gevent import monkey

        return monkey.get_original(module, name)
    return getattr(__import__(module), name)


class NonBlockingHandler(logging.Handler):
    def __init__(self, stream: TextIO | None = None, capacity: int = CAPACITY):
        super().__init__()
        self.stream = stream if stream is not None else sys.stderr
        self.capacity = capacity
        self.dropped = 0  # since the last warning line; counted in the caller, reported by the writer
        self._lines: collections.deque[str] = collections.deque()
        self._pid: int | None = None
        self._wake = None

    # ------------------------------------------------------------------ caller side
    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # a broken record must not break the caller
            self.handleError(record)
            return
        self._ensure_writer()
        if len(self._lines) >= self.capacity:
            self.dropped += 1
            DROPPED.inc()
            return
        self._lines.append(line)
        with contextlib.suppress(RuntimeError):  # already released: the writer has a wake-up pending
            self._wake.release()

    def _ensure_writer(self) -> None:
        pid = os.getpid()
        if self._pid == pid:
            return
        self.acquire()  # the handler's own lock, only here: two first lines at once start one writer
        try:
            if self._pid == pid:
                return
            self._lines = collections.deque()  # a forked child does not write its parent's lines
            self._wake = _original("_thread", "allocate_lock")()
            self._wake.acquire()
            _original("_thread", "start_new_thread")(self._write_forever, ())
            self._pid = pid
        finally:
            self.release()

    # ------------------------------------------------------------------ writer side
    def _write_forever(self) -> None:
        wake = self._wake
        while True:
            wake.acquire(timeout=1.0)
            self._write_pending()

    def _write_pending(self) -> None:
        while self._lines:
            line = self._lines.popleft()
            try:
                self.stream.write(line + "\n")
                if not self._lines:
                    self.stream.flush()
            except Exception:  # a closed stream: nothing to tell it to
                return
            if self.dropped and not self._lines:
                lost, self.dropped = self.dropped, 0
                record = logging.LogRecord(
                    "breakwater.logging", logging.WARNING, __file__, 0,
                    "the log sink stalled: %d log records were dropped", (lost,), None,
                )  # fmt: skip
                self._lines.append(self.format(record))

    def flush(self, timeout: float = 1.0) -> None:
        """Wait (at most ``timeout``) until the writer has written what is buffered: at exit, so a
        short-lived process's last lines are not lost, and never long enough to hang it."""
        if self._pid != os.getpid():
            return
        deadline = time.monotonic() + timeout
        while self._lines and time.monotonic() < deadline:
            time.sleep(0.01)
