"""Editors at work, at a low rate: each logs in (session + CSRF token, like the editor's pages), puts
one ad of its own on the homepage, then in rounds publishes an article, edits its ad's title and edits
an article's title; about one change every ``--editor-pace`` seconds (default 10).

After every change two checks (pseudo-requests of type CHECK, so they count like failed requests):

* ``<change>: origin, next read``: the very next read of the page through the origin
  (``--origin-url``), with the editor's own cookies and causal token, shows the change. The origin
  hands a writer's reads to the app, which reads its own writes (no time window).
* ``<change>: edge within 2 s``: an anonymous reader polling the edge (``--edge-url``, every 100 ms)
  sees it within ``--edge-within`` seconds (2) of the write's answer: the rebuild of the static
  page and the purge of the edge's copy. The check's response time is that delay. Skipped when
  the edge URL is empty.

Writes go to ``--host`` (any of edge, origin, app: editor routes pass through). When it stops, each
editor deletes what it made (``--editor-keep`` keeps it).

    locust -f loadtests/scenarios/editor.py --host http://127.0.0.1:8080 -u 2 -r 1
"""

from __future__ import annotations

import itertools
import random
import time
import uuid

import gevent
from locust import FastHttpUser, task
from locust.contrib.fasthttp import FastHttpSession

try:
    from . import bwlocust
except ImportError:
    import bwlocust

POLL_S = 0.1


class Editor(FastHttpUser):
    weight = 1

    def wait_time(self) -> float:
        return float(bwlocust.option(self.environment, "editor_pace", 10.0)) * random.uniform(0.5, 1.5)

    def on_start(self) -> None:
        bwlocust.own_address(self.client)  # an editor's writes pass Nginx's write limit per address like anyone's
        self.tag = uuid.uuid4().hex[:6]
        self.serial = itertools.count(1)
        self.articles: dict[int, str] = {}  # id -> slug of the articles this editor made
        self.ad_id: int | None = None
        self.causal = ""
        self.origin = bwlocust.url_of(self.environment, "origin_url") or self.host.rstrip("/")
        self.edge = bwlocust.url_of(self.environment, "edge_url")
        self.edge_within = float(bwlocust.option(self.environment, "edge_within", 2.0))
        # An anonymous reader of the edge: its own session, so the editor's cookies never reach it.
        self.anonymous = FastHttpSession(
            base_url=self.edge or self.host, request_event=self.environment.events.request, user=self,
            network_timeout=10.0, connection_timeout=10.0,
        )  # fmt: skip
        bwlocust.own_address(self.anonymous)
        self.csrf = bwlocust.editor_login(self.client, self.environment)
        bwlocust.SITE.ensure(self.client)
        self.create_ad()

    def on_stop(self) -> None:
        if bwlocust.option(self.environment, "editor_keep", False) or not hasattr(self, "csrf"):
            return
        for article_id in list(self.articles):
            self.write("DELETE", f"/api/editor/articles/{article_id}", None, "/api/editor/articles/[id]")
        if self.ad_id is not None:
            self.write("DELETE", f"/api/editor/ads/{self.ad_id}", None, "/api/editor/ads/[id]")

    # ------------------------------------------------------------------ changes
    @task
    def round_of_changes(self) -> None:
        """Publish an article, edit the ad, edit an article: one task, so that a run stopped with
        ``--stop-timeout`` still finishes (and checks) the round it began."""
        for i, change in enumerate((self.publish_article, self.edit_ad, self.edit_article)):
            if i:
                gevent.sleep(self.wait_time())
            change()

    def edit_article(self) -> None:
        if not self.articles:
            return self.publish_article()
        article_id, slug = random.choice(list(self.articles.items()))
        title = self.title("article")
        if self.write("PATCH", f"/api/editor/articles/{article_id}", {"title": title}, "/api/editor/articles/[id]"):
            self.verify("article edit", f"/articles/{slug}", title)

    def publish_article(self) -> None:
        n = next(self.serial)
        slug, title = f"locust-{self.tag}-{n}", self.title("article")
        body = {
            "title": title, "slug": slug, "summary": "Written by a Locust editor.", "publish": True,
            "body": f"## {title}\n\nA load-test article, number {n} of editor {self.tag}.",
            "category": random.choice(list(bwlocust.SITE.ensure(self.client).categories)),
        }  # fmt: skip
        data = self.write("POST", "/api/editor/articles", body, "/api/editor/articles")
        if data:
            self.articles[data["article"]["id"]] = slug
            self.verify("new article", f"/articles/{slug}", title)

    def edit_ad(self) -> None:
        if self.ad_id is None:
            return self.create_ad()
        title = self.title("ad")
        if self.write("PATCH", f"/api/editor/ads/{self.ad_id}", {"title": title}, "/api/editor/ads/[id]"):
            self.verify("ad edit", "/", title)

    def create_ad(self) -> None:
        slots = self.client.get("/api/editor/slots", name="/api/editor/slots").json()["slots"]
        keys = [s["key"] for s in slots]
        title = self.title("ad")
        body = {
            "slot": "sidebar" if "sidebar" in keys else keys[0],
            "title": title,
            "link": "https://example.com/locust",
        }
        data = self.write("POST", "/api/editor/ads", body, "/api/editor/ads")
        if data:
            self.ad_id = data["ad"]["id"]
            self.verify("new ad", "/", title)

    def title(self, kind: str) -> str:
        return f"Locust {kind} {self.tag} {next(self.serial)}"  # ASCII: found as is in the HTML

    def write(self, method: str, path: str, body: dict | None, name: str) -> dict | None:
        headers = {"X-CSRFToken": self.csrf}
        if self.causal:
            headers["X-Causal-Token"] = self.causal
        with self.client.request(method, path, json=body, headers=headers, name=name, catch_response=True) as resp:
            if resp.status_code not in (200, 201):
                resp.failure(f"status {resp.status_code} {bwlocust.error_code(resp)}")
                return None
            self.causal = resp.headers.get("X-Causal-Token") or self.causal
            return resp.json()

    # ------------------------------------------------------------------ checks
    def verify(self, change: str, path: str, text: str) -> None:
        written = time.monotonic()
        headers = {"X-Causal-Token": self.causal} if self.causal else {}
        with self.client.get(
            self.origin + path, headers=headers, name=f"origin read: {change}", catch_response=True
        ) as resp:
            problem = bwlocust.page_ok(resp, text)
            if problem:
                resp.failure(problem)
        bwlocust.check(
            self.environment, f"{change}: origin, next read", (time.monotonic() - written) * 1000,
            f"the origin's next read of {path} after the write: {problem}" if problem else None,
        )  # fmt: skip
        if self.edge:
            self.verify_edge(change, path, text, written)

    def verify_edge(self, change: str, path: str, text: str, written: float) -> None:
        problem = "not polled"
        while True:
            with self.anonymous.get(path, name=f"edge poll: {change}", catch_response=True) as resp:
                problem = bwlocust.page_ok(resp, text)
                resp.success()  # an old copy is expected until the purge; the check below decides
            elapsed = time.monotonic() - written
            if problem is None or elapsed > self.edge_within:
                break
            gevent.sleep(POLL_S)
        if problem is None and elapsed > self.edge_within:
            problem = f"it took {elapsed:.2f} s"
        bwlocust.check(
            self.environment, f"{change}: edge within {self.edge_within:g} s", elapsed * 1000,
            None if problem is None else f"the edge did not show the change to {path} in time: {problem}",
        )  # fmt: skip
