"""Static pages for the CDN: every public page emitted into ``static_build/``, rebuilt on publish.

* ``breakwater pages build`` writes every page (:mod:`.builder`), each atomically with a ``.gz``
  twin (:mod:`.writer`), and keeps a manifest of URL -> hash and surrogate keys.
* Each feature plugs its pages, files and change rules in through :mod:`.registry` (its own ``pages.py``);
  this package knows none of them.
* A commit that changes content (the cache namespaces it records: ``article:<slug>``, ``ads``...)
  queues a rebuild of exactly the affected pages after the commit (:mod:`.tasks`), coalesced over
  ``BREAKWATER_PAGES_COALESCE_SECONDS``, then purges what changed at every edge.
* Assets and the region picker's data get content-hashed names and are cached for a year
  (:mod:`breakwater.web.assets`, :mod:`breakwater.regions.cascade`).
* Pages are the same for every visitor: who is signed in comes from ``/api/auth/me`` (site.js).
"""

from __future__ import annotations

from flask import Flask


def init_pages(app: Flask) -> None:
    from breakwater.pages import registry, tasks
    from breakwater.web import assets

    app.register_blueprint(assets.bp)
    app.jinja_env.globals["asset_url"] = assets.asset_url
    app.jinja_env.filters["static_url"] = assets.static_url
    registry.register_files("assets", assets.PREFIX, _asset_files)
    tasks.init_app(app)


def _asset_files(app: Flask) -> dict:
    from breakwater.web import assets

    return {url: (lambda p=path: (p.read_bytes(), ["assets"])) for url, path in assets.all_assets()}
