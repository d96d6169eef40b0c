"""The cluster suite (`make test-cluster`): one stack over four hosts made of network namespaces, started by
the same code as `make cluster`, on a network of its own. Overriding ``stack`` points every fixture of
tests/conftest.py (settings, app, editor_token, origin, edge) at it."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator

import pytest

from breakwater_tools.stack import Stack
from breakwater_tools.stack.cluster import cluster_env
from breakwater_tools.stack.ports import free_ports, port_in_use
from stack_helpers import scratch_dir, stack_env

HOSTS = 4


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Stack:
    if os.geteuid() != 0:
        pytest.fail("The cluster suite creates network namespaces: run `make test-cluster` as root.")
    with scratch_dir(tmp_path_factory, "cluster") as state:
        yield from _cluster_stack(state)


def _cluster_stack(state) -> Iterator[Stack]:
    base = stack_env(state)
    base["BREAKWATER_CLUSTER_NETWORK"] = f"10.{random.randint(100, 199)}.{random.randint(0, 255)}.0/24"
    base["BREAKWATER_WEB_WORKERS"] = "2"
    # The watcher (on the last app host) promotes a replica 4 s after the primary stops answering.
    base["BREAKWATER_DB_FAILOVER_AFTER"] = "4"
    # The gate/broker Redis with a replica on an app host and a Sentinel on each of the first three hosts.
    base["BREAKWATER_REDIS_SENTINEL"] = "1"
    sentinel_ports = free_ports(4)
    base["BREAKWATER_SENTINEL_PORTS"] = ",".join(str(p) for p in sentinel_ports[:3])
    base["BREAKWATER_REDIS_REPLICA_PORT"] = str(sentinel_ports[3])
    # Prometheus and its exporters on this machine, scraping every host (test_cluster_prometheus.py).
    base["BREAKWATER_PROMETHEUS"] = "1"
    base["BREAKWATER_PROMETHEUS_PORT"], base["BREAKWATER_RABBITMQ_PROMETHEUS_PORT"] = map(str, free_ports(2))
    base["BREAKWATER_PROMETHEUS_EXPORTER_PORT"] = str(_free_run(10))
    st = Stack(cluster_env(HOSTS, base), echo=lambda _msg: None)
    try:
        st.up(install=True, echo_steps=False)
        yield st
    finally:
        st.down(quiet=True, kill=True)


def _free_run(count: int) -> int:
    """The first of ``count`` consecutive free loopback ports (the exporters take one each from there)."""
    for _ in range(200):
        first = random.randrange(20000, 30000)
        if not any(port_in_use("127.0.0.1", p) for p in range(first, first + count)):
            return first
    raise RuntimeError("no run of free ports")


@pytest.fixture(scope="session")
def cluster(stack):
    return stack.layout.cluster
