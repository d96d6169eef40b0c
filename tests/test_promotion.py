"""The primary killed under a steady write load: `breakwater db promote` makes a replica the primary,
the running site follows without a restart, every acknowledged write survives, the old primary comes
back fenced, rejoins with one command, and a planned switchover puts the shared stack back."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from contextlib import closing
from pathlib import Path

import pytest
import requests

from breakwater_tools.stack.mariadb import admin
from fault_recorder import FaultRecorder
from routing_helpers import wait_for
from visitors import visitor

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent / "breakwater"
#: reads of the site during the fault: the replicas answer them, whatever happens to the primary
READS = ("/api/home", "/api/regions", "/api/articles?page=1")


def _cli(stack, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN), *args], env=stack.env, capture_output=True, text=True, timeout=120)


class Writers(threading.Thread):
    """Registers users back to back, each a new visitor from an address of its own (REGISTER_RATE allows an
    address ten accounts an hour); remembers which registrations were acknowledged (201)."""

    def __init__(self, origin: str):
        super().__init__(daemon=True)
        self.origin, self.stop = origin, threading.Event()
        self.acked: list[str] = []
        self.statuses: list[tuple[float, int]] = []
        self.errors: list[str] = []  # what was raised when no status came back (status 0)

    def run(self) -> None:
        while not self.stop.is_set():
            name = "w" + uuid.uuid4().hex[:12]
            try:
                with visitor() as http:
                    status = http.post(
                        f"{self.origin}/api/auth/register", json={"name": name, "password": "long enough"}, timeout=10
                    ).status_code
            except requests.RequestException as exc:
                status = 0
                self.errors.append(type(exc).__name__)
            self.statuses.append((time.monotonic(), status))
            if status == 201:
                self.acked.append(name)
            elif status:
                time.sleep(0.05)


def _names_on(node, names: list[str], database: str) -> set[str]:
    with closing(admin(node)) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT name FROM `{database}`.users WHERE name IN %s", (names,))
        return {row[0] for row in cur.fetchall()}


def _read_only(node) -> int:
    with closing(admin(node)) as conn, conn.cursor() as cur:
        cur.execute("SELECT @@read_only")
        return cur.fetchone()[0]


def test_primary_killed_promote_rejoin_and_switch_back(stack, origin, settings):
    layout = stack.layout
    old = layout.primary
    assert old.name == "mariadb-primary"
    writers = [Writers(origin) for _ in range(3)]
    for w in writers:
        w.start()
    reads = FaultRecorder(origin, READS).start()
    behind = layout.replicas[1]
    watcher = None
    try:
        wait_for(lambda: sum(len(w.acked) for w in writers) >= 10, timeout=30, what="writes before the kill")
        reads.wait_rows("before", 10)
        with closing(admin(behind)) as conn, conn.cursor() as cur:
            cur.execute("STOP SLAVE IO_THREAD")  # it stops receiving: promoting it would lose commits
        wait_for(lambda: sum(len(w.acked) for w in writers) >= 20, timeout=30, what="writes it did not receive")
        # Automatic failover (BREAKWATER_DB_FAILOVER_AFTER; the stack's own watcher is off here). 8 s: the refused
        # promotion below must be over before the watcher acts, even on a slow machine.
        watcher = subprocess.Popen(
            [str(BIN), "db", "watch", "--failover-after", "8"], env=stack.env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        lines: list[str] = []
        threading.Thread(target=lambda: lines.extend(watcher.stdout), daemon=True).start()
        wait_for(lambda: any("armed" in line for line in lines), timeout=30, what="the watcher to see the primary")
        # The host dies: mariadbd is frozen, then killed outright, and its supervisor does not restart it.
        stack.supervisor.take_down(old.name)
        killed_at = reads.mark("fault")
        time.sleep(1.0)
        refused = _cli(stack, "db", "promote", "--to", behind.name)
        assert refused.returncode == 1 and "would lose acknowledged commits" in refused.stderr, refused.stderr
        assert layout.primary.name == "mariadb-primary", "a refused promotion changes nothing"
        try:
            if not _within(30, lambda: layout.primary.name != "mariadb-primary"):
                raise AssertionError("no automatic promotion within 30 s; the watcher said:\n" + "".join(lines))
            # The topology names the new primary before the watcher has pointed the other replica at it:
            # let it finish (on a busy machine that takes seconds) before stopping it.
            _within(30, lambda: any("automatic failover done" in line for line in lines))
        finally:
            watcher.terminate()
            watcher.wait(timeout=10)
        log = "".join(lines)
        assert "automatic failover done: mariadb-replica1 is the primary" in log, log  # replica2 received less
        new = layout.primary  # the layout reads the topology the promotion recorded
        assert new.name == "mariadb-replica1" and _read_only(new) == 0

        def resumed() -> bool:
            return any(s == 201 and t > killed_at + 1 for w in writers for t, s in w.statuses)

        wait_for(resumed, timeout=20, what="writes to succeed through the running site after the promotion")
        reads.mark("recovered")
        time.sleep(1.0)
        reads.wait_rows("after", 10)
    finally:
        reads.stop()
        if watcher is not None and watcher.poll() is None:
            watcher.kill()
        for w in writers:
            w.stop.set()
        for w in writers:
            w.join(timeout=15)
        stack.supervisor.bring_back(old.name, wait=False)  # the old primary, with its re-rendered my.cnf
    reads.assert_all_served(max_seconds=3)
    acked = [name for w in writers for name in w.acked]
    statuses = [s for w in writers for _t, s in w.statuses]
    errors = [e for w in writers for e in w.errors]
    # A write fails clearly (503), or succeeds; it always gets an answer.
    assert not [s for s in statuses if s == 0 or (s >= 500 and s != 503)], (Counter(statuses), Counter(errors))
    assert set(acked) <= _names_on(new, acked, settings["DB_NAME"]), "an acknowledged write was lost"

    # The old primary comes back fenced: read-only, not a second primary.
    wait_for(lambda: _alive(old), timeout=60, what="the old primary to restart")
    assert _read_only(old) == 1
    fenced = _cli(stack, "db", "topology", "--json")
    assert fenced.returncode == 0, fenced.stderr

    rejoined = _cli(stack, "db", "rejoin", "primary")
    assert rejoined.returncode == 0, rejoined.stderr
    wait_for(lambda: set(acked) <= _names_on(old, acked, settings["DB_NAME"]), timeout=30, what="rejoin catch-up")

    # A planned switchover puts the shared stack back as it was.
    back = _cli(stack, "db", "promote", "--to", "primary")
    assert back.returncode == 0, back.stderr
    assert layout.primary.name == "mariadb-primary" and _read_only(old) == 0 and _read_only(new) == 1

    def write_ok() -> bool:
        name = "b" + uuid.uuid4().hex[:12]
        with visitor() as http:  # a new visitor each time
            return http.post(f"{origin}/api/auth/register", json={"name": name, "password": "long enough"}).ok

    def every_process_back() -> bool:  # writes on the primary, both replicas in rotation, in every web process
        return all(write_ok() for _ in range(6)) and all(
            requests.get(f"{origin}/healthz", timeout=5).json()["status"] == "ok" for _ in range(8)
        )

    wait_for(every_process_back, timeout=60, what="writes and both replicas back in every web process")


def _within(seconds: float, predicate) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def _alive(node) -> bool:
    try:
        _read_only(node)
        return True
    except Exception:
        return False
