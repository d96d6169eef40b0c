"""docker-compose.yml stays true to the local stack (Docker itself does not run on our machines)."""

from __future__ import annotations

import re

import yaml

from breakwater.settings import ROOT, SETTINGS, env_name
from breakwater.stack.layout import Layout
from breakwater.stack.render import programs


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_local_service_is_a_compose_service(settings):
    local = {p.name for p in programs(Layout(settings))}
    services = compose()["services"]
    assert local <= services.keys(), f"missing in docker-compose.yml: {local - services.keys()}"


def test_app_and_worker_get_exactly_the_app_settings():
    app_settings = {env_name(s.name) for s in SETTINGS if s.scope == "app"}
    services = compose()["services"]
    for name in ("app", "worker", "migrate"):
        env = services[name]["environment"]
        assert app_settings <= env.keys(), f"{name} lacks {app_settings - env.keys()}"
    assert set(services["app"]["environment"]) == app_settings
    assert set(services["worker"]["environment"]) == app_settings


def test_every_breakwater_variable_in_compose_is_a_known_setting():
    known = {env_name(s.name) for s in SETTINGS} | {"BREAKWATER_DB_ROOT_PASSWORD"}
    used = set(re.findall(r"\b(BREAKWATER_[A-Z_]+)", (ROOT / "docker-compose.yml").read_text()))
    assert used <= known, f"unknown variables: {used - known}"


def test_dependencies_wait_for_health_and_replicas_follow_the_primary():
    services = compose()["services"]
    for name in (
        "mariadb-primary",
        "mariadb-replica1",
        "mariadb-replica2",
        "redis",
        "redis-cache",
        "app",
        "worker",
        "nginx",
    ):
        assert "healthcheck" in services[name], name
    for name in ("mariadb-replica1", "mariadb-replica2"):
        assert services[name]["depends_on"]["mariadb-primary"]["condition"] == "service_healthy"
        assert services[name]["environment"]["MARIADB_MASTER_HOST"] == "mariadb-primary"
        assert "--read-only=1" in services[name]["command"]
    ids = [
        next(a for a in services[n]["command"] if a.startswith("--server-id"))
        for n in ("mariadb-primary", "mariadb-replica1", "mariadb-replica2")
    ]
    assert len(set(ids)) == 3
    assert services["nginx"]["depends_on"]["app"]["condition"] == "service_healthy"
    assert services["app"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["locust"]["profiles"] == ["bench"]


def test_compose_nginx_config_renders(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path / "nginx.conf"
    cmd = compose()["services"]["nginx-config"]["command"]
    assert cmd[0] == "breakwater"
    args = [a.replace("/etc/nginx-rendered/nginx.conf", str(out)) for a in cmd[1:]]
    result = subprocess.run(
        [str(Path(sys.executable).parent / "breakwater"), *args], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert "server app:8000;" in text and "listen 0.0.0.0:8080" in text
    check = subprocess.run(["nginx", "-t", "-c", str(out)], capture_output=True, text=True)
    # The paths inside are the container's; only syntax errors would say "unknown directive" or "unexpected".
    assert "unknown directive" not in check.stderr and "unexpected" not in check.stderr
