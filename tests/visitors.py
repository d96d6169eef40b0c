"""Simulated visitors, each from an address of its own, as a crowd really arrives.

Per-address limits (Nginx's limit_req, Flask-Limiter) see every request of one load generator as one client;
raising the limits until a test passes would test nothing. Linux routes all of 127.0.0.0/8 to loopback and
lets a socket bind any of it, so each visitor gets a fresh 127.x.y.z source address (never 127.0.0.1, the
machine's own address: on one machine it is the edge's, which the origin trusts for X-Forwarded-For).
"""

from __future__ import annotations

import itertools
import threading
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

_next = itertools.count(1)
_lock = threading.Lock()


def fresh_address() -> str:
    """A 127.0.0.0/8 address no other visitor of this process has had (127.60.0.1 onwards)."""
    with _lock:
        n = next(_next)
    rest, low = divmod(n, 250)
    high, mid = divmod(rest, 250)
    return f"127.{60 + high}.{mid}.{low + 2}"


class SourceAddressAdapter(HTTPAdapter):
    """Connections to loopback leave from ``address`` (urllib3's ``source_address``). A 127/8 source cannot
    reach another network (a cluster's namespace hosts): those connections leave from the machine's own
    address, as the one visitor the machine is there."""

    def __init__(self, address: str, **kwargs):
        self.address = address
        self.elsewhere = HTTPAdapter(**kwargs)
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)

    def send(self, request, *args, **kwargs):
        if (urlsplit(request.url).hostname or "").startswith("127."):
            return super().send(request, *args, **kwargs)
        return self.elsewhere.send(request, *args, **kwargs)

    def close(self):
        self.elsewhere.close()
        super().close()


def visitor(address: str | None = None) -> requests.Session:
    """A session whose every connection comes from ``address`` (a fresh one by default): ``.address``."""
    session = requests.Session()
    session.address = address or fresh_address()  # type: ignore[attr-defined]
    adapter = SourceAddressAdapter(session.address)  # type: ignore[attr-defined]
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
