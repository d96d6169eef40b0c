"""Missing system programs give one sentence with the install command, and start nothing."""

from __future__ import annotations

import pytest

from breakwater_tools.stack import Stack, StackError, programs
from conftest import stack_env


def test_missing_program_names_the_install_command(tmp_path, monkeypatch):
    real = programs.which
    monkeypatch.setattr(programs, "which", lambda name: None if name == "nginx" else real(name))
    with pytest.raises(StackError) as info:
        programs.ensure_programs(install=False)
    assert str(info.value) == "Missing program(s) nginx; install them with: sudo apt-get install -y nginx-light"

    st = Stack(stack_env(tmp_path))
    with pytest.raises(StackError, match="apt-get install -y nginx-light"):
        st.up(install=False)
    assert st.supervisor.pid is None
    assert not st.layout.state.exists() or not any(st.layout.state.iterdir())


def test_a_service_crashing_at_start_is_named_and_nothing_is_left_running(tmp_path, monkeypatch):
    from breakwater_tools.stack import render

    real_programs = render.programs

    def broken(layout):
        progs = real_programs(layout)
        for p in progs:
            if p.name == "redis-cache":  # started with the data services: the test needs no full start
                p.command = "sh -c 'echo redis-cache: configuration is broken on purpose; exit 3'"
        return progs

    monkeypatch.setattr(render, "programs", broken)
    st = Stack(stack_env(tmp_path), echo=lambda _m: None)
    with pytest.raises(StackError) as info:
        st.up(install=False)
    message = str(info.value)
    assert message.startswith("redis-cache crashed while starting")
    assert "configuration is broken on purpose" in message
    assert st.supervisor.pid is None
    assert st.orphans() == {}
