"""What the visitor, editor and flash-buyer scenarios share: their options, site discovery, checks.

Options are Locust custom arguments (shown in the web UI too; each also reads an env var). Their
defaults come from the stack's own settings when the ``breakwater`` package is importable (the
project's virtualenv): ``BREAKWATER_*`` variables first, then ``.stack/secrets.env``, exactly as
``make up`` resolves them. On a load generator without the package, pass them explicitly.

A *check* is a pseudo-request (request type ``CHECK``) fired into Locust's statistics: it shows up in
the UI, the CSV files and the exit code like any failed request, and its response time is what the
check measured (e.g. how long the edge took to show an edit).
"""

from __future__ import annotations

import random
import re
import time
from functools import cache

import gevent
import gevent.lock
from locust import events

try:
    from . import source_addresses
except ImportError:
    import source_addresses

DATA_ROOT_RE = re.compile(r'data-root="([^"]+)"')
SENTINEL = "<!--bw:end-->"  # every complete page ends with it (breakwater.pages)
DISCOVERY_TTL = 60.0  # seconds before the list of articles and categories is read again


@cache
def stack_settings():
    """The local stack's resolved settings, or None without the breakwater package."""
    try:
        from breakwater.settings import Settings
    except ImportError:
        return None
    try:
        return Settings.load()
    except Exception:  # a malformed setting must not stop a run that passes its options explicitly
        return None


def _stack(derive) -> str:
    """A default derived from the local stack's settings ("" without them)."""
    s = stack_settings()
    try:
        return (derive(s) or "") if s is not None else ""
    except Exception:
        return ""


@events.init_command_line_parser.add_listener
def _arguments(parser) -> None:
    def add(flag: str, help: str, **kw) -> None:  # every option also reads LOCUST_<NAME>
        parser.add_argument(flag, env_var="LOCUST_" + flag[2:].upper().replace("-", "_"), help=help, **kw)

    add(
        "--origin-url",
        "The Nginx origin the editor reads its own changes from (default: the local stack's).",
        default=_stack(lambda s: s.origin_url),
    )
    add(
        "--edge-url",
        "The edge (Varnish/CDN) where an editor's change must show in time; empty: no edge checks.",
        default=_stack(lambda s: s.edge_url),
    )
    add("--edge-within", "Seconds the edge may take to show an editor's change.", type=float, default=2.0)
    add(
        "--visitor-wait",
        "Longest pause between a visitor's page views in seconds (the shortest: a sixth).",
        type=float,
        default=3.0,
    )
    add(
        "--editor-name",
        "Editor account (the stack seeds one; `breakwater user create-editor NAME` makes more).",
        default=_stack(lambda s: s["EDITOR_NAME"]),
    )
    add(
        "--editor-password",
        "That editor's password (default: the seeded editor's, from .stack/secrets.env).",
        default=_stack(lambda s: s["EDITOR_PASSWORD"]),
        is_secret=True,
    )
    add("--editor-pace", "Mean seconds between an editor's changes.", type=float, default=10.0)
    add(
        "--editor-keep",
        "Keep the articles and ads editors made (by default each deletes its own when it stops).",
        action="store_true",
        default=False,
    )
    add("--flash-sale", "Flash sale id; 0: create a new sale at test start.", type=int, default=0)
    add("--flash-stock", "Units of the sale created at test start.", type=int, default=20)
    add("--flash-limit", "Per-buyer limit of the sale created at test start.", type=int, default=1)
    add("--flash-start-in", "Seconds from test start to the start of the sale created then.", type=float, default=5.0)
    add(
        "--flash-db-url",
        "SQLAlchemy URL of the primary, for the after-run checks (default: the local stack's).",
        default=_stack(lambda s: s.database_url(*s.primary_address)),
        is_secret=True,
    )
    add(
        "--flash-drain-timeout",
        "Seconds to wait after the run for accepted orders to be written before checking.",
        type=float,
        default=60.0,
    )


@events.init.add_listener
def _fresh_clock(**_kw) -> None:
    """gevent's timers count from the loop's cached clock, last read before the slow start (imports,
    settings) on a busy machine: ``-t 9s`` then ended runs after 3 s. Read the clock again."""
    gevent.get_hub().loop.update_now()


def option(environment, name: str, fallback=None):
    opts = getattr(environment, "parsed_options", None)
    value = getattr(opts, name, None) if opts is not None else None
    return fallback if value is None else value


def url_of(environment, name: str) -> str:
    return str(option(environment, name, "") or "").rstrip("/")


def check(environment, name: str, response_time_ms: float, error: str | None = None) -> None:
    """Record one check as a pseudo-request: a failure in Locust's stats when ``error`` is set."""
    environment.events.request.fire(
        request_type="CHECK", name=name, response_time=response_time_ms, response_length=0,
        exception=AssertionError(error) if error else None, context={},
    )  # fmt: skip


def error_code(resp) -> str:
    try:
        return ((resp.json() or {}).get("error") or {}).get("code", "")
    except Exception:
        return ""


def page_ok(resp, must_contain: str | None = None) -> str | None:
    """Why an HTML response is not a complete page (None if it is)."""
    if resp.status_code != 200:
        return f"status {resp.status_code}"
    text = resp.text or ""
    if SENTINEL not in text[-200:]:
        return "page incomplete (no closing sentinel)"
    if must_contain and must_contain not in text:
        return f"page does not show {must_contain!r}"
    return None


# ------------------------------------------------------------------ discovery
class Site:
    """Categories (with their page counts), published article slugs and the region data's entry point,
    read from the site itself through one user's client; shared by all users, refreshed every minute."""

    def __init__(self) -> None:
        self.lock = gevent.lock.Semaphore()
        self.read_at = 0.0
        self.categories: dict[str, int] = {}  # slug -> pages
        self.articles: list[str] = []
        self.regions_root = ""

    def ensure(self, client) -> Site:
        if time.monotonic() - self.read_at < DISCOVERY_TTL and self.categories:
            return self
        with self.lock:  # one user reads, the others wait for its result
            if time.monotonic() - self.read_at >= DISCOVERY_TTL or not self.categories:
                self._read(client)
        return self

    def _read(self, client) -> None:
        home = client.get("/api/home", name="discover: /api/home").json()
        categories, articles = {}, set()
        for cat in home.get("categories", []):
            listing = client.get(f"/api/articles?category={cat['slug']}", name="discover: /api/articles").json()
            categories[cat["slug"]] = int(listing.get("pages", 1))
            articles.update(a["slug"] for a in listing.get("articles", []))
            articles.update(a["slug"] for a in cat.get("articles", []))
        if not categories or not articles:
            raise RuntimeError("the site lists no category or no article: is the stack seeded?")
        page = client.get("/regions", name="discover: /regions")
        found = DATA_ROOT_RE.search(page.text or "")
        self.categories, self.articles = categories, sorted(articles)
        self.regions_root = found.group(1) if found else ""
        self.read_at = time.monotonic()

    def category_path(self) -> tuple[str, str]:
        """A category page, weighted to page 1 like real browsing: (path, stats name)."""
        slug = random.choice(list(self.categories))
        pages = self.categories[slug]
        if pages > 1 and random.random() < 0.4:
            return f"/categories/{slug}/page/{random.randint(2, pages)}", "/categories/[slug]/page/[n]"
        return f"/categories/{slug}", "/categories/[slug]"


SITE = Site()


@events.test_start.add_listener
def _rediscover(**_kw) -> None:
    SITE.read_at = 0.0  # a new run (e.g. Start again in the web UI) reads the site afresh


def regions_children(data: dict) -> list[dict]:
    """The children listed by a static region file ({regions}) or by the API ({children})."""
    return data.get("regions") or data.get("children") or []


def district_code(client) -> str:
    """A real district code for a shipping address: province -> city -> district through the API."""
    code, node = "", client.get("/api/regions", name="discover: /api/regions").json()
    for _level in range(3):
        items = regions_children(node)
        if not items:
            break
        code = random.choice(items)["code"]
        node = client.get(f"/api/regions/{code}", name="discover: /api/regions/[code]").json()
        if node.get("level") in ("district", "street"):
            break
    if not code:
        raise RuntimeError("the site lists no region: is the stack seeded?")
    return code


def own_address(session) -> str:
    """The session's connections (a Locust FastHttpSession, e.g. a user's ``self.client``) leave from a
    127/8 address of their own (source_addresses.py): the stack's per-address limits, at their defaults,
    see one client per simulated person, never the whole load generator as one. Hosts off this machine's
    loopback are reached from the machine's own address. Call before the session's first request."""
    address = source_addresses.fresh_address()
    source_addresses.bind(session, address)
    return address


def editor_login(client, environment, name: str = "/api/auth/login (editor)") -> str:
    """Log the client's session in as the configured editor; returns the CSRF token for its writes."""
    editor, password = option(environment, "editor_name", ""), option(environment, "editor_password", "")
    if not editor or not password:
        raise RuntimeError("no editor credentials: pass --editor-name and --editor-password")
    with client.post(
        "/api/auth/login", json={"name": editor, "password": password}, name=name, catch_response=True
    ) as resp:
        if resp.status_code != 200:
            resp.failure(f"editor login: status {resp.status_code} {error_code(resp)}")
    if resp.status_code != 200:
        raise RuntimeError(f"editor login as {editor!r} failed with status {resp.status_code} {error_code(resp)}")
    return resp.json()["csrf_token"]
