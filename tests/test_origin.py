"""The Nginx origin (nginx/origin.conf.j2): emitted files first, the app otherwise, the microcache, rate limits.

The shared stack runs with the microcache off; the microcache and rate-limit tests start a second Nginx from
the same template (microcache on, low rates) on a free port, in front of the stack's app or a throwaway
upstream that counts its requests.
"""

from __future__ import annotations

import getpass
import gzip
import http.server
import os
import signal
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from breakwater_tools.stack.layout import Layout
from breakwater_tools.stack.ports import accepts, free_ports
from breakwater_tools.stack.render import origin_options, render_nginx
from breakwater_tools.stack.supervised import app_upstreams, programs

IDENTITY = {"Accept-Encoding": "identity"}


def html_cc(settings) -> str:
    return str(origin_options(settings)["html_cc"])


# --------------------------------------------------------------------------- emitted files
def emit(path: Path, body: bytes, twin: bytes | None = None) -> None:
    """Write ``path`` and its .gz twin the way the emitter does: temp file, os.replace, same mtime."""
    path.parent.mkdir(parents=True, exist_ok=True)
    packed = gzip.compress(twin if twin is not None else body, compresslevel=9, mtime=0)
    for target, data in ((path, body), (path.with_name(path.name + ".gz"), packed)):
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
    mtime = path.stat().st_mtime
    os.utime(path.with_name(path.name + ".gz"), (mtime, mtime))


def wait_for(check, timeout: float = 5.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


@pytest.fixture()
def static(settings, origin):
    """Emit files into the stack's STATIC_DIR; removed afterwards (and waited out of Nginx's file cache).

    Tests use their own URLs (fresh slugs, fresh asset names): the stack's own build owns the rest.
    """
    root = Path(settings["STATIC_DIR"])
    written: list[tuple[Path, str]] = []

    def write(rel: str, body: bytes, url: str | None = None, twin: bytes | None = None) -> Path:
        path = root / rel
        emit(path, body, twin)
        written.append((path, url or ""))
        return path

    yield write
    for path, url in written:
        for f in (path, path.with_name(path.name + ".gz")):
            f.unlink(missing_ok=True)
        if url:
            wait_for(lambda u=url: requests.get(origin + u, timeout=5).headers.get("X-Origin-Cache") != "STATIC")


def page(marker: str) -> bytes:
    return (f"<!doctype html><title>{marker}</title>" + "<p>emitted page</p>" * 200 + "<!-- end -->").encode()


# --------------------------------------------------------------------------- the rendered configuration
def nginx_t(conf: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["nginx", "-t", "-p", str(conf.parent), "-c", str(conf)], capture_output=True, text=True, timeout=30
    )


def test_rendered_configs_pass_nginx_t(stack, settings, tmp_path):
    result = nginx_t(stack.layout.nginx / "nginx.conf")
    assert result.returncode == 0, result.stderr
    # With the microcache, several app servers and other rates (what `make run` may render).
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        render_nginx(
            upstreams=["127.0.0.1:1", "127.0.0.1:2", "app.internal:8000"],
            listen="127.0.0.1:1",
            static_dir=str(tmp_path),
            nginx_dir=str(tmp_path),
            access_log=str(tmp_path / "access.log"),
            settings=settings.with_values(ORIGIN_MICROCACHE="1", ORIGIN_LOGIN_RATE="3r/s"),
        ).replace("app.internal", "127.0.0.1")
    )
    result = nginx_t(conf)
    assert result.returncode == 0, result.stderr
    text = conf.read_text()
    assert "server 127.0.0.1:2 max_fails=2 fail_timeout=5s;" in text and "keepalive 32;" in text
    assert "proxy_cache_lock on;" in text and "rate=3r/s" in text


def test_bad_rate_setting_names_the_variable(settings):
    with pytest.raises(ValueError, match="BREAKWATER_ORIGIN_WRITE_RATE"):
        origin_options(settings.with_values(ORIGIN_WRITE_RATE="lots"))


def test_two_web_instances_are_two_programs_behind_one_upstream(settings):
    layout = Layout(settings.with_values(WEB_INSTANCES="2", APP_SERVERS="10.0.0.7:8000"))
    apps = {p.name: p for p in programs(layout) if p.role == "web"}
    port = settings.int("APP_PORT")
    assert {name: p.port for name, p in apps.items()} == {"app": port, "app2": port + 1}
    assert f"{settings['HOST']}:{port + 1}" in apps["app2"].command and "gunicorn-app2.pid" in apps["app2"].command
    assert app_upstreams(layout) == [f"{settings['HOST']}:{port}", f"{settings['HOST']}:{port + 1}", "10.0.0.7:8000"]


# --------------------------------------------------------------------------- emitted pages on the stack's origin
def test_static_page_with_validators_cache_control_and_keys(origin, settings, static, slug):
    body = page(slug)
    static(f"articles/{slug}/index.html", body, url=f"/articles/{slug}")
    resp = requests.get(f"{origin}/articles/{slug}", headers=IDENTITY, timeout=5)
    assert resp.status_code == 200 and resp.content == body
    assert resp.headers["X-Origin-Cache"] == "STATIC"
    assert resp.headers["Cache-Control"] == html_cc(settings)
    assert resp.headers["xkey"] == f"html article-{slug}"
    assert resp.headers["Surrogate-Key"] == f"html article-{slug}"
    assert resp.headers["ETag"] and resp.headers["Last-Modified"]
    assert "X-Cache" not in resp.headers  # the app never saw it
    same = requests.get(f"{origin}/articles/{slug}/", headers=IDENTITY, timeout=5)  # trailing slash too
    assert same.content == body

    for validator in ({"If-None-Match": resp.headers["ETag"]}, {"If-Modified-Since": resp.headers["Last-Modified"]}):
        conditional = requests.get(f"{origin}/articles/{slug}", headers={**IDENTITY, **validator}, timeout=5)
        assert conditional.status_code == 304, validator
        assert conditional.content == b""


def test_gzip_clients_get_the_gz_twin(origin, static, slug):
    # The twin decompresses to a marked copy, so on-the-fly compression of the plain file cannot pass for it.
    twin_source = page(slug) + b"<!-- from the twin -->"
    path = static(f"articles/{slug}/index.html", page(slug), url=f"/articles/{slug}", twin=twin_source)
    resp = requests.get(f"{origin}/articles/{slug}", headers={"Accept-Encoding": "gzip"}, stream=True, timeout=5)
    raw = resp.raw.read(decode_content=False)
    assert resp.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in resp.headers["Vary"]
    assert raw == path.with_name("index.html.gz").read_bytes()
    assert gzip.decompress(raw) == twin_source


def test_category_pages_and_query_strings(origin, static, slug):
    static(f"categories/{slug}/index.html", page("first"), url=f"/categories/{slug}")
    static(f"categories/{slug}/page/2/index.html", page("second"), url=f"/categories/{slug}/page/2")
    first = requests.get(f"{origin}/categories/{slug}", headers=IDENTITY, timeout=5)
    assert first.headers["X-Origin-Cache"] == "STATIC" and first.content == page("first")
    assert first.headers["xkey"] == f"html category-{slug}"
    second = requests.get(f"{origin}/categories/{slug}/page/2/", headers=IDENTITY, timeout=5)
    assert second.content == page("second") and second.headers["xkey"] == f"html category-{slug}"
    # A query string cannot be answered from a file: the app gets it although the file exists.
    queried = requests.get(f"{origin}/categories/{slug}?page=2", headers=IDENTITY, allow_redirects=False, timeout=5)
    assert queried.headers.get("X-Origin-Cache") != "STATIC"
    assert "X-Request-ID" in queried.headers  # the app's answer (a redirect to /page/2 or a 404)


def test_a_missing_file_falls_back_to_the_app_until_emitted(origin, static, slug):
    before = requests.get(f"{origin}/articles/{slug}", headers=IDENTITY, timeout=5)
    assert before.status_code == 404 and "X-Request-ID" in before.headers  # the app's answer
    assert before.headers.get("X-Origin-Cache") != "STATIC"

    static(f"articles/{slug}/index.html", page(slug), url=f"/articles/{slug}")

    def emitted():
        resp = requests.get(f"{origin}/articles/{slug}", headers=IDENTITY, timeout=5)
        return resp if resp.content == page(slug) else None

    resp = wait_for(emitted)
    assert resp, "the emitted page was not served"
    assert resp.headers["X-Origin-Cache"] == "STATIC" and "X-Request-ID" not in resp.headers


def test_homepage_is_the_emitted_file_for_anonymous_visitors(origin, settings):
    index = Path(settings["STATIC_DIR"]) / "index.html"  # the stack builds the pages when it starts

    def served():
        resp = requests.get(f"{origin}/", headers=IDENTITY, timeout=5)
        return resp if index.is_file() and resp.content == index.read_bytes() else None

    resp = wait_for(served)
    assert resp, "the emitted homepage was not served"
    assert resp.headers["xkey"] == "html home ads" and resp.headers["X-Origin-Cache"] == "STATIC"
    assert resp.headers["Cache-Control"] == html_cc(settings)
    # Signed-in visitors get the same file (the page's script fetches the account menu)...
    signed_in = requests.get(f"{origin}/", headers=IDENTITY, cookies={"bw_session": "x", "bw_signed_in": "1"})
    assert signed_in.headers["X-Origin-Cache"] == "STATIC"
    # ...a query string or a reader of their own writes goes to the app.
    for kwargs in ({"params": {"page": "2"}}, {"cookies": {"bw_rw": "1"}}, {"headers": {"X-Causal-Token": "x"}}):
        dynamic = requests.get(f"{origin}/", allow_redirects=False, timeout=5, **kwargs)
        assert "X-Request-ID" in dynamic.headers and dynamic.headers.get("X-Origin-Cache") != "STATIC", kwargs
    # The app's pages for a signed-in visitor are private.
    personal = requests.get(f"{origin}/regions?from=test", cookies={"bw_session": "x"}, timeout=5)
    assert personal.status_code == 200 and personal.headers["Cache-Control"] == "private, no-store"


def test_a_replaced_page_is_served_new_at_once(origin, static, slug):
    """No cached descriptor may hide a publish: the purge follows the write at once, and an edge that
    refetched the old page then would keep it for a day."""
    url = f"{origin}/articles/{slug}"
    static(f"articles/{slug}/index.html", page("old"), url=f"/articles/{slug}")
    for _ in range(10):  # new connections: every worker opens the old file
        assert requests.get(url, headers=IDENTITY, timeout=5).content == page("old")
    static(f"articles/{slug}/index.html", page("new"), url=f"/articles/{slug}")  # os.replace: a new inode
    served = [requests.get(url, headers=IDENTITY, timeout=5).content for _ in range(10)]
    assert served == [page("new")] * 10, "a worker served the replaced file after the replace"


def test_the_access_log_skips_emitted_pages_and_keeps_what_reaches_the_app(origin, settings, static, slug):
    """Behind the edge a static hit is a page view the edge logs; the origin logs what reaches the app."""
    static(f"articles/{slug}/index.html", page("logged?"), url=f"/articles/{slug}")
    assert requests.get(f"{origin}/articles/{slug}", headers=IDENTITY, timeout=5).headers["X-Origin-Cache"] == "STATIC"
    assert "X-Request-ID" in requests.get(f"{origin}/articles/{slug}?from=log-test", timeout=5).headers
    log = Path(settings["STATE_DIR"]) / "logs" / "nginx-access.log"

    def logged() -> list[str]:
        return [line for line in log.read_text().splitlines() if f"/articles/{slug}" in line]

    # Each Nginx worker buffers its lines and flushes them every second.
    assert wait_for(lambda: [line for line in logged() if f"/articles/{slug}?from=log-test" in line], timeout=5)
    time.sleep(1.5)
    lines = logged()
    assert not [line for line in lines if f"GET /articles/{slug} HTTP" in line], lines


def test_hashed_assets_are_immutable_and_ignore_the_query(origin, static):
    name = f"site.{uuid.uuid4().hex[:10]}.css"
    css = b"body { color: #123; }\n" * 50
    static(f"assets/{name}", css)
    resp = requests.get(f"{origin}/assets/{name}?v=1", headers=IDENTITY, timeout=5)
    assert resp.status_code == 200 and resp.content == css
    assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert resp.headers["Content-Type"].startswith("text/css")
    assert resp.headers["X-Origin-Cache"] == "STATIC"
    data = f"{uuid.uuid4().hex[:10]}.json"
    static(f"regions-data/cn.{data}", b'{"regions": []}')
    assert "immutable" in requests.get(f"{origin}/regions-data/cn.{data}", timeout=5).headers["Cache-Control"]
    assert requests.get(f"{origin}/assets/site.0000000000.css", timeout=5).status_code == 404


def test_private_pages_are_never_cacheable(origin):
    for path in ("/login", "/register", "/editor"):
        resp = requests.get(origin + path, allow_redirects=False, timeout=5)
        assert resp.headers["Cache-Control"] == "private, no-store", path
    assert requests.get(f"{origin}/healthz", timeout=5).headers["Cache-Control"] == "no-store"  # the app's own
    api = requests.get(f"{origin}/api/home", timeout=5)
    assert api.status_code == 200 and "public" not in api.headers.get("Cache-Control", "")


# --------------------------------------------------------------------------- a second Nginx: microcache, limits
class SecondNginx:
    def __init__(self, directory: Path, url: str, proc: subprocess.Popen):
        self.dir, self.url, self.proc = directory, url, proc

    def upstream_requests(self, needle: str) -> int:
        """Requests for URLs containing ``needle`` that reached an upstream, from the access log."""
        log = self.dir / "access.log"
        lines = log.read_text().splitlines() if log.exists() else []
        return sum(1 for line in lines if needle in line and " up=-" not in line)


@pytest.fixture()
def second_nginx(settings, tmp_path):
    started: list[SecondNginx] = []

    def start(upstream: str, **overrides: str) -> SecondNginx:
        directory = tmp_path / f"nginx{len(started)}"
        (directory / "static").mkdir(parents=True)
        port = free_ports(1)[0]
        conf = directory / "nginx.conf"
        conf.write_text(
            render_nginx(
                upstreams=[upstream],
                listen=f"127.0.0.1:{port}",
                static_dir=str(directory / "static"),
                nginx_dir=str(directory),
                access_log=str(directory / "access.log"),
                settings=settings.with_values(ORIGIN_MICROCACHE="1", **overrides),
                os_user=getpass.getuser() if os.geteuid() == 0 else "",
            ).replace(" buffer=64k flush=1s", "")  # the tests read the access log at once
        )
        proc = subprocess.Popen(
            ["nginx", "-p", str(directory), "-c", str(conf), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        server = SecondNginx(directory, f"http://127.0.0.1:{port}", proc)
        started.append(server)
        if not wait_for(lambda: accepts("127.0.0.1", port) or proc.poll() is not None, timeout=10) or proc.poll():
            raise AssertionError(f"nginx did not start: {proc.stderr.read().decode() if proc.stderr else ''}")
        return server

    yield start
    for server in started:
        server.proc.send_signal(signal.SIGTERM)  # fast shutdown: no wait for idle keep-alives
        try:
            server.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.proc.kill()


class CountingUpstream:
    """A throwaway app server: counts requests per path, answers /slow* after half a second."""

    def __init__(self):
        self.hits: dict[str, int] = {}
        self.stopped = False
        lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                if outer.stopped:  # a kept-alive connection after stop(): hang up like a dead server
                    self.close_connection = True
                    return
                with lock:
                    n = outer.hits[self.path] = outer.hits.get(self.path, 0) + 1
                if self.path.startswith("/slow"):
                    time.sleep(0.5)
                body = f"<p>{self.path} answer {n}</p>".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                if "cookie" in self.path:
                    self.send_header("Set-Cookie", "bw_session=new; HttpOnly")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        if self.stopped:
            return
        self.stopped = True
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def counting_upstream():
    upstream = CountingUpstream()
    yield upstream
    upstream.stop()


@pytest.fixture()
def micro(second_nginx, settings) -> SecondNginx:
    """A second Nginx with the microcache on, in front of the stack's app."""
    return second_nginx(f"{settings['HOST']}:{settings.int('APP_PORT')}")


def test_microcache_serves_a_second_anonymous_get_from_cache(micro):
    url = f"{micro.url}/?mc={uuid.uuid4().hex}"
    first = requests.get(url, timeout=5)
    second = requests.get(url, timeout=5)
    assert first.status_code == second.status_code == 200
    assert first.headers["X-Origin-Cache"] == "MISS"
    assert second.headers["X-Origin-Cache"] == "HIT"
    assert second.content == first.content
    assert "X-Cache" in second.headers  # the app's own header is kept


@pytest.mark.parametrize(
    "personal",
    [{"Cookie": "bw_session=abc"}, {"Cookie": "bw_rw=1"}, {"Authorization": "Bearer nothing"}, {"X-Causal-Token": "x"}],
    ids=["session-cookie", "rw-cookie", "authorization", "causal-token"],
)
def test_personal_requests_bypass_the_microcache(micro, personal):
    url = f"{micro.url}/?mc={uuid.uuid4().hex}"
    requests.get(url, timeout=5)  # cached for anonymous visitors...
    # ...another cookie does not make a visitor personal...
    assert requests.get(url, cookies={"_ga": "1"}, timeout=5).headers["X-Origin-Cache"] == "HIT"
    # ...a session, a token or a causal token does.
    for _ in range(2):
        resp = requests.get(url, headers=personal, timeout=5)
        assert resp.headers["X-Origin-Cache"] == "BYPASS"


def test_microcache_key_has_host_and_full_uri(micro):
    key = uuid.uuid4().hex
    url = f"{micro.url}/?mc={key}"
    requests.get(url, timeout=5)
    assert requests.get(url, timeout=5).headers["X-Origin-Cache"] == "HIT"
    assert requests.get(url, headers={"Host": "other.example"}, timeout=5).headers["X-Origin-Cache"] == "MISS"
    assert requests.get(f"{url}&x=1", timeout=5).headers["X-Origin-Cache"] == "MISS"
    assert requests.get(f"{micro.url}/api/home?mc={key}", timeout=5).headers["X-Origin-Cache"] == "MISS"


def test_cold_key_under_50_concurrent_requests_reaches_the_upstream_once(second_nginx, counting_upstream):
    nginx = second_nginx(counting_upstream.address)
    path = f"/slow-{uuid.uuid4().hex}"
    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(lambda _i: requests.get(nginx.url + path, timeout=15), range(50)))
    assert {r.status_code for r in responses} == {200}
    assert {r.content for r in responses} == {f"<p>{path} answer 1</p>".encode()}
    assert counting_upstream.hits[path] == 1, counting_upstream.hits
    assert nginx.upstream_requests(path) == 1


def test_responses_with_set_cookie_are_not_cached(second_nginx, counting_upstream):
    nginx = second_nginx(counting_upstream.address)
    path = f"/cookie-{uuid.uuid4().hex}"
    for _ in range(2):
        assert requests.get(nginx.url + path, timeout=5).headers["X-Origin-Cache"] == "MISS"
    assert counting_upstream.hits[path] == 2


def test_stale_entry_is_served_while_the_upstream_is_down(second_nginx, counting_upstream):
    nginx = second_nginx(counting_upstream.address)
    path = f"/page-{uuid.uuid4().hex}"
    warm = requests.get(nginx.url + path, timeout=5)
    assert warm.status_code == 200
    counting_upstream.stop()
    time.sleep(2.1)  # past the one-second lifetime (Nginx counts it in whole seconds: 1-2 s)
    for _ in range(3):
        resp = requests.get(nginx.url + path, timeout=10)
        assert resp.status_code == 200 and resp.content == warm.content
        assert resp.headers["X-Origin-Cache"] in {"STALE", "UPDATING"}
    assert requests.get(f"{nginx.url}/never-cached", timeout=10).status_code == 502  # really down


def test_login_rate_limit_answers_429_json_under_api(second_nginx, settings, unique_name):
    nginx = second_nginx(
        f"{settings['HOST']}:{settings.int('APP_PORT')}",
        ORIGIN_LOGIN_RATE="1r/m",
        ORIGIN_LOGIN_BURST="1",
        ORIGIN_WRITE_RATE="1r/m",
        ORIGIN_WRITE_BURST="3",
    )
    statuses = []
    for _ in range(3):
        resp = requests.post(f"{nginx.url}/api/auth/login", json={"name": unique_name, "password": "wrong"}, timeout=5)
        statuses.append(resp.status_code)
    assert statuses == [401, 401, 429]  # the app's own limit would allow 5 failures
    assert resp.headers["Content-Type"].split(";")[0] == "application/json"
    assert resp.json()["error"]["code"] == "rate_limited"
    assert "Retry-After" in resp.headers
    # GETs are not writes; other writes share the write zone and get a page outside /api/.
    assert requests.get(f"{nginx.url}/login", timeout=5).status_code == 200
    page_statuses = []
    for _ in range(5):
        page_resp = requests.post(f"{nginx.url}/articles/x", data={"a": "b"}, timeout=5)
        page_statuses.append(page_resp.status_code)
    assert page_statuses[-1] == 429 and 405 in page_statuses, page_statuses  # the app's 405 first, then ours
    assert page_resp.headers["Content-Type"].startswith("text/html") and "Too many requests" in page_resp.text
