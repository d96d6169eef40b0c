"""Logging never makes a request wait: a stalled log reader costs log lines (counted), never latency."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

from breakwater.observability.log_sink import DROPPED, NonBlockingHandler
from breakwater.observability.logging import JsonFormatter


def test_a_full_pipe_drops_and_counts_lines_then_says_so_once_it_drains():
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    with contextlib.suppress(BlockingIOError):
        while True:  # fill the pipe first: its reader is stalled from the start
            os.write(write_end, b"filler\n" * 512)
    os.set_blocking(write_end, True)
    handler = NonBlockingHandler(os.fdopen(write_end, "w"), capacity=100)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("test-log-sink-" + uuid.uuid4().hex)
    log.propagate = False
    log.addHandler(handler)
    before = DROPPED._value.get()
    started = time.monotonic()
    for i in range(5_000):  # nobody reads the pipe: the handler holds 100 lines
        log.warning("line %d %s", i, "x" * 200)
    took = time.monotonic() - started
    assert took < 5, f"logging waited on the full pipe ({took:.1f} s for 5,000 lines)"
    assert handler.dropped > 4_000 and DROPPED._value.get() - before == handler.dropped

    lines: list[str] = []

    def read() -> None:
        lines.extend(line for line in os.fdopen(read_end) if line != "filler\n")

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any("were dropped" in line for line in lines):
        time.sleep(0.05)
    warnings = [line for line in lines if "were dropped" in line]
    assert len(warnings) == 1, lines[-3:]
    dropped = 5_000 - (len(lines) - 1)
    assert f"the log sink stalled: {dropped} log records were dropped" in warnings[0]
    assert '"level": "warning"' in warnings[0]
    kept = [line for line in lines if "were dropped" not in line]
    assert '"msg": "line 0 ' in kept[0], "the first lines are kept, the overflow is dropped"


def test_requests_are_answered_while_the_log_reader_is_frozen(stack, origin):
    """supervisord reads every program's stdout/stderr. Frozen, its pipes fill after a few hundred
    access lines; a request that logs must still be answered at once."""
    supervisord = stack.supervisor.pid
    tag = uuid.uuid4().hex[:8]
    rows: list[tuple[int, str | int, float]] = []

    def get(i: int) -> None:
        started = time.monotonic()
        try:
            status: str | int = requests.get(f"{origin}/api/articles?page=1&t={tag}-{i}", timeout=5).status_code
        except requests.RequestException as exc:
            status = type(exc).__name__
        rows.append((i, status, time.monotonic() - started))

    os.kill(supervisord, signal.SIGSTOP)
    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(get, range(1_000)))
    finally:
        os.kill(supervisord, signal.SIGCONT)
    bad = [row for row in rows if row[1] != 200 or row[2] >= 1.0]
    assert len(rows) == 1_000 and not bad, f"{len(bad)} of {len(rows)} slow or failed, first ones: {bad[:10]}"
