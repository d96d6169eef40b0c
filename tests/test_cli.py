"""The `breakwater` command against the test stack: users, status, and clear failures."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from breakwater_tools.stack import Stack, StackError
from conftest import stack_env

BIN = Path(sys.executable).parent / "breakwater"


def run(env, *args, timeout=60):
    return subprocess.run([str(BIN), *args], env=env, capture_output=True, text=True, timeout=timeout)


def test_create_editor_generates_password_and_can_log_in(stack, http, origin, unique_name):
    result = run(stack.env, "user", "create-editor", unique_name)
    assert result.returncode == 0, result.stderr
    password = result.stdout.strip().rsplit(" ", 1)[-1]
    assert len(password) >= 12
    resp = http.post(f"{origin}/api/auth/login", json={"name": unique_name, "password": password}, timeout=5)
    assert resp.json()["user"]["role"] == "editor"


def test_create_editor_existing_name_is_a_clear_error(stack, db, unique_name):
    assert run(stack.env, "user", "create-editor", unique_name, "--password", "given password").returncode == 0
    again = run(stack.env, "user", "create-editor", unique_name, "--password", "other password")
    assert again.returncode == 1
    assert again.stderr.strip() == f"error: a user named {unique_name!r} already exists; pick another name."
    with db.primary_engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM users WHERE name=:n"), {"n": unique_name}).scalar_one() == 1


def test_create_editor_invalid_input(stack):
    bad = run(stack.env, "user", "create-editor", "a b", "--password", "long enough")
    assert bad.returncode == 1 and "letters, digits" in bad.stderr
    short = run(stack.env, "user", "create-editor", "shortpw", "--password", "x")
    assert short.returncode == 1 and "8 to 128" in short.stderr


def test_status_json_lists_every_service_healthy(stack):
    result = run(stack.env, "stack", "status", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    services = json.loads(result.stdout)
    names = {s["name"] for s in services}
    assert names == {
        "mariadb-primary",
        "mariadb-replica1",
        "mariadb-replica2",
        "redis",
        "redis-cache",
        "rabbitmq",
        "smtp",
        "app",
        "worker-pages",
        "worker-purge",
        "worker-notify",
        "worker-orders",
        "worker-default",
        "beat",
        "flash-markers",
        "nginx",
        "edge",
    }  # fmt: skip (no flower: the test stacks run without it, BREAKWATER_FLOWER=0)
    for s in services:
        assert {"name", "role", "pid", "port", "healthy"} <= s.keys()
        assert s["healthy"] is True and isinstance(s["pid"], int)


def test_starting_twice_is_refused(stack):
    with pytest.raises(StackError, match="already running"):
        Stack(stack.env).up()
    result = run(stack.env, "stack", "up")
    assert result.returncode == 1 and "already running" in result.stderr and "make down" in result.stderr


def test_port_in_use_names_the_port_and_starts_nothing(tmp_path):
    env = stack_env(tmp_path)
    port = int(env["BREAKWATER_REDIS_PORT"])
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", port))
        blocker.listen()
        result = run(env, "stack", "up")
    assert result.returncode == 1
    assert f"Port {port} (BREAKWATER_REDIS_PORT) is already in use" in result.stderr
    assert not (Path(env["BREAKWATER_STATE_DIR"]) / "supervisor" / "supervisord.pid").exists()


def test_crashed_worker_is_restarted_by_the_supervisor(stack, http, origin):
    before = {s["name"]: s for s in stack.status()}["worker-default"]["pid"]
    os.kill(before, 9)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = {s["name"]: s for s in stack.status()}["worker-default"]
        if now["healthy"] and now["pid"] != before:
            break
        time.sleep(0.5)
    assert now["pid"] != before and now["healthy"]
    stack.wait_healthy(timeout=60)


def test_the_tooling_groups_plug_in_whichever_package_is_imported_first(tmp_path):
    """`breakwater stack|cluster|mail` come from breakwater_tools through the breakwater.commands entry point;
    importing the tooling's commands first (as the monitoring suite and scripts do) must not make a circle."""
    code = (
        "from breakwater_tools.cli.stack import banner\n"
        "from breakwater.cli import main\n"
        "import click, json\n"
        "ctx = click.Context(main)\n"
        "print(sorted(n for n in ('stack', 'cluster', 'mail') if main.get_command(ctx, n)))\n"
        "print(json.dumps(sorted(main.get_command(ctx, 'db').commands)))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("BREAKWATER_")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    groups, db_commands = result.stdout.splitlines()
    assert groups == "['cluster', 'mail', 'stack']"
    assert {"promote", "rejoin", "upgrade", "seed"} <= set(json.loads(db_commands))


def test_help_without_settings_names_the_fix_in_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BREAKWATER_")}
    env["BREAKWATER_STATE_DIR"] = str(tmp_path)  # no secrets.env there
    result = run(env, "--help")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert "BREAKWATER_SECRET_KEY is not set" in result.stderr and "make run" in result.stderr, result.stderr
    assert "stack" in result.stdout and "db" in result.stdout
