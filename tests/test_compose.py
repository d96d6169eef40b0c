"""docker-compose.yml stays true to the local stack (Docker itself does not run on our machines)."""

from __future__ import annotations

import ipaddress
import re

import yaml

from breakwater.settings import ROOT, SETTINGS, env_name
from breakwater_tools.stack.layout import Layout
from breakwater_tools.stack.supervised import EDGE_SIZING, programs


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_local_service_is_a_compose_service(settings):
    local = {p.name for p in programs(Layout(settings.with_values(FLOWER="1")))}  # the test stacks leave it out
    services = compose()["services"]
    assert local <= services.keys(), f"missing in docker-compose.yml: {local - services.keys()}"


def test_app_and_worker_get_exactly_the_app_settings():
    app_settings = {env_name(s.name) for s in SETTINGS if s.scope == "app"}
    services = compose()["services"]
    workers = [n for n in services if n.startswith("worker-")] + ["beat", "flower"]
    assert len(workers) == 7
    for name in ("app", "migrate", *workers):
        env = services[name]["environment"]
        assert app_settings <= env.keys(), f"{name} lacks {app_settings - env.keys()}"
    # Flower also gets its own password (it listens on its container's every interface: test_exposure.py).
    extra = {"flower": {"FLOWER_BASIC_AUTH"}}
    for name in ("app", *workers):
        assert set(services[name]["environment"]) == app_settings | extra.get(name, set()), name


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
        "rabbitmq",
        "smtp",
        "worker-pages",
        "worker-purge",
        "worker-notify",
        "worker-orders",
        "worker-default",
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

    # `nginx -t` here: the compose service names do not resolve outside Docker (nginx stops at the
    # upstream's name before reading the server block), and the container's cache folder is not ours.
    # Point both at local equivalents; everything else is checked as compose renders it.
    nginx_dir = re.search(r"^pid (\S+)/nginx\.pid;", text, re.M).group(1)
    local = re.sub(r"(^\s*server )[A-Za-z][\w.-]*(:\d+;)", r"\g<1>127.0.0.1\2", text, flags=re.M)
    local = local.replace(nginx_dir, str(tmp_path / "nginx"))
    assert "server 127.0.0.1:8000;" in local and nginx_dir not in local
    (tmp_path / "nginx").mkdir()
    (tmp_path / "local.conf").write_text(local)
    check = subprocess.run(["nginx", "-t", "-c", str(tmp_path / "local.conf")], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    assert "test is successful" in check.stderr


def test_compose_edge_matches_the_local_edge(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from breakwater_tools.stack.programs import which

    services = compose()["services"]
    edge = services["edge"]
    assert edge["image"].startswith("varnish:7")
    assert edge["depends_on"]["nginx"]["condition"] == "service_healthy"
    assert "healthcheck" in edge and edge["ports"] == ["127.0.0.1:8081:8081"]
    assert services["app"]["environment"]["BREAKWATER_CDN_PURGE_URLS"].endswith("http://edge:8081/}")
    # The same flags as the supervisord program (tuning and default grace), so both edges behave alike.
    from breakwater.settings import Settings

    local = next(p for p in programs(Layout(Settings.load({}))) if p.name == "edge")
    compose_args = [re.sub(r"\$\{BREAKWATER_[A-Z_]+:-([^}]*)\}", r"\1", a) for a in edge["command"]]
    sizing = [f"{param}={Settings.load({})[name]}" for param, name in EDGE_SIZING.items()]
    for flag in ("-F", "default_grace=0", *sizing):
        assert flag in local.command.split() and flag in compose_args, flag
    # each sizing parameter follows its own setting in compose, with the setting's default
    for param, name in EDGE_SIZING.items():
        assert any(a.startswith(f"{param}=${{BREAKWATER_{name}:-") for a in edge["command"]), param

    out = tmp_path / "edge.vcl"
    cmd = services["edge-config"]["command"]
    assert cmd[0] == "breakwater"
    args = [a.replace("/etc/varnish-rendered/edge.vcl", str(out)) for a in cmd[1:]]
    args = [re.sub(r"\$\{BREAKWATER_[A-Z_]+:-([^}]*)\}", r"\1", a) for a in args]
    result = subprocess.run(
        [str(Path(sys.executable).parent / "breakwater"), *args], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert '.host = "nginx";' in text and '"172.16.0.0"/12;' in text
    # Compile it (the container's backend name does not resolve here, so point it at loopback first).
    out.write_text(text.replace('.host = "nginx";', '.host = "127.0.0.1";'))
    check = subprocess.run(
        [which("varnishd") or "varnishd", "-C", "-j", "none", "-n", str(tmp_path / "vd"), "-f", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stderr[-2000:]


def test_compose_scales_like_the_cluster_of_make_cluster():
    """App servers and the workers of every app host come in `deploy.replicas`, as many as `make cluster` has
    app hosts; the pages worker stays single, beside the origin (it writes the pages Nginx serves)."""
    from collections import Counter

    from breakwater.settings import Settings

    layout = Layout(Settings.load({"BREAKWATER_CLUSTER_HOSTS": "4"}))
    services = compose()["services"]

    def replicas(name: str) -> int:
        return services[name].get("deploy", {}).get("replicas", 1)

    assert replicas("app") == len(layout.apps) == 2
    assert "ports" not in services["app"]  # replicas cannot share one host port
    per_queue = Counter(queue for _name, queue, _host in layout.workers())
    assert {q: replicas(f"worker-{q}") for q in per_queue} == dict(per_queue)


def _default(value: str) -> str:
    """``${NAME:-default}`` -> ``default``."""
    match = re.fullmatch(r"\$\{[A-Z_]+:-(.*)\}", value)
    assert match, value
    return match.group(1)


def test_each_hop_trusts_exactly_the_fixed_address_of_the_one_in_front():
    services = compose()["services"]
    nginx = services["nginx"]["networks"]["default"]["ipv4_address"]
    edge = services["edge"]["networks"]["default"]["ipv4_address"]
    assert _default(services["nginx-config"]["environment"]["BREAKWATER_ORIGIN_TRUSTED_PROXIES"]) == edge
    assert _default(services["app"]["environment"]["BREAKWATER_APP_TRUSTED_PROXIES"]) == nginx
    # Dynamic containers never get the proxies' addresses.
    pool = compose()["networks"]["default"]["ipam"]["config"][0]["ip_range"]
    assert not {ipaddress.ip_address(nginx), ipaddress.ip_address(edge)} & set(ipaddress.ip_network(pool))
