"""The Varnish edge (the CDN stand-in), with its real VCL.

Two setups: the test stack's edge in front of the real Nginx origin (static files in STATIC_DIR are cached with the
default TTL), and a second varnishd with the same VCL and the same flags in front of a scripted origin, for the
headers the site does not send yet (Cache-Control variants, xkey / Surrogate-Key, 5xx).
"""

from __future__ import annotations

import http.client
import shlex
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from prometheus_client import REGISTRY

from breakwater.edge.purge import PurgeError, purge
from breakwater.settings import Settings
from breakwater_tools.stack import permissions, users
from breakwater_tools.stack.files import write_private
from breakwater_tools.stack.layout import Layout
from breakwater_tools.stack.ports import free_ports
from breakwater_tools.stack.render import render_edge
from breakwater_tools.stack.supervised import programs
from operator_token import ops_headers


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def raw_purge(base: str, path: str, source: str = "127.0.0.1", headers: dict | None = None) -> tuple[int, bytes]:
    """A PURGE sent from ``source`` (any 127.x address works as a source on Linux loopback)."""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5, source_address=(source, 0))
    try:
        conn.request("PURGE", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def origin_health(edge: str) -> str:
    return requests.get(f"{edge}/_edge/health", timeout=5).json()["origin"]


def reported_origin(settings) -> str:
    """The edge's view of the origin as the app's /healthz reports it (asked of gunicorn directly: it answers
    while Nginx, the origin the edge probes, is down)."""
    url = f"http://{settings['HOST']}:{settings.int('APP_PORT')}/healthz"
    return requests.get(url, timeout=10).json()["edge"]["origin"]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# ---------------------------------------------------------------------------------- the stack's edge
@pytest.fixture()
def page(settings, edge):
    """``page()`` -> (path, body) of a new static file the origin serves from STATIC_DIR."""

    def make() -> tuple[str, str]:
        name = f"edge-{uuid.uuid4().hex[:10]}.txt"
        body = f"page {name}\n"
        (Path(settings["STATIC_DIR"]) / name).write_text(body)
        return f"/{name}", body

    return make


def test_second_get_is_a_hit_and_purge_of_the_url_drops_it(http, edge, page):
    path, body = page()
    first = http.get(edge + path, timeout=5)
    assert first.status_code == 200 and first.text == body
    assert first.headers["X-Edge-Cache"] == "MISS"
    second = http.get(edge + path, timeout=5)
    assert second.headers["X-Edge-Cache"] == "HIT" and second.text == body
    assert "Age" in second.headers
    status, answer = raw_purge(edge, path)
    assert status == 200 and answer == b'{"purged": 1}'
    assert http.get(edge + path, timeout=5).headers["X-Edge-Cache"] == "MISS"


def test_purge_from_outside_the_acl_is_forbidden_and_purges_nothing(http, edge, page):
    path, _ = page()
    http.get(edge + path, timeout=5)
    assert http.get(edge + path, timeout=5).headers["X-Edge-Cache"] == "HIT"
    assert raw_purge(edge, path, source="127.0.0.2")[0] == 403
    assert raw_purge(edge, "/", source="127.0.0.2", headers={"xkey": "home"})[0] == 403
    assert raw_purge(edge, path, source="127.0.0.2", headers={"X-Purge-Soft": "1"})[0] == 403
    assert http.get(edge + path, timeout=5).headers["X-Edge-Cache"] == "HIT"


def test_anonymous_pages_ignore_cookies_and_personal_routes_pass(edge, page):
    path, _ = page()
    assert requests.get(edge + path, cookies={"_ga": "one"}, timeout=5).headers["X-Edge-Cache"] == "MISS"
    assert requests.get(edge + path, cookies={"bw_session": "someone"}, timeout=5).headers["X-Edge-Cache"] == "HIT"
    # An app page (the homepage, which sends Vary: Cookie) is shared too.
    requests.get(edge + "/", cookies={"bw_session": "a"}, timeout=10)
    home = requests.get(edge + "/", cookies={"bw_session": "b"}, timeout=10)
    assert home.status_code == 200 and home.headers["X-Edge-Cache"] == "HIT"
    # Log-in pages, the account API and operator routes are never cached and keep their cookies.
    for route in ("/login", "/api/auth/me", "/healthz", "/editor"):
        for _ in range(2):
            resp = requests.get(edge + route, timeout=10, allow_redirects=False)
            assert resp.headers["X-Edge-Cache"] == "PASS", (route, resp.headers)
    assert "bw_session=" in requests.get(edge + "/login", timeout=10).headers.get("Set-Cookie", "")
    # The public read APIs are cached.
    requests.get(edge + "/api/regions", timeout=10)
    assert requests.get(edge + "/api/regions", timeout=10).headers["X-Edge-Cache"] == "HIT"


def test_origin_down_the_edge_serves_the_stale_copy(stack, http, edge, page):
    path, body = page()
    never_cached, _ = page()
    fetch_sent = time.monotonic()
    assert http.get(edge + path, timeout=5).headers["X-Edge-Cache"] == "MISS"
    fetched = time.monotonic()  # the copy was fetched between fetch_sent and fetched
    assert raw_purge(edge, path, headers={"X-Purge-Soft": "1"})[0] == 200  # expired now, kept in grace
    rpc = stack.supervisor.rpc()
    rpc.stopProcess("nginx")
    try:
        # Before the probe notices: the refresh fails and the stale copy is served instead of the error.
        resp = http.get(edge + path, timeout=10)
        assert (resp.status_code, resp.headers["X-Edge-Cache"], resp.text) == (200, "STALE", body)
        first_age = int(resp.headers["Age"])
        wait_for(lambda: origin_health(edge) == "sick", timeout=20, what="the edge's probe to see the origin down")
        # and /healthz says so (each process reuses its last round of checks for up to a second)
        wait_for(lambda: reported_origin(stack.settings) == "sick", timeout=5, what="/healthz: origin sick")
        sent = time.monotonic()
        resp = http.get(edge + path, timeout=10)
        answered = time.monotonic()
        assert (resp.status_code, resp.headers["X-Edge-Cache"], resp.text) == (200, "STALE", body)
        # The stale copy tells its true age: the whole seconds since it was fetched, grown since the first
        # stale answer (the probe needs two failed checks, 2 s apart, to call the origin sick).
        age = int(resp.headers["Age"])
        assert sent - fetched - 1 <= age <= answered - fetch_sent + 1, (age, sent - fetched, answered - fetch_sent)
        assert age > first_age, (first_age, age)
        assert http.get(edge + never_cached, timeout=10).status_code == 503
    finally:
        rpc.startProcess("nginx")
    wait_for(lambda: origin_health(edge) == "healthy", timeout=30, what="the origin to be healthy again")
    # Healthy origin and no stale-while-revalidate: the expired copy is refreshed, not served.
    assert http.get(edge + path, timeout=5).headers["X-Edge-Cache"] == "MISS"
    stack.wait_healthy(timeout=60)


def test_purge_client_against_the_real_edge(settings, edge, page, http):
    (one, _), (two, _) = page(), page()
    for path in (one, two, one, two):
        http.get(edge + path, timeout=5)
    before = sample("breakwater_edge_purge_total", result="ok")
    report = purge([f"https://www.example.org{one}"], [], settings.cdn_purge_urls)
    assert report.ok and report.endpoints[0].purged == 1 and report.urls == [one]
    assert sample("breakwater_edge_purge_total", result="ok") == before + 1
    assert http.get(edge + one, timeout=5).headers["X-Edge-Cache"] == "MISS"
    assert http.get(edge + two, timeout=5).headers["X-Edge-Cache"] == "HIT"


def test_purge_client_names_an_unreachable_endpoint_and_counts_it(settings, edge, page, http):
    path, _ = page()
    http.get(edge + path, timeout=5)
    (dead_port,) = free_ports(1)
    dead = f"http://127.0.0.1:{dead_port}/"
    failures = sample("breakwater_edge_purge_failures_total", endpoint=f"127.0.0.1:{dead_port}")
    errors = sample("breakwater_edge_purge_total", result="error")
    with pytest.raises(PurgeError) as info:
        purge([path], ["k1", "k2"], [dead, *settings.cdn_purge_urls], timeout=1.0)
    message = str(info.value)
    assert dead in message and "1 of 2 endpoint(s)" in message
    assert settings.cdn_purge_urls[0] not in message
    assert [e.ok for e in info.value.report.endpoints] == [False, True]  # the live edge was still purged
    assert http.get(edge + path, timeout=5).headers["X-Edge-Cache"] == "MISS"
    assert sample("breakwater_edge_purge_failures_total", endpoint=f"127.0.0.1:{dead_port}") == failures + 1
    assert sample("breakwater_edge_purge_total", result="error") == errors + 2  # the URL and the key batch


def test_status_and_healthz_show_the_edge(stack, http, origin):
    row = next(r for r in stack.status() if r["name"] == "edge")
    assert row["role"] == "edge/CDN" and row["healthy"] and row["port"] == stack.settings.int("EDGE_PORT")
    report = http.get(f"{origin}/healthz", headers=ops_headers(stack.settings), timeout=10).json()
    assert report["edge"]["up"] is True
    # The origin is up (a sick one is the stale-copy test's case): the edge's probe says so. Its verdict
    # follows two probes, 2 s apart: a hiccup of the shared machine may delay it, never turn it around.
    wait_for(lambda: reported_origin(stack.settings) == "healthy", timeout=30, what="/healthz: origin healthy")


# ---------------------------------------------------------------------------------- a scripted origin
class ScriptedOrigin(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int):
        super().__init__(("127.0.0.1", port), _Handler)
        self.routes: dict[str, tuple[int, dict[str, str], str]] = {}
        self.hits: dict[str, int] = {}
        self.down = False


class _Handler(BaseHTTPRequestHandler):
    server: ScriptedOrigin

    def do_GET(self):
        if self.path == "/healthz":
            status, headers, body = (503 if self.server.down else 200), {}, "{}"
        else:
            self.server.hits[self.path] = self.server.hits.get(self.path, 0) + 1
            status, headers, body = self.server.routes.get(self.path, (404, {}, "not found"))
        data = body.encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args):
        pass


@pytest.fixture(scope="module")
def scripted(tmp_path_factory):
    """(edge URL, origin): a varnishd with the stack's VCL and flags in front of a scripted origin."""
    origin_port, edge_port = free_ports(2)
    origin = ScriptedOrigin(origin_port)
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    state = tmp_path_factory.mktemp("edge")
    settings = Settings.load(
        {
            "BREAKWATER_STATE_DIR": str(state),
            "BREAKWATER_ORIGIN_PORT": str(origin_port),
            "BREAKWATER_EDGE_PORT": str(edge_port),
        }
    )
    layout = Layout(settings)
    layout.edge.mkdir(parents=True)
    write_private(
        layout.edge_vcl,
        render_edge(
            backend=f"127.0.0.1:{origin_port}",
            purge_acl=settings.edge_purge_acl,
            grace=settings.int("EDGE_GRACE"),
            edge_dir=str(layout.edge),
        ),
    )
    users.prepare(layout)  # as root the edge's child runs as the service user: it reads the VCL there
    permissions.secure_state(layout)
    command = next(p for p in programs(layout) if p.name == "edge").command
    log = (state / "varnishd.log").open("w")
    proc = subprocess.Popen(shlex.split(command), stdout=log, stderr=subprocess.STDOUT)
    edge = f"http://127.0.0.1:{edge_port}"

    def up() -> bool:
        assert proc.poll() is None, (state / "varnishd.log").read_text()
        try:
            return requests.get(f"{edge}/_edge/health", timeout=1).ok
        except requests.ConnectionError:
            return False

    try:
        wait_for(up, timeout=30, what="varnishd to start")
        yield edge, origin
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()
        origin.shutdown()


def route(origin: ScriptedOrigin, headers: dict[str, str], body: str | None = None, status: int = 200) -> str:
    path = f"/r-{uuid.uuid4().hex[:10]}"
    origin.routes[path] = (status, headers, body or f"body of {path}")
    return path


def test_purge_by_surrogate_key_drops_exactly_the_tagged_objects(scripted):
    edge, origin = scripted
    long = {"Cache-Control": "max-age=300"}
    a = route(origin, {**long, "xkey": "article-1 home"})
    b = route(origin, {**long, "Surrogate-Key": "article-2 home"})  # copied into xkey by the edge
    c = route(origin, {**long, "xkey": "article-3"})
    for path in (a, b, c):
        first = requests.get(edge + path, timeout=5)
        assert "xkey" not in first.headers and "Surrogate-Key" not in first.headers
        assert requests.get(edge + path, timeout=5).headers["X-Edge-Cache"] == "HIT"
    status, answer = raw_purge(edge, "/", headers={"xkey": "article-1"})
    assert (status, answer) == (200, b'{"purged": 1}')
    assert [requests.get(edge + p, timeout=5).headers["X-Edge-Cache"] for p in (a, b, c)] == ["MISS", "HIT", "HIT"]
    report = purge([], ["home"], [edge + "/"])
    assert report.endpoints[0].purged == 2
    assert [requests.get(edge + p, timeout=5).headers["X-Edge-Cache"] for p in (a, b, c)] == ["MISS", "MISS", "HIT"]
    assert origin.hits[c] == 1
    debug = requests.get(edge + c, headers={"X-Edge-Debug": "1"}, timeout=5)
    assert debug.headers["xkey"] == "article-3"


def test_cache_control_is_honoured(scripted):
    edge, origin = scripted
    uncached = [
        route(origin, {"Cache-Control": "private, max-age=300"}),
        route(origin, {"Cache-Control": "no-store"}),
        route(origin, {"Cache-Control": "max-age=300", "Set-Cookie": "bw_session=x; Path=/"}),
        route(origin, {"Cache-Control": "max-age=0"}),
    ]
    s_maxage = route(origin, {"Cache-Control": "max-age=0, s-maxage=300"})
    for path in [*uncached, s_maxage]:
        for _ in range(2):
            requests.get(edge + path, timeout=5)
    assert [origin.hits[p] for p in uncached] == [2, 2, 2, 2]
    assert origin.hits[s_maxage] == 1
    assert requests.get(edge + uncached[2], timeout=5).headers["Set-Cookie"].startswith("bw_session=x")


def test_expired_objects_refresh_unless_stale_while_revalidate_allows(scripted):
    edge, origin = scripted
    strict = route(origin, {"Cache-Control": "max-age=1"})
    swr = route(origin, {"Cache-Control": "max-age=1, stale-while-revalidate=30"})
    for path in (strict, swr):
        requests.get(edge + path, timeout=5)
        assert requests.get(edge + path, timeout=5).headers["X-Edge-Cache"] == "HIT"
    time.sleep(1.6)
    for path in (strict, swr):
        origin.routes[path] = (200, origin.routes[path][1], "new")
    resp = requests.get(edge + strict, timeout=5)
    assert (resp.text, resp.headers["X-Edge-Cache"]) == ("new", "MISS")  # fetched before answering
    resp = requests.get(edge + swr, timeout=5)
    assert (resp.text, resp.headers["X-Edge-Cache"]) == (f"body of {swr}", "STALE")  # answered, refreshed behind
    wait_for(lambda: origin.hits[swr] == 2, timeout=5, what="the background refresh")

    def refreshed() -> bool:
        # The origin counts the request when it arrives; Varnish inserts the new object a moment
        # later, and until then it keeps answering the stale copy.
        resp = requests.get(edge + swr, timeout=5)
        return (resp.text, resp.headers["X-Edge-Cache"]) == ("new", "HIT")

    wait_for(refreshed, timeout=5, what="the refreshed object to replace the stale one")
    assert origin.hits[swr] == 2  # one background fetch, not one per stale read


def test_origin_errors_and_a_sick_origin_get_the_stale_copy(scripted):
    edge, origin = scripted
    path = route(origin, {"Cache-Control": "max-age=1"}, body="good")
    assert requests.get(edge + path, timeout=5).text == "good"
    time.sleep(1.6)
    origin.routes[path] = (500, {}, "broken")
    resp = requests.get(edge + path, timeout=5)
    assert (resp.status_code, resp.text, resp.headers["X-Edge-Cache"]) == (200, "good", "STALE")
    origin.down = True
    try:
        wait_for(lambda: origin_health(edge) == "sick", timeout=20, what="the probe to mark the origin sick")
        hits = origin.hits[path]
        resp = requests.get(edge + path, timeout=5)
        assert (resp.status_code, resp.text, resp.headers["X-Edge-Cache"]) == (200, "good", "STALE")
        assert origin.hits[path] == hits  # a sick origin is not even asked
    finally:
        origin.down = False
    wait_for(lambda: origin_health(edge) == "healthy", timeout=20, what="the probe to see the origin again")
