"""Nothing internal through the edge (issue 20, point 3).

* /metrics: the edge answers it itself (404) and never forwards it; the origin answers it only to a caller on
  the operator's network (BREAKWATER_ORIGIN_OPERATOR_NETWORK, 127.0.0.1 by default) that came straight to it,
  never to a request that came through the edge (it carries X-Forwarded-For), whether or not the origin
  believes the edge's X-Forwarded-For; the app checks its own peer too.
* /healthz: anonymous callers get only ``{"status": ...}`` and the HTTP code; the details go to the operator's
  network, to loopback callers of the app itself, and to ``Authorization: Bearer <BREAKWATER_OPS_TOKEN>``.
  Its checks run at most once a second per process, however many callers there are.
* Flower listens on loopback or asks for a password, in every layout (one machine, the cluster, compose).
* The cluster's purge ACL names the hosts that purge and nobody else.

Sources other than 127.0.0.1 are loopback addresses of their own (Linux lets a socket bind any of 127.0.0.0/8).
"""

from __future__ import annotations

import getpass
import math
import os
import re
import signal
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import yaml
from requests.adapters import HTTPAdapter

from breakwater.settings import ROOT, Settings
from breakwater_tools.stack.layout import Layout
from breakwater_tools.stack.ports import accepts, free_ports
from breakwater_tools.stack.render import render_edge, render_nginx
from breakwater_tools.stack.supervised import programs

#: what anonymous callers may see of /healthz
STATUS_ONLY = {"status"}
DETAILS = {"database", "redis", "redis_cache", "worker", "edge", "problems"}


class SourceAddressAdapter(HTTPAdapter):
    """Connections leave from ``address`` (urllib3's ``source_address``)."""

    def __init__(self, address: str, **kwargs):
        self.address = address
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def client(source: str = "127.0.0.1") -> requests.Session:
    session = requests.Session()
    session.mount("http://", SourceAddressAdapter(source))
    return session


def metric(text: str, name: str) -> float | None:
    """The sample ``name`` (no labels) of a Prometheus text page, or None when it is not there."""
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(match.group(1)) if match else None


def ops_token(settings) -> str:
    token = settings["OPS_TOKEN"]
    assert token, "the stack generates BREAKWATER_OPS_TOKEN into secrets.env"
    return token


# ---------------------------------------------------------------------------------------------------- /metrics
def test_metrics_through_the_edge_are_answered_by_the_edge_and_never_forwarded(stack, edge):
    tag = uuid.uuid4().hex[:12]
    with client("127.0.0.9") as visitor:
        for path in (f"/metrics?{tag}", f"//metrics?{tag}", f"/metrics/?{tag}", f"/_bench/memory/x?{tag}"):
            resp = visitor.get(edge + path, timeout=10)
            assert resp.status_code == 404, (path, resp.status_code, resp.text[:200])
            assert "breakwater_" not in resp.text, path
            assert "X-Edge-Cache" not in resp.headers, (path, resp.headers)  # the edge's own answer, not passed
        # Spelled so that the edge's pattern misses it, it reaches the origin, which refuses it too.
        encoded = visitor.get(f"{edge}/%6detrics?{tag}", timeout=10)
        assert encoded.status_code in (403, 404) and "breakwater_" not in encoded.text, encoded.status_code
    time.sleep(1.5)  # the origin's access log is flushed every second
    log = (stack.layout.logs / "nginx-access.log").read_text()
    forwarded = [line for line in log.splitlines() if tag in line and "%6d" not in line]
    assert forwarded == [], "the edge forwarded an operator-only path to the origin"


def test_metrics_at_the_origin_answer_only_the_operators_network_called_directly(origin):
    with client("127.0.0.1") as operator:
        ok = operator.get(f"{origin}/metrics", timeout=10)
        assert ok.status_code == 200 and "breakwater_http_requests_total" in ok.text
        # As the edge sends it (with or without the origin believing the edge's X-Forwarded-For), or a
        # visitor pretending to be the operator: refused.
        for forwarded in ("127.0.0.1", "127.0.0.9", "203.0.113.9"):
            resp = operator.get(f"{origin}/metrics", headers={"X-Forwarded-For": forwarded}, timeout=10)
            assert resp.status_code == 403, (forwarded, resp.status_code)
            assert "breakwater_" not in resp.text
    with client("127.0.0.2") as neighbour:  # loopback, but not the operator's network
        resp = neighbour.get(f"{origin}/metrics", timeout=10)
        assert resp.status_code == 403, resp.status_code
        assert "breakwater_" not in resp.text


@pytest.fixture()
def own_origin(settings, tmp_path):
    """``own_origin(**settings)``: a second Nginx from the same template, in front of the stack's app."""
    started: list[subprocess.Popen] = []

    def start(**overrides: str) -> str:
        directory = tmp_path / f"nginx{len(started)}"
        (directory / "static").mkdir(parents=True)
        port = free_ports(1)[0]
        conf = directory / "nginx.conf"
        conf.write_text(
            render_nginx(
                upstreams=[f"{settings['HOST']}:{settings.int('APP_PORT')}"],
                listen=f"127.0.0.1:{port}",
                static_dir=str(directory / "static"),
                nginx_dir=str(directory),
                access_log=str(directory / "access.log"),
                settings=settings.with_values(**overrides),
                os_user=getpass.getuser() if os.geteuid() == 0 else "",
            )
        )
        cmd = ["nginx", "-p", str(directory), "-c", str(conf), "-g", "daemon off;"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        started.append(proc)
        deadline = time.monotonic() + 10
        while not accepts("127.0.0.1", port):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode()
            time.sleep(0.05)
        return f"http://127.0.0.1:{port}"

    yield start
    for proc in started:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def test_the_origins_rule_holds_whether_or_not_it_believes_the_edges_forwarded_address(own_origin):
    for trusted in ("192.0.2.1", "127.0.0.1"):  # realip off for loopback peers, then on (the stack's default)
        origin = own_origin(ORIGIN_TRUSTED_PROXIES=trusted)
        with client("127.0.0.1") as operator:
            assert operator.get(f"{origin}/metrics", timeout=10).status_code == 200, trusted
            assert set(operator.get(f"{origin}/healthz", timeout=10).json()) >= DETAILS, trusted
            as_the_edge = {"X-Forwarded-For": "127.0.0.1"}
            assert operator.get(f"{origin}/metrics", headers=as_the_edge, timeout=10).status_code == 403, trusted
            assert set(operator.get(f"{origin}/healthz", headers=as_the_edge, timeout=10).json()) == STATUS_ONLY
            rfc7239 = {"Forwarded": "for=127.0.0.1"}
            assert operator.get(f"{origin}/metrics", headers=rfc7239, timeout=10).status_code == 403, trusted
    # The operator's network is a setting.
    origin = own_origin(ORIGIN_OPERATOR_NETWORK="127.0.0.2")
    with client("127.0.0.2") as operator, client("127.0.0.1") as other:
        assert operator.get(f"{origin}/metrics", timeout=10).status_code == 200
        assert set(operator.get(f"{origin}/healthz", timeout=10).json()) >= DETAILS
        assert other.get(f"{origin}/metrics", timeout=10).status_code == 403
        assert set(other.get(f"{origin}/healthz", timeout=10).json()) == STATUS_ONLY


def test_the_apps_metrics_check_its_peer(settings):
    app = settings.app_url
    with client("127.0.0.1") as local:
        assert local.get(f"{app}/metrics", timeout=10).status_code == 200  # a loopback caller of the app
        # The origin forwarding a visitor that is not the operator says so; a forwarded request without that
        # word is not the operator's either.
        assert local.get(f"{app}/metrics", headers={"X-Breakwater-Operator": "0"}, timeout=10).status_code == 403
        assert local.get(f"{app}/metrics", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=10).status_code == 403


# ---------------------------------------------------------------------------------------------------- /healthz
def test_anonymous_healthz_says_only_whether_the_site_can_serve(stack, edge, origin):
    stack.wait_healthy(timeout=60)

    def anonymous(session: requests.Session, url: str, headers: dict | None = None) -> None:
        resp = session.get(url, headers=headers or {}, timeout=10)
        body = resp.json()
        assert set(body) == STATUS_ONLY, (url, headers, body)
        assert (resp.status_code, body["status"]) in ((200, "ok"), (200, "degraded")), (url, resp.status_code)
        assert resp.headers["Cache-Control"] == "no-store"

    with client("127.0.0.9") as visitor:
        anonymous(visitor, f"{edge}/healthz")
        anonymous(visitor, f"{origin}/healthz")
        anonymous(visitor, f"{edge}/healthz", {"Authorization": "Basic b3BzOm9wcw=="})
        anonymous(visitor, f"{origin}/healthz", {"Authorization": "Bearer not-the-token"})
        anonymous(visitor, f"{origin}/healthz", {"Authorization": "Bearer " + ops_token(stack.settings)[:-1]})
    with client("127.0.0.1") as operator:  # the operator's own address, but through the edge: still anonymous
        anonymous(operator, f"{edge}/healthz")


def test_healthz_details_go_to_the_operator_token_and_loopback_callers(stack, edge, origin, settings):
    token = {"Authorization": f"Bearer {ops_token(settings)}"}
    with client("127.0.0.9") as visitor:
        for url in (f"{origin}/healthz", f"{edge}/healthz"):
            body = visitor.get(url, headers=token, timeout=10).json()
            assert set(body) >= DETAILS and body["status"] == "ok", (url, body)
            assert len(body["database"]) == 3 and all("server_id" in n for n in body["database"])
    with client("127.0.0.1") as operator:
        body = operator.get(f"{origin}/healthz", timeout=10).json()  # the operator's network, straight to it
        assert set(body) >= DETAILS, body
        body = operator.get(f"{settings.app_url}/healthz", timeout=10).json()  # a loopback caller of the app
        assert set(body) >= DETAILS, body
        # Forwarded by someone (the edge, or a visitor's own header): not the operator's own call.
        forwarded = operator.get(f"{origin}/healthz", headers={"X-Forwarded-For": "127.0.0.1"}, timeout=10)
        assert set(forwarded.json()) == STATUS_ONLY, forwarded.json()


def test_a_flood_of_healthz_runs_its_checks_at_most_once_a_second_per_process(stack, origin, settings):
    processes = settings.int("WEB_WORKERS") * settings.int("WEB_INSTANCES")

    def rounds() -> float:
        value = metric(requests.get(f"{origin}/metrics", timeout=10).text, "breakwater_health_checks_total")
        assert value is not None, "/metrics has no breakwater_health_checks_total"
        return value

    stack.wait_healthy(timeout=60)
    before = rounds()
    started = time.monotonic()

    def call(i: int) -> int:
        with client(f"127.0.1.{i + 2}") as visitor:
            return visitor.get(f"{origin}/healthz", timeout=30).status_code

    with ThreadPoolExecutor(50) as pool:
        codes = list(pool.map(call, range(50)))
    elapsed = time.monotonic() - started
    ran = rounds() - before
    assert codes == [200] * 50, codes
    # One round per process per started second of the flood, plus the edge's probe of the origin (every 2 s)
    # and the wait_healthy above, which fall into the same windows.
    assert ran <= processes * (math.ceil(elapsed) + 1), f"{ran:.0f} rounds of checks for 50 calls in {elapsed:.2f}s"


# ---------------------------------------------------------------------------------------------------- Flower
def _flower(layout: Layout):
    return next(p for p in programs(layout) if p.name == "flower")


def _exposed_without_auth(command: str, environment: str | dict) -> str | None:
    """Why Flower's command would be open to the network, or None when it binds loopback or asks for auth."""
    address = re.search(r"--address[= ](\S+)", command)
    bound = address.group(1).strip("'\"") if address else "0.0.0.0"  # Flower's default: every interface
    if bound.startswith("127.") or bound in ("localhost", "::1"):
        return None
    env = environment if isinstance(environment, dict) else dict(re.findall(r'(\w+)="([^"]*)"', environment))
    auth = re.search(r"--basic[-_]auth[= ](\S+)", command) or env.get("FLOWER_BASIC_AUTH")
    if auth or "--auth=" in command:
        return None
    return f"Flower binds {bound} without authentication: {command}"


def test_flower_is_on_loopback_or_asks_for_a_password_in_every_layout(tmp_path):
    from breakwater_tools.stack import Stack
    from breakwater_tools.stack.cluster import cluster_env

    base = {"BREAKWATER_STATE_DIR": str(tmp_path / "state"), "BREAKWATER_FLOWER": "1"}
    # One machine, the default HOST.
    one = _flower(Layout(Settings.load(base)))
    assert "--address=127.0.0.1" in one.command and _exposed_without_auth(one.command, one.environment) is None
    # One machine on a LAN address, and the namespace cluster (HOST = the data host's address).
    lan = _flower(Layout(Settings.load({**base, "BREAKWATER_HOST": "10.9.8.7", "BREAKWATER_FLOWER_PASSWORD": "pw"})))
    assert _exposed_without_auth(lan.command, lan.environment) is None
    assert 'FLOWER_BASIC_AUTH="breakwater:pw"' in lan.environment and "pw" not in lan.command  # not in `ps`
    cluster = Stack(cluster_env(4, {**base, "BREAKWATER_FLOWER_PASSWORD": "pw"}), echo=lambda _m: None)
    flower = _flower(cluster.layout)
    assert flower.host == cluster.layout.cluster.data_host
    assert _exposed_without_auth(flower.command, flower.environment) is None
    # No password generated yet (the stack generates one before it renders): loopback, never open.
    bare = Stack(cluster_env(4, base), echo=lambda _m: None)
    flower = _flower(bare.layout)
    assert "--address=127.0.0.1" in flower.command, flower.command
    # docker-compose: Flower listens on the container's every interface, so it asks for a password; its port
    # is published on the machine's loopback only.
    service = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["flower"]
    assert _exposed_without_auth(" ".join(service["command"]), service["environment"]) is None, service
    assert service["environment"]["FLOWER_BASIC_AUTH"] == "breakwater:${BREAKWATER_FLOWER_PASSWORD:?set it in .env}"
    assert all(p.startswith("127.0.0.1:") for p in service["ports"]), service["ports"]


# ---------------------------------------------------------------------------------------------------- purge ACL
def test_the_clusters_purge_acl_names_only_the_hosts_that_purge(tmp_path):
    from breakwater.queues.routing import ROUTES
    from breakwater_tools.stack import Stack
    from breakwater_tools.stack.cluster import cluster_env

    assert ROUTES["breakwater.pages.purge"] == "purge"  # only the purge workers send PURGE
    st = Stack(cluster_env(4, {"BREAKWATER_STATE_DIR": str(tmp_path / "state")}), echo=lambda _m: None)
    c = st.layout.cluster
    purgers = [host.address for _name, queue, host in st.layout.workers() if queue == "purge"]
    assert purgers == [h.address for h in c.app_hosts]
    assert st.settings.edge_purge_acl == purgers
    vcl = render_edge(backend="10.0.0.1:8080", purge_acl=st.settings.edge_purge_acl, grace=10, edge_dir="/x")
    acl = re.search(r"acl purgers \{(.*?)\}", vcl, re.S).group(1)
    entries = re.findall(r'"([^"]+)"', acl)
    assert sorted(entries) == sorted(purgers)
    assert "/" not in acl, acl  # no network: not the bridge, not the visitors' gateway
    assert not {c.gateway, c.edge_host.address, c.data_host.address} & set(entries), entries
    # An operator's own list still wins.
    own = Stack(
        cluster_env(4, {"BREAKWATER_STATE_DIR": str(tmp_path / "s2"), "BREAKWATER_EDGE_PURGE_ACL": "10.1.1.1"}),
        echo=lambda _m: None,
    )
    assert own.settings.edge_purge_acl == ["10.1.1.1"]
