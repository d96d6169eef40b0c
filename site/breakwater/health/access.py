"""Who is the operator: the callers that get /healthz's details and /metrics from the app.

* anyone with the operator token, ``Authorization: Bearer <BREAKWATER_OPS_TOKEN>`` (compared in constant time);
* a loopback caller of the app itself (the connection's own peer, not a forwarded address) that is not
  forwarding somebody else's request: no ``X-Breakwater-Operator`` word, no ``X-Forwarded-For``/``Forwarded``;
* a request the origin forwards with ``X-Breakwater-Operator: 1``: it says so only for a direct caller on the
  operator's network (nginx/origin.conf.j2, BREAKWATER_ORIGIN_OPERATOR_NETWORK), and it always sets the word,
  so a visitor cannot. The word is believed only from a loopback peer or one of the app's own front servers
  (BREAKWATER_APP_TRUSTED_PROXIES), the hops whose forwarded headers the app believes anyway.
"""

from __future__ import annotations

import hmac
import ipaddress
from functools import lru_cache

from flask import request

from breakwater import extensions

OPERATOR_HEADER = "X-Breakwater-Operator"


def peer_address(environ: dict) -> str:
    """The address of the connection's other end, as the socket says: neither X-Forwarded-For nor any
    middleware that rewrote REMOTE_ADDR from it can change it."""
    sock = environ.get("gunicorn.socket")
    if sock is not None:
        try:
            peer = sock.getpeername()
        except OSError:
            peer = None
        if isinstance(peer, tuple):
            return str(peer[0])
    original = environ.get("werkzeug.proxy_fix.orig") or {}
    return original.get("REMOTE_ADDR") or environ.get("REMOTE_ADDR") or ""


@lru_cache(maxsize=1024)
def _ip(address: str):
    try:
        return ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None


def _front_server(address: str) -> bool:
    ip = _ip(address)
    if ip is None:
        return False
    if ip.is_loopback:
        return True
    settings = extensions.settings()
    try:
        trusted = tuple(settings.app_trusted_proxies)
    except (AttributeError, KeyError, ValueError):
        return False
    return any(ip in network for network in _networks(trusted))


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def token_ok() -> bool:
    """The request carries the operator token."""
    settings = extensions.settings()
    try:
        expected = settings["OPS_TOKEN"]
    except KeyError:
        return False
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if not expected or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), expected.encode())


def is_operator() -> bool:
    if token_ok():
        return True
    peer = peer_address(request.environ)
    word = request.headers.get(OPERATOR_HEADER)
    if word is not None:
        return word == "1" and _front_server(peer)
    ip = _ip(peer)
    forwarded = "X-Forwarded-For" in request.headers or "Forwarded" in request.headers
    return ip is not None and ip.is_loopback and not forwarded
