"""Cached JSON responses: the cached bytes go out as they are, with an X-Cache header."""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from flask import Response

from breakwater import extensions
from breakwater.cache.store import Cache
from breakwater.observability import cache_metrics


def cache() -> Cache:
    return extensions.cache()


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


#: Rendered pages per process, keyed by the cached bytes they were rendered from (see cached_page).
_rendered: OrderedDict[tuple[str, bytes], tuple[float, object]] = OrderedDict()
_rendered_lock = threading.Lock()
RENDER_TTL = 10.0
RENDER_ENTRIES = 16


def cached_page(
    name: str,
    key: str,
    deps: tuple[str, ...],
    compute: Callable[[], object],
    soft_ttl: float,
    render: Callable[[object], object],
    *,
    ttl_from: Callable[[object], float] | None = None,
):
    """``(render(data), status)`` for a page whose HTML depends on the cached data alone (no session, no CSRF
    token: the homepage). The rendering is kept per process for the very bytes it came from, for at most
    RENDER_TTL seconds: while the cached value is unchanged, a request costs a lookup instead of decoding the
    data and rendering the template again; a new value (a publish bumps the generation) renders afresh."""
    result = _lookup(name, key, deps, compute, soft_ttl, ttl_from)
    memo_key, now = (f"{name}:{key}", result.value), time.monotonic()
    with _rendered_lock:
        hit = _rendered.get(memo_key)
    if hit is not None and now - hit[0] < RENDER_TTL:
        return hit[1], header_value(result.status)
    page = render(json.loads(result.value))
    cache_metrics.RENDERS.labels(name).inc()
    with _rendered_lock:
        _rendered[memo_key] = (now, page)
        _rendered.move_to_end(memo_key)
        while len(_rendered) > RENDER_ENTRIES:
            _rendered.popitem(last=False)
    return page, header_value(result.status)
