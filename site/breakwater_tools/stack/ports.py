"""Port checks: whether an address is free, and free ports for test stacks."""

from __future__ import annotations

import contextlib
import fcntl
import json
import random
import socket
import tempfile
import time
from pathlib import Path


def port_in_use(host: str, port: int) -> bool:
    """True when something accepts connections or holds the address."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def accepts(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports free on ``host``, for throwaway stacks (tests, benchmarks).

    They come from below the kernel's ephemeral range: a port the kernel handed out there could be
    taken as the local end of some outgoing connection before the service binds it (MariaDB then
    fails with "Address already in use"). A registry under a file lock keeps processes that pick at
    the same moment (two pytest-xdist workers) from choosing the same port for an hour.
    """
    low, high = _pickable_range()
    with _registry() as taken:
        now = time.time()
        for port, expiry in list(taken.items()):
            if expiry < now:
                del taken[port]
        chosen: list[int] = []
        candidates = random.sample(range(low, high), min(high - low, count * 50 + 200))
        for port in candidates:
            if len(chosen) == count:
                break
            if str(port) not in taken and not port_in_use(host, port):
                chosen.append(port)
                taken[str(port)] = now + 3600
        if len(chosen) < count:
            raise OSError(f"no {count} free ports between {low} and {high} on {host}")
        return chosen


def _pickable_range() -> tuple[int, int]:
    """Ports below the ephemeral range (``net.ipv4.ip_local_port_range``), above the well-known ones."""
    try:
        ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768
    return (10000, ephemeral_low) if ephemeral_low > 12000 else (ephemeral_low - 2000, ephemeral_low)


@contextlib.contextmanager
def _registry():
    path = Path(tempfile.gettempdir()) / "breakwater-ports.json"
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            taken = json.loads(path.read_text()) if path.exists() else {}
        except (OSError, ValueError):
            taken = {}
        yield taken
        path.write_text(json.dumps(taken))
