"""Reads of the site recorded through a fault: every request (path, start, elapsed, status or the exception's
name), so that a fault test asserts all of them, not the ones a reader happened to survive.

    with FaultRecorder(origin, ["/api/home", "/api/articles?page=1"]) as reads:
        reads.wait_rows("before", 10)
        reads.mark("fault")
        ...  # the fault
        reads.mark("recovered")
        reads.wait_rows("after", 10)
    reads.assert_all_served(max_seconds=3)

A request belongs to the phase its start falls in: ``before`` the ``fault`` mark, ``during`` (between the marks)
or ``after`` the ``recovered`` mark. A reader never dies silently: whatever a request or the ``check`` raises is
a row, and so is a reader that ended on anything else or never finished.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import requests

PHASES = ("before", "during", "after")


@dataclass(frozen=True)
class Row:
    reader: int
    path: str
    start: float  # time.monotonic()
    elapsed: float  # seconds
    outcome: int | str  # the HTTP status, or the name of what was raised
    problem: str = ""  # what ``check`` found wrong with an answer

    def ok(self, max_seconds: float) -> bool:
        return self.outcome == 200 and not self.problem and self.elapsed < max_seconds


#: a path, or (path, extra request headers)
Target = str | tuple[str, dict[str, str]]


class FaultRecorder:
    """``readers`` threads, each with its own session, GET ``base + path`` for every target in turn until
    :meth:`stop`, ``pause`` seconds between rounds. ``check(response)`` may return a problem (a string) for an
    answer that is 200 but wrong (a torn page)."""

    def __init__(
        self,
        base: str,
        targets: Sequence[Target],
        readers: int = 2,
        timeout: float = 15.0,
        pause: float = 0.05,
        check: Callable[[requests.Response], str | None] | None = None,
    ):
        self.base, self.timeout, self.pause, self.check = base, timeout, pause, check
        self.targets = [(t, {}) if isinstance(t, str) else t for t in targets]
        self.rows: list[Row] = []
        self.marks: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._read, args=(i,), daemon=True) for i in range(readers)]

    # ------------------------------------------------------------------ running
    def __enter__(self) -> FaultRecorder:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> FaultRecorder:
        self.started = time.monotonic()
        for t in self._threads:
            t.start()
        return self

    def stop(self, join_timeout: float | None = None) -> None:
        self._stop.set()
        deadline = time.monotonic() + (join_timeout if join_timeout is not None else self.timeout + 15)
        for i, t in enumerate(self._threads):
            t.join(timeout=max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                self._add(Row(i, "(reader)", time.monotonic(), 0.0, "reader still running at stop"))

    def mark(self, name: str) -> float:
        """Record when the ``fault`` started or the site ``recovered`` (now)."""
        self.marks[name] = time.monotonic()
        return self.marks[name]

    def _add(self, row: Row) -> None:
        with self._lock:
            self.rows.append(row)

    def _read(self, reader: int) -> None:
        path = "(reader)"
        try:
            with requests.Session() as http:
                while not self._stop.is_set():
                    for path, headers in self.targets:
                        label = " ".join([path, *(f"[{k}: {v}]" for k, v in headers.items())])
                        self._get(http, reader, path, headers, label)
                    time.sleep(self.pause)
        except BaseException as exc:  # recorded: the assertion fails on it
            self._add(Row(reader, path, time.monotonic(), 0.0, f"reader died: {type(exc).__name__}: {exc}"))

    def _get(self, http: requests.Session, reader: int, path: str, headers: dict[str, str], label: str) -> None:
        start = time.monotonic()
        problem = ""
        try:
            resp = http.get(self.base + path, headers=headers, timeout=self.timeout)
            outcome: int | str = resp.status_code
            if self.check is not None and resp.status_code == 200:
                problem = self.check(resp) or ""
        except Exception as exc:  # every failure is a row
            outcome = type(exc).__name__
        self._add(Row(reader, label, start, time.monotonic() - start, outcome, problem))

    # ------------------------------------------------------------------ reading the record
    def phase(self, row: Row) -> str:
        if "fault" not in self.marks or row.start < self.marks["fault"]:
            return "before"
        if "recovered" not in self.marks or row.start < self.marks["recovered"]:
            return "during"
        return "after"

    def by_phase(self) -> dict[str, list[Row]]:
        with self._lock:
            rows = list(self.rows)
        out: dict[str, list[Row]] = {p: [] for p in PHASES}
        for row in rows:
            out[self.phase(row)].append(row)
        return out

    def wait_rows(self, phase: str, count: int, timeout: float = 30.0) -> None:
        """Wait until ``count`` requests of ``phase`` have finished (answered or failed)."""
        deadline = time.monotonic() + timeout
        while len(self.by_phase()[phase]) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {count} reads {phase}\n{self.report()}")
            time.sleep(0.05)

    def report(self, max_seconds: float = 3.0, limit: int = 40) -> str:
        """Counts per phase, then the rows that failed (not 200, a problem, or ``max_seconds`` or slower)."""
        phases = self.by_phase()
        origin = self.marks.get("fault", getattr(self, "started", 0.0))
        lines = [
            "phases: " + ", ".join(f"{name} at {t - origin:+.2f}s" for name, t in self.marks.items()),
            f"{'phase':<7} {'reads':>6} {'ok':>6} {'slowest':>8}  outcomes",
        ]
        for name, rows in phases.items():
            counts = Counter(r.outcome if not r.problem else f"{r.outcome} {r.problem}" for r in rows)
            slowest = max((r.elapsed for r in rows), default=0.0)
            ok = sum(r.ok(max_seconds) for r in rows)
            lines.append(f"{name:<7} {len(rows):>6} {ok:>6} {slowest:>7.2f}s  {dict(counts)}")
        failing = sorted((r for rows in phases.values() for r in rows if not r.ok(max_seconds)), key=lambda r: r.start)
        if failing:
            lines.append(f"failing rows (start relative to the fault; {min(limit, len(failing))} of {len(failing)}):")
            for r in failing[:limit]:
                detail = f" {r.problem}" if r.problem else ""
                lines.append(
                    f"  {r.start - origin:+8.2f}s {self.phase(r):<6} reader {r.reader} {r.path:<28} "
                    f"{r.elapsed:6.2f}s  {r.outcome}{detail}"
                )
        return "\n".join(lines)

    def assert_all_served(self, max_seconds: float = 3.0, phases: Sequence[str] = PHASES) -> None:
        """Every read answered 200 (and passed ``check``) in under ``max_seconds``, with reads in every phase."""
        by_phase = self.by_phase()
        missing = [p for p in phases if not by_phase[p]]
        failing = [r for rows in by_phase.values() for r in rows if not r.ok(max_seconds)]
        if missing or failing:
            what = []
            if failing:
                total = sum(len(rows) for rows in by_phase.values())
                what.append(f"{len(failing)} of {total} reads not served (200 in under {max_seconds} s)")
            if missing:
                what.append(f"no reads in phase {', '.join(missing)} (before the fault, during it, after recovery)")
            raise AssertionError("; ".join(what) + "\n" + self.report(max_seconds))
