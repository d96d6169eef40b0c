"""Articles and categories: Markdown bodies rendered to sanitised HTML, visitor pages and API."""

from __future__ import annotations

from flask import Flask


def init_content(app: Flask) -> None:
    import breakwater.content.pages  # noqa: F401  (registers the static pages)

    app.jinja_env.globals["nav_categories"] = nav_categories


def nav_categories() -> list[dict]:
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
