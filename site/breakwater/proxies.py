"""Whose word the app takes for the client's address.

Visitors reach gunicorn through the origin (Nginx), which reaches it through the edge (Varnish, or a CDN):

    visitor -> edge (appends the visitor to X-Forwarded-For) -> origin (realip: believes only the edge's
    X-Forwarded-For, then appends the client it settled on) -> app (believes only the origin's last entry)

Each hop believes exactly the hop in front of it. Here, the app believes ``X-Forwarded-For`` and
``X-Forwarded-Proto`` only from its own front servers (``APP_TRUSTED_PROXIES``: HOST and loopback unless set);
any other peer that reaches an app port directly is taken at its own address, whatever headers it sends.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

from werkzeug.middleware.proxy_fix import ProxyFix

FORWARDED = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PORT",
             "HTTP_X_FORWARDED_PREFIX", "HTTP_FORWARDED")  # fmt: skip


class FrontServerProxyFix:
    """ProxyFix (one hop) for requests from a trusted front server; forwarded headers dropped otherwise."""

    def __init__(self, wsgi_app, trusted: Iterable[str]):
        self.wsgi_app = wsgi_app
        self.fixed = ProxyFix(wsgi_app, x_for=1, x_proto=1)
        networks = tuple(ipaddress.ip_network(entry, strict=False) for entry in trusted)

        @lru_cache(maxsize=4096)
        def trusted_peer(address: str) -> bool:
            try:
                ip = ipaddress.ip_address(address)
            except ValueError:
                return False
            return any(ip in network for network in networks if network.version == ip.version)

        self.trusted_peer = trusted_peer

    def __call__(self, environ, start_response):
        if self.trusted_peer(environ.get("REMOTE_ADDR", "")):
            return self.fixed(environ, start_response)
        for key in FORWARDED:
            environ.pop(key, None)
        return self.wsgi_app(environ, start_response)
