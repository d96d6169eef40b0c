"""The edge's sizing (issue 20, point 5): the varnishd command carries the thread pools, workspaces and listen
queue from the settings, and the running edge has them."""

from __future__ import annotations

import json
import shlex
import subprocess

import pytest

from breakwater.settings import Settings
from breakwater_tools.stack.errors import StackError
from breakwater_tools.stack.layout import Layout
from breakwater_tools.stack.programs import which
from breakwater_tools.stack.supervised import EDGE_SIZING, programs


def edge_command(env: dict[str, str]) -> list[str]:
    return shlex.split(next(p for p in programs(Layout(Settings.load(env))) if p.name == "edge").command)


def params(argv: list[str]) -> dict[str, str]:
    """Every ``-p name=value`` of a varnishd command line."""
    return dict(argv[i + 1].split("=", 1) for i, arg in enumerate(argv[:-1]) if arg == "-p")


def test_the_rendered_varnishd_command_carries_the_sizing_settings():
    defaults = params(edge_command({}))
    s = Settings.load({})
    assert {p: defaults[p] for p in EDGE_SIZING} == {p: s[name] for p, name in EDGE_SIZING.items()}
    # sized for a crowd on a 2-core machine, not the old single pool of 10 threads
    assert defaults["thread_pools"] == "2" and int(defaults["thread_pool_min"]) * 2 >= 1000
    assert defaults["default_grace"] == "0"

    overrides = {
        "BREAKWATER_EDGE_THREAD_POOLS": "1",
        "BREAKWATER_EDGE_THREAD_POOL_MIN": "50",
        "BREAKWATER_EDGE_THREAD_POOL_MAX": "300",
        "BREAKWATER_EDGE_WORKSPACE_CLIENT": "128k",
        "BREAKWATER_EDGE_WORKSPACE_BACKEND": "64k",
        "BREAKWATER_EDGE_LISTEN_DEPTH": "512",
    }
    got = params(edge_command(overrides))
    assert {p: got[p] for p in EDGE_SIZING} == {p: overrides[f"BREAKWATER_{n}"] for p, n in EDGE_SIZING.items()}


@pytest.mark.parametrize(
    "name, value",
    [("EDGE_THREAD_POOL_MIN", "lots"), ("EDGE_WORKSPACE_CLIENT", "96 kb"), ("EDGE_THREAD_POOL_MIN", "2000")],
)
def test_a_wrong_sizing_setting_is_refused_before_varnishd_starts(name, value):
    with pytest.raises(StackError, match=name):
        edge_command({f"BREAKWATER_{name}": value})


def test_the_running_edge_has_the_sizing_parameters(stack, settings):
    """varnishd took the parameters (not only the command line): asked of the test stack's edge."""
    out = subprocess.run(
        [which("varnishadm") or "varnishadm", "-n", str(stack.layout.edge_workdir), "param.show", "-j"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    shown = {p["name"]: p for p in json.loads(out)[3:]}  # [status, command, time, *parameters]
    for param, name in EDGE_SIZING.items():
        value = str(shown[param]["value"])
        want = settings[name]
        if want[-1] in "kKmM":  # workspaces come back in bytes
            want = str(int(want[:-1]) * {"k": 1024, "m": 1024 * 1024}[want[-1].lower()])
        assert value == want, (param, shown[param])
