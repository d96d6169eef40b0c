"""The environment of a private test stack: free ports, a temporary state dir, small worker pools."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from breakwater_tools.stack.ports import free_ports

PORT_KEYS = (
    "PRIMARY_PORT", "REDIS_PORT", "REDIS_CACHE_PORT", "APP_PORT", "ORIGIN_PORT", "EDGE_PORT",
    "RABBITMQ_PORT", "RABBITMQ_DIST_PORT", "SMTP_PORT", "FLOWER_PORT",
)  # fmt: skip


SHM = Path("/dev/shm")
PREFIX = "breakwater-test-"


@contextlib.contextmanager
def scratch_dir(tmp_path_factory, name: str) -> Iterator[Path]:
    """A directory for a throwaway stack's state, in memory when the machine has a tmpfs at /dev/shm:
    on this kind of VM creating a file on disk costs half a millisecond, and a stack creates thousands
    (MariaDB tables and binlogs, the static build's 7,000 files). Removed afterwards; directories that
    an interrupted session left behind are swept on the next start."""
    if not (SHM.is_dir() and os.access(SHM, os.W_OK)):
        yield tmp_path_factory.mktemp(name)
        return
    for old in SHM.glob(f"{PREFIX}*"):
        with contextlib.suppress(OSError, ValueError):
            pid = int((old / "owner.pid").read_text())
            if not Path(f"/proc/{pid}").exists():
                shutil.rmtree(old, ignore_errors=True)
    path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{name}-", dir=SHM))
    (path / "owner.pid").write_text(str(os.getpid()))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def stack_env(state_dir: Path, replicas: int = 2) -> dict[str, str]:
    ports = free_ports(len(PORT_KEYS) + replicas)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BREAKWATER_")}
    env.update({f"BREAKWATER_{key}": str(port) for key, port in zip(PORT_KEYS, ports, strict=False)})
    env["BREAKWATER_REPLICA_PORTS"] = ",".join(str(p) for p in ports[len(PORT_KEYS) :])
    env["BREAKWATER_STATE_DIR"] = str(state_dir / "state")
    env["BREAKWATER_STATIC_DIR"] = str(state_dir / "static_build")
    env["BREAKWATER_WEB_WORKERS"] = "2"
    # Two cores shared: one process per prefork queue, a few greenlets for the I/O queues.
    for queue in ("PAGES", "ORDERS", "DEFAULT"):
        env[f"BREAKWATER_WORKER_{queue}_CONCURRENCY"] = "1"
    env["BREAKWATER_WORKER_PURGE_CONCURRENCY"] = "10"
    env["BREAKWATER_WORKER_NOTIFY_CONCURRENCY"] = "10"
    env["BREAKWATER_WORKER_SHUTDOWN_TIMEOUT"] = "5"
    env["BREAKWATER_OUTBOX_RELAY_INTERVAL"] = "1"
    env["BREAKWATER_OUTBOX_GRACE"] = "2"
    env["BREAKWATER_DEBUG_ROUTES"] = "1"
    env["BREAKWATER_FLOWER"] = "0"  # its task events cost every worker CPU; nothing here reads them
    env["BREAKWATER_PROMETHEUS"] = "0"  # tests/test_prometheus.py starts a stack of its own with it
    # Many tests check read-your-writes and X-Cache through the origin: no Nginx microcache here
    # (tests/test_origin.py starts its own Nginx with it).
    env["BREAKWATER_ORIGIN_MICROCACHE"] = "0"
    # Every limit per client keeps its default (Nginx's login and write limits, the app's): tests that send
    # many requests do so as many visitors, each from an address of its own (tests/visitors.py).
    (state_dir / "static_build").mkdir(parents=True, exist_ok=True)
    return env
