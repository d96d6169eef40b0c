"""Cached JSON responses: the cached bytes go out as they are, with an X-Cache header."""

from __future__ import annotations

import json
from collections.abc import Callable

from flask import Response, current_app

from breakwater.cache.store import Cache


def cache() -> Cache:
    return current_app.extensions["breakwater.cache"]


def dumps(data: object) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def header_value(status: str) -> str:
    """X-Cache is hit, miss, stale or bypass; a Redis error is a bypass to the visitor."""
    return "bypass" if status == "error" else status


def _lookup(name, key, deps, compute, soft_ttl, ttl_from):
    """The cache result for ``compute()`` as JSON bytes; ``ttl_from(data)`` may shorten the soft TTL."""

    def produce():
        data = compute()
        payload = dumps(data)
        return (payload, ttl_from(data)) if ttl_from else payload

    return cache().get_or_compute(name, key, deps, produce, soft_ttl)


def cached_json(
    name: str,
    key: str,
    deps: tuple[str, ...],
    compute: Callable[[], object],
    soft_ttl: float,
    *,
    ttl_from: Callable[[object], float] | None = None,
) -> Response:
    """Serve ``compute()`` as JSON through the cache. ``ttl_from(data)`` may shorten the soft TTL."""
    result = _lookup(name, key, deps, compute, soft_ttl, ttl_from)
    response = Response(result.value, mimetype="application/json")
    response.headers["X-Cache"] = header_value(result.status)
    return response


def cached_data(
    name: str,
    key: str,
    deps: tuple[str, ...],
    compute: Callable[[], object],
    soft_ttl: float,
    *,
    ttl_from: Callable[[object], float] | None = None,
):
    """The cached value decoded again (for HTML pages that render it); returns (data, status)."""
    result = _lookup(name, key, deps, compute, soft_ttl, ttl_from)
    return json.loads(result.value), header_value(result.status)
