"""Ports for throwaway stacks: below the kernel's ephemeral range, and never handed out twice while
two processes (the pytest-xdist workers) pick at the same moment."""

from __future__ import annotations

import random
import socket

from breakwater_tools.stack import ports


def test_ports_come_from_below_the_ephemeral_range():
    low, high = ports._pickable_range()
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        assert high == int(f.read().split()[0])
    chosen = ports.free_ports(12)
    assert len(set(chosen)) == 12 and all(low <= p < high for p in chosen), chosen


def test_a_port_handed_out_is_not_handed_out_again(monkeypatch):
    # Both calls see the same candidates in the same order: only the registry keeps them apart.
    monkeypatch.setattr(random, "sample", lambda population, k: list(population)[-k:])
    first, second = ports.free_ports(3), ports.free_ports(3)
    assert not set(first) & set(second), (first, second)


def test_a_port_in_use_is_skipped(monkeypatch):
    with socket.socket() as busy:
        low, high = ports._pickable_range()
        for port in range(high - 1, low, -1):  # a free port near the top, held open
            try:
                busy.bind(("127.0.0.1", port))
                break
            except OSError:
                continue
        busy.listen()
        monkeypatch.setattr(random, "sample", lambda population, k: [port, *list(population)[:k]])
        assert port not in ports.free_ports(2)
