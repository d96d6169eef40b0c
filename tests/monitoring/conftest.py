"""The monitoring suite (`make test-monitoring`): one stack with Prometheus and every exporter on, its alert
rules loaded. Overriding ``stack`` points every fixture of tests/conftest.py (settings, app, http, editor_api,
origin, edge) at it, so the live alert tests break and watch the very stack Prometheus scrapes."""

from __future__ import annotations

import random

import pytest

from breakwater_tools.stack import Stack, StackError
from breakwater_tools.stack.ports import free_ports, port_in_use
from stack_helpers import scratch_dir, stack_env


def _free_run(count: int) -> int:
    """The first of ``count`` consecutive free loopback ports (the exporters take one each from there)."""
    for _ in range(200):
        base = random.randrange(20000, 60000)
        if not any(port_in_use("127.0.0.1", p) for p in range(base, base + count)):
            return base
    raise RuntimeError("no run of free ports")


def _monitored_env(state) -> dict[str, str]:
    env = stack_env(state)
    env["BREAKWATER_PROMETHEUS"] = "1"
    env["BREAKWATER_PROMETHEUS_PORT"], env["BREAKWATER_RABBITMQ_PROMETHEUS_PORT"] = map(str, free_ports(2))
    env["BREAKWATER_PROMETHEUS_EXPORTER_PORT"] = str(_free_run(10))
    return env


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Stack:
    with scratch_dir(tmp_path_factory, "monitored") as state:
        st = Stack(_monitored_env(state), echo=lambda _msg: None)
        try:
            try:
                st.up(install=True, echo_steps=False)
            except StackError as exc:
                # Ports are picked free, then bound seconds later: another stack starting on this machine at the
                # same moment can take one in between. Once, with new ports; anything else fails as it is.
                if "address already in use" not in str(exc).lower():
                    raise
                st.down(quiet=True, kill=True)
                st = Stack(_monitored_env(state), echo=lambda _msg: None)
                st.up(install=True, echo_steps=False)
            yield st
        finally:
            st.down(quiet=True, kill=True)


@pytest.fixture(scope="session")
def monitored(stack) -> Stack:
    """The stack, under the name the monitoring tests read best with."""
    return stack


@pytest.fixture(scope="session")
def prometheus(stack) -> str:
    """Prometheus's base URL."""
    return f"http://127.0.0.1:{stack.settings.int('PROMETHEUS_PORT')}"
