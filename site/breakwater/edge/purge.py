"""Purge URLs and surrogate keys at every edge / CDN endpoint (``BREAKWATER_CDN_PURGE_URLS``).

The protocol is Varnish's, which Fastly shares: ``PURGE <path>`` drops one URL, and ``PURGE /`` with an
``xkey: k1 k2`` header drops every object tagged with one of the keys. Each endpoint gets every request even when
an earlier one failed; afterwards :class:`PurgeError` names each endpoint that failed, so the caller (a Celery task
with retries) can try again. Every failure is logged and counted, never dropped silently.
"""

from __future__ import annotations

import http.client
import logging
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from breakwater.observability.edge_metrics import PURGE_FAILURES, PURGES

log = logging.getLogger("breakwater.edge")

CONNECT_TIMEOUT = 1.0
TIMEOUT = 3.0
#: keys per request: an `xkey` header stays well under Varnish's 8 KB header limit
MAX_KEY_HEADER = 4000


@dataclass
class EndpointResult:
    endpoint: str
    requests: int = 0
    purged: int = 0  # objects the endpoint reported dropped (when it says)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass
class PurgeReport:
    urls: list[str]
    keys: list[str]
    endpoints: list[EndpointResult]

    @property
    def ok(self) -> bool:
        return all(e.ok for e in self.endpoints)

    @property
    def failed(self) -> list[EndpointResult]:
        return [e for e in self.endpoints if not e.ok]


class PurgeError(RuntimeError):
    """One or more endpoints did not confirm a purge; ``report`` has the details."""

    def __init__(self, report: PurgeReport):
        self.report = report
        details = "; ".join(f"{e.endpoint}: {', '.join(e.errors)}" for e in report.failed)
        super().__init__(f"purge failed at {len(report.failed)} of {len(report.endpoints)} endpoint(s): {details}")


def _path(url: str) -> str:
    """``https://site/a/b?x=1`` or ``/a/b?x=1`` -> ``/a/b?x=1``."""
    parts = urlsplit(url)
    path = parts.path or "/"
    if not path.startswith("/"):
        path = "/" + path
    return path + (f"?{parts.query}" if parts.query else "")


def _key_batches(keys: list[str]) -> list[str]:
    batches: list[str] = []
    current: list[str] = []
    for key in keys:
        if not key or any(c.isspace() for c in key):
            raise ValueError(f"surrogate key {key!r} must be non-empty and contain no spaces")
        if current and len(" ".join([*current, key])) > MAX_KEY_HEADER:
            batches.append(" ".join(current))
            current = []
        current.append(key)
    if current:
        batches.append(" ".join(current))
    return batches


def _label(endpoint: str) -> str:
    """host:port of an endpoint for metric labels (never a path or query that may carry a token)."""
    parts = urlsplit(endpoint)
    return parts.netloc.rpartition("@")[2] or endpoint


def _send(endpoint: str, path: str, headers: dict[str, str], timeout: float) -> int:
    """One PURGE; returns the number of objects dropped when the endpoint says (X-Purged), else 0."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"purge endpoint {endpoint!r} must be an http(s) URL")
    conn_cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = conn_cls(parts.hostname, parts.port, timeout=CONNECT_TIMEOUT)
    try:
        conn.connect()
        conn.sock.settimeout(timeout)
        base = parts.path.rstrip("/")
        conn.request("PURGE", base + path, headers=headers)
        resp = conn.getresponse()
        resp.read()
    finally:
        conn.close()
    if resp.status == 403:
        raise PermissionError(f"403 forbidden for PURGE {path} (is this host in the endpoint's purge ACL?)")
    if not 200 <= resp.status < 300:
        raise OSError(f"HTTP {resp.status} for PURGE {path}")
    try:
        return int(resp.getheader("X-Purged") or 0)
    except ValueError:
        return 0


def purge(
    urls: list[str], keys: list[str], endpoints: list[str], *, soft: bool = False, timeout: float = TIMEOUT
) -> PurgeReport:
    """Purge ``urls`` (one request each) and ``keys`` (one request per endpoint) at every endpoint.

    ``soft=True`` marks objects stale instead of dropping them (the edge then serves them only while the origin
    is down). Raises :class:`PurgeError` after trying everything when any endpoint failed.
    """
    paths = list(dict.fromkeys(_path(u) for u in urls))
    batches = _key_batches(list(dict.fromkeys(keys)))
    extra = {"X-Purge-Soft": "1"} if soft else {}
    report = PurgeReport(urls=paths, keys=list(dict.fromkeys(keys)), endpoints=[])
    for endpoint in endpoints:
        result = EndpointResult(endpoint)
        requests = [(p, extra) for p in paths] + [("/", {"xkey": b, **extra}) for b in batches]
        for path, headers in requests:
            result.requests += 1
            try:
                result.purged += _send(endpoint, path, headers, timeout)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                PURGES.labels("forbidden" if isinstance(exc, PermissionError) else "error").inc()
                what = f"keys {headers['xkey']!r}" if "xkey" in headers else path
                result.errors.append(f"{what}: {exc}")
            else:
                PURGES.labels("ok").inc()
        if result.errors:
            PURGE_FAILURES.labels(_label(endpoint)).inc()
            log.warning(
                "purge failed",
                extra={
                    "fields": {"endpoint": _label(endpoint), "errors": result.errors[:5], "failed": len(result.errors)}
                },
            )
        report.endpoints.append(result)
    if not report.ok:
        raise PurgeError(report)
    return report
