"""Responses for pages that are also emitted as static files."""

from __future__ import annotations

from collections.abc import Iterable

from flask import Response, make_response


def page_response(html: str, cache_status: str, keys: Iterable[str]) -> Response:
    """HTML with ``X-Cache`` (the Redis tier) and the surrogate keys naming what the page shows:
    ``xkey`` for Varnish' xkey vmod, ``Surrogate-Key`` for CDNs that read that name. The first key is
    the page's own (the builder uses it to find a renamed article's new URL)."""
    response = make_response(html)
    response.headers["X-Cache"] = cache_status
    value = " ".join(dict.fromkeys([*keys, "html"]))
    response.headers["xkey"] = value
    response.headers["Surrogate-Key"] = value
    return response
