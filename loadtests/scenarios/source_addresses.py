"""Each simulated visitor from a source address of its own, as a crowd really arrives.

Per-address limits (Nginx's ``limit_req``, the app's Flask-Limiter limits) see every request of one load
generator as one client; raising them until a run passes would measure nothing. Linux routes all of
127.0.0.0/8 to loopback and lets a socket bind any of it, so each simulated visitor or buyer gets a
127.x.y.z address (never 127.0.0.1: on one machine that is the edge's, the origin's trusted proxy).

The same idea as tests/visitors.py, kept apart on purpose: these addresses come from 127.128.0.0 upwards,
one second octet per process (from its pid), so Locust processes started side by side, and the test process
that starts them (tests/visitors.py, 127.60 onwards), never hand out the same address on one stack.

- ``fresh_address()``: the next address of this process.
- ``bind(session, address)``: a Locust ``FastHttpSession`` (geventhttpclient) whose connections leave from
  ``address``; call it before the session's first request.
- ``session(address)``: a ``requests.Session`` whose connections leave from ``address``.

Only a stack on this machine's loopback can be reached from a 127/8 address: for any other host,
``on_loopback(url)`` is False and the callers leave the source address alone.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import threading
from urllib.parse import urlsplit

_next = itertools.count(0)
_lock = threading.Lock()
_BLOCK = 128 + os.getpid() % 126  # second octet: 128..253


def address(n: int, block: int = _BLOCK) -> str:
    """The n-th address of a block (62,500 of them: 127.<block>.0.2 to 127.<block>.249.251)."""
    if not 0 <= n < 250 * 250:
        raise ValueError(f"address {n} is beyond the 62,500 of one block")
    high, low = divmod(n, 250)
    return f"127.{block}.{high}.{low + 2}"


def fresh_address() -> str:
    """An address no other caller of this process has had."""
    with _lock:
        return address(next(_next))


def _loopback_host(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def on_loopback(url: str) -> bool:
    return _loopback_host(urlsplit(url).hostname or "")


def bind(fast_session, source: str) -> None:
    """Every connection of a Locust FastHttpSession to a loopback host leaves from ``source``: geventhttpclient
    makes one HTTPClient per host and port on first use; each gets its sockets bound before they connect."""
    pool = fast_session.client.clientpool
    get_client = pool.get_client

    def bound_client(url):
        client = get_client(url)
        connections = client._connection_pool
        host = getattr(url, "host", None) or urlsplit(str(url)).hostname or ""
        if _loopback_host(host) and getattr(connections, "bw_source", None) != source:
            create = connections._create_tcp_socket

            def create_bound(family, socktype, protocol):
                sock = create(family, socktype, protocol)
                sock.bind((source, 0))
                return sock

            connections._create_tcp_socket = create_bound
            connections.bw_source = source
        return client

    pool.get_client = bound_client
    fast_session.source_address = source


def session(source: str | None = None):
    """A requests.Session whose every connection leaves from ``source`` (a fresh address by default)."""
    import requests
    from requests.adapters import HTTPAdapter

    class SourceAddressAdapter(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs):
            kwargs["source_address"] = (source, 0)
            super().init_poolmanager(*args, **kwargs)

    source = source or fresh_address()
    http = requests.Session()
    adapter = SourceAddressAdapter()
    http.mount("http://", adapter)
    http.mount("https://", adapter)
    http.source_address = source  # type: ignore[attr-defined]
    return http
