"""Read-your-writes across processes through the per-process cache tier, by construction:
a request that published skips a local tier that has not yet processed its bump, however slow
that tier's tracker thread is; a visitor who never published keeps the (millisecond) window."""

from __future__ import annotations

import threading
import uuid

import pytest
import redis
import requests

from breakwater.cache.breaker import CircuitBreaker
from breakwater.cache.store import Cache
from breakwater.database import causal
from routing_helpers import wait_for


def make_cache(settings, prefix: str) -> Cache:
    client = redis.Redis.from_url(settings.redis_cache_url, socket_timeout=2)
    return Cache(client, prefix=prefix, breaker=CircuitBreaker(), local_url=settings.redis_cache_url)


@pytest.fixture()
def two_processes(settings):
    """Two caches on one Redis, each with its own local tier and tracker: two app processes."""
    prefix = f"tier-{uuid.uuid4().hex[:8]}"
    a, b = make_cache(settings, prefix), make_cache(settings, prefix)
    for cache in (a, b):
        cache.local.ensure_running()
        wait_for(lambda c=cache: c.local.healthy, timeout=10, interval=0.02, what="the tracker to subscribe")
    yield a, b
    for cache in (a, b):
        cache.local.stop()
        cache.client.close()


def read(cache: Cache, key: str, value: bytes, seq: int = 0) -> tuple[bytes, str]:
    token = causal.current.set(causal.Causality(cache_seq=seq))
    try:
        result = cache.get_or_compute("tier", key, ("tier-ns",), lambda: value, soft_ttl=600)
        return result.value, result.status
    finally:
        causal.current.reset(token)


def test_bumps_carry_increasing_sequence_numbers_to_every_tracker(two_processes):
    a, b = two_processes
    first = a.bump("tier-ns")
    second = b.bump("tier-ns")
    assert 0 < first < second
    for cache in (a, b):
        wait_for(lambda c=cache: c.local.seq >= second, timeout=5, interval=0.01, what="the sequence to arrive")


def test_a_publisher_skips_a_local_tier_whose_tracker_lags(two_processes):
    a, b = two_processes
    key = "k-" + uuid.uuid4().hex
    assert read(b, key, b"old") == (b"old", "miss")
    assert read(b, key, b"unused") == (b"old", "hit")
    assert b.local.get(key, ("tier-ns",)) == b"old", "the value sits in B's local tier"

    # B's tracker thread is stuck (a busy process, a slow scheduler): it processes nothing.
    stuck, release = threading.Event(), threading.Event()
    original = b.local._invalidate

    def slow_invalidate(keys):
        stuck.set()
        release.wait(10)
        original(keys)

    b.local._invalidate = slow_invalidate
    try:
        seq = a.bump("tier-ns")  # the publish, in process A
        assert stuck.wait(5), "the invalidation reached B's tracker"
        assert b.local.seq < seq
        # An anonymous visitor in B may still see the old value for these milliseconds...
        assert read(b, key, b"new") == (b"old", "hit")
        # ...the publisher, carrying its bump's sequence, never does.
        assert read(b, key, b"new", seq=seq) == (b"new", "miss")
    finally:
        release.set()
    wait_for(lambda: b.local.seq >= seq, timeout=5, interval=0.01, what="B to catch up")
    assert read(b, key, b"unused", seq=seq) == (b"new", "hit")
    assert b.local.get(key, ("tier-ns",)) == b"new", "once caught up, B's local tier serves the publisher again"


def test_a_tracker_that_reconnects_starts_from_the_current_sequence(two_processes, settings):
    a, _b = two_processes
    seq = a.bump("tier-ns")
    fresh = make_cache(settings, a.prefix.rstrip(":"))
    fresh.local.ensure_running()
    try:
        wait_for(lambda: fresh.local.healthy, timeout=10, interval=0.02, what="the tracker to subscribe")
        assert fresh.local.seq >= seq
    finally:
        fresh.local.stop()


def test_the_publish_sequence_travels_in_the_causal_token(origin, editor_api, slug):
    """An API client gets the sequence back in X-Causal-Token; a tampered one is refused."""
    resp = editor_api(
        "POST", "/articles", json={"title": "Seq", "summary": "s", "category": "news", "body": "b", "slug": slug}
    )
    assert resp.status_code == 201, resp.text
    resp = editor_api("POST", f"/articles/{resp.json()['article']['id']}/publish")
    assert resp.status_code == 200, resp.text
    signed = resp.headers["X-Causal-Token"]
    value = signed.rsplit(".", 1)[0]
    token, _, seq = value.partition("~")
    assert causal.parse(token) and int(seq) > 0, value
    reread = requests.get(f"{origin}/api/articles/{slug}", headers={"X-Causal-Token": signed}, timeout=10)
    assert reread.status_code == 200 and reread.json()["title"] == "Seq"
    forged = requests.get(
        f"{origin}/api/articles/{slug}", headers={"X-Causal-Token": f"{token}~99999999999999.x"}, timeout=10
    )
    assert forged.status_code == 400 and forged.json()["error"]["code"] == "invalid_causal_token"
