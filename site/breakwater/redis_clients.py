"""Redis clients from a URL: ``redis://`` as it is, ``redis+sentinel://`` through the Sentinels.

``redis+sentinel://:password@host:port,host:port/master`` (what ``Settings.redis_url`` gives when
``BREAKWATER_REDIS_SENTINELS`` is set, and the form Flask-Limiter's storage takes too) becomes redis-py's
``Sentinel(...).master_for(master)``: every command goes to whichever server the Sentinels call the primary,
and after a failover the pool reconnects to the new one. The Sentinels take the same password as Redis.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

import redis
from redis.sentinel import Sentinel

SCHEME = "redis+sentinel"


def from_url(url: str, **kwargs: Any) -> redis.Redis:
    if not url.startswith(SCHEME + "://"):
        return redis.Redis.from_url(url, **kwargs)
    sentinels, master, password = parse(url)
    timeouts = {k: kwargs[k] for k in ("socket_timeout", "socket_connect_timeout") if k in kwargs}
    sentinel = Sentinel(sentinels, sentinel_kwargs={"password": password, **timeouts})
    return sentinel.master_for(master, password=password, **kwargs)


def limiter_options(url: str, timeout: float) -> dict[str, Any]:
    """Flask-Limiter's storage options for ``url``, every wait bounded by ``timeout``: the limits library
    passes them to redis-py, and for Sentinels its ``sentinel_kwargs`` would otherwise default to 5 s per
    call. A limit counts on the primary only (``use_replicas=False``): a replica's count lags it."""
    options: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    if url.startswith(SCHEME + "://"):
        options["sentinel_kwargs"] = dict(options)
        options["use_replicas"] = False
    return options


def parse(url: str) -> tuple[list[tuple[str, int]], str, str | None]:
    """(sentinels, master name, password) of a ``redis+sentinel://`` URL."""
    parts = urlsplit(url)
    auth, _, hosts = parts.netloc.rpartition("@")
    password = unquote(auth.partition(":")[2]) if auth else None
    sentinels = []
    for entry in hosts.split(","):
        host, _, port = entry.rpartition(":")
        sentinels.append((host, int(port)))
    return sentinels, parts.path.strip("/"), password or None


def celery_backend(url: str, timeout: float) -> tuple[str, dict]:
    """Celery's form of the same thing: ``sentinel://...;sentinel://...`` and its transport options, the
    Sentinels asked with ``timeout`` (kombu's default is none at all)."""
    if not url.startswith(SCHEME + "://"):
        return url, {}
    sentinels, master, password = parse(url)
    auth = f":{password}@" if password else ""
    joined = ";".join(f"sentinel://{auth}{host}:{port}/0" for host, port in sentinels)
    bounded = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    return joined, {"master_name": master, "sentinel_kwargs": {"password": password, **bounded}}
