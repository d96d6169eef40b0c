"""Static pages for the CDN: every public page emitted into ``static_build/``, rebuilt on publish.

* ``breakwater pages build`` writes every page (:mod:`.builder`), each atomically with a ``.gz``
  twin (:mod:`.writer`), and keeps a manifest of URL -> hash and surrogate keys.
* A commit that changes content (the cache namespaces it records: ``article:<slug>``, ``ads``...)
  queues a rebuild of exactly the affected pages after the commit (:mod:`.tasks`), coalesced over
  ``BREAKWATER_PAGES_COALESCE_SECONDS``, then purges what changed at every edge.
* Assets and the region picker's data get content-hashed names and are cached for a year
  (:mod:`.assets`, :mod:`.regions_data`).
* Pages are the same for every visitor: who is signed in comes from ``/api/auth/me`` (site.js).
"""

from __future__ import annotations

from flask import Flask


def init_pages(app: Flask) -> None:
    from breakwater.pages import assets, regions_data, tasks

    app.register_blueprint(assets.bp)
    app.register_blueprint(regions_data.bp)
    app.jinja_env.globals["asset_url"] = assets.asset_url
    app.jinja_env.globals["nav_categories"] = _nav_categories
    app.jinja_env.filters["static_url"] = assets.static_url
    tasks.init_app(app)


def _nav_categories() -> list[dict]:
    """The category menu; an error page must render even when the database does not answer."""
    from breakwater.cache.http import cached_data
    from breakwater.content.services import categories
    from breakwater.extensions import db

    try:
        data, _status = cached_data(
            "categories", "categories", ("articles",), lambda: [c.to_json() for c in categories(db.session)], 300.0
        )
        return data
    except Exception:
        return []
