"""The Redis circuit breaker, driven through the cache by real Redis timeouts (CLIENT PAUSE):
a refusal opens it at once, slowness only when it persists (timeouts in a row)."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import redis

from breakwater.cache.breaker import CircuitBreaker, is_hard_failure
from breakwater.cache.store import Cache

TIMEOUT = 0.2  # the cache client's socket timeout in these tests


@pytest.fixture()
def admin_redis(settings):
    client = redis.Redis.from_url(settings.redis_cache_url)
    yield client
    client.execute_command("CLIENT", "UNPAUSE")
    client.close()


@pytest.fixture()
def slow_cache(settings):
    """A cache like the app's (no local tier, so every hit is a Redis round trip) with a short timeout."""
    client = redis.Redis.from_url(settings.redis_cache_url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT)
    cache = Cache(client, prefix=f"breaker-{uuid.uuid4().hex[:8]}", breaker=CircuitBreaker(cooldown=60, threshold=3))
    yield cache
    client.close()


def pause(admin_redis, seconds: float) -> None:
    """Redis stops answering every client for ``seconds`` (the pause itself returns at once)."""
    admin_redis.execute_command("CLIENT", "PAUSE", int(seconds * 1000), "ALL")


def lookup(cache: Cache, key: str) -> str:
    return cache.get_or_compute("breaker", key, ("breaker",), lambda: b'{"v":1}', soft_ttl=600).status


def test_scattered_timeouts_between_many_hits_leave_the_breaker_closed(slow_cache, admin_redis):
    key = "k-" + uuid.uuid4().hex
    assert lookup(slow_cache, key) == "miss"
    statuses = []
    for _round in range(4):  # four timeouts in all, never two in a row
        pause(admin_redis, TIMEOUT * 2)
        statuses.append(lookup(slow_cache, key))
        time.sleep(TIMEOUT * 1.5)  # the pause is over
        statuses += [lookup(slow_cache, key) for _ in range(20)]
    assert statuses.count("error") == 4, statuses
    assert statuses.count("hit") == 80, statuses
    assert slow_cache.breaker.allow(), "hits between timeouts must reset the count"
    assert slow_cache.breaker.consecutive_failures == 0


def test_three_timeouts_in_a_row_open_the_breaker(slow_cache, admin_redis):
    key = "k-" + uuid.uuid4().hex
    assert lookup(slow_cache, key) == "miss"
    pause(admin_redis, 5)
    try:
        first = [lookup(slow_cache, key) for _ in range(3)]
        assert first == ["error"] * 3
        assert not slow_cache.breaker.allow(), "three timeouts in a row open the breaker"
        started = time.monotonic()
        assert lookup(slow_cache, key) == "bypass"
        assert time.monotonic() - started < TIMEOUT, "an open breaker does not wait for Redis"
    finally:
        admin_redis.execute_command("CLIENT", "UNPAUSE")


def test_two_timeouts_then_a_hit_then_two_more_stay_closed(slow_cache, admin_redis):
    """The exact pattern the old count got wrong: four timeouts, never three in a row."""
    key = "k-" + uuid.uuid4().hex
    assert lookup(slow_cache, key) == "miss"
    pause(admin_redis, TIMEOUT * 2.5)
    assert [lookup(slow_cache, key) for _ in range(2)] == ["error", "error"]
    time.sleep(TIMEOUT * 1.5)
    assert lookup(slow_cache, key) == "hit"
    pause(admin_redis, TIMEOUT * 2.5)
    assert [lookup(slow_cache, key) for _ in range(2)] == ["error", "error"]
    assert slow_cache.breaker.allow()


def test_a_refused_connection_opens_at_once(settings):
    from breakwater_tools.stack.ports import free_ports

    port = free_ports(1)[0]  # nothing listens here
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT)
    cache = Cache(client, prefix="refused", breaker=CircuitBreaker(cooldown=60, threshold=3))
    assert lookup(cache, "k") == "error"
    assert not cache.breaker.allow()
    assert lookup(cache, "k") == "bypass"


def test_the_count_is_safe_across_threads():
    """Many threads failing and succeeding at once never lose an increment or a reset."""
    breaker = CircuitBreaker(cooldown=60, threshold=10**9)
    barrier = threading.Barrier(8)

    def fail():
        barrier.wait()
        for _ in range(5000):
            breaker.failure(hard=False)

    threads = [threading.Thread(target=fail) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert breaker.consecutive_failures == 40000
    breaker.success()
    assert breaker.consecutive_failures == 0 and breaker.allow()


def test_failure_kinds():
    assert is_hard_failure(redis.ConnectionError("refused"))
    assert not is_hard_failure(redis.TimeoutError("slow"))
    assert not is_hard_failure(redis.ResponseError("WRONGTYPE"))
