"""Anonymous visitors browsing like people do, through whatever ``--host`` names: the edge (the CDN
stand-in, :8081), the Nginx origin (:8080) or the app itself (gunicorn, :8000).

What they read is discovered from the site at start (``/api/home``, ``/api/articles``, ``/regions``;
refreshed every minute, so articles an editor publishes during the run get visited too), never
hard-coded. Weights, per page view: article 40, homepage 30, category page 20 (page 1 more often
than the others), the address picker's cascade 10 (the /regions page, then province -> city ->
district from the content-hashed static files the page names, or /api/regions when it names none).
Each page must be complete (status 200 and the site's closing sentinel), each region file valid JSON.

    locust -f loadtests/scenarios/visitor.py --host http://127.0.0.1:8081 -u 50 -r 10
"""

from __future__ import annotations

import random

from locust import FastHttpUser, task

try:
    from . import bwlocust  # imported by loadtests/locustfile.py
except ImportError:
    import bwlocust  # run directly: locust -f loadtests/scenarios/visitor.py


class Visitor(FastHttpUser):
    weight = 20

    def wait_time(self) -> float:
        """Reading time between page views: up to --visitor-wait seconds (3)."""
        longest = float(bwlocust.option(self.environment, "visitor_wait", 3.0))
        return random.uniform(longest / 6, longest)

    def on_start(self) -> None:
        bwlocust.own_address(self.client)  # each visitor from an address of its own
        bwlocust.SITE.ensure(self.client)

    def page(self, path: str, name: str) -> None:
        with self.client.get(path, name=name, catch_response=True) as resp:
            problem = bwlocust.page_ok(resp)
            if problem:
                resp.failure(problem)

    @task(30)
    def homepage(self) -> None:
        self.page("/", "/")

    @task(40)
    def article(self) -> None:
        site = bwlocust.SITE.ensure(self.client)
        self.page(f"/articles/{random.choice(site.articles)}", "/articles/[slug]")

    @task(20)
    def category(self) -> None:
        self.page(*bwlocust.SITE.ensure(self.client).category_path())

    @task(10)
    def region_cascade(self) -> None:
        """Open the address picker and choose a province, then a city (each choice loads the next level)."""
        self.page("/regions", "/regions")
        root = bwlocust.SITE.ensure(self.client).regions_root
        url, source = (root, "static") if root else ("/api/regions", "api")
        for level in ("provinces", "cities", "districts"):
            data = self.region_list(url, f"regions: {level} ({source})")
            items = bwlocust.regions_children(data or {})
            if not items:
                return  # a failed load, or a place with no finer level (e.g. Hong Kong)
            chosen = random.choice(items)
            if root:
                url = chosen.get("next", "")
                if not url:
                    return
            else:
                url = f"/api/regions/{chosen['code']}"

    def region_list(self, url: str, name: str) -> dict | None:
        with self.client.get(url, name=name, catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure(f"status {resp.status_code}")
                return None
            try:
                return resp.json()
            except ValueError:
                resp.failure("not JSON")
                return None
