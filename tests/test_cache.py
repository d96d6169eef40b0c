"""The cache under pressure: cold-key stampedes, soft-TTL staleness, moving generations, Redis down,
and publishes while the replicas lag."""

from __future__ import annotations

import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from breakwater.cache.store import Cache
from routing_helpers import gtid_waits, held_replication, wait_for

ARTICLE = {"title": "Lag test", "summary": "s", "category": "news", "body": "body"}


def counted(origin: str, metric: str, name: str) -> float:
    body = requests.get(f"{origin}/metrics", timeout=10).text
    match = re.search(rf'{metric}{{name="{name}"}} ([0-9.e+]+)', body)
    return float(match.group(1)) if match else 0.0


def recomputes(origin: str, name: str) -> float:
    return counted(origin, "breakwater_cache_recomputes_total", name)


@pytest.fixture()
def cache(app) -> Cache:
    return app.extensions["breakwater.cache"]


def test_cold_key_stampede_recomputes_once(cache, origin):
    cache.bump("regions")  # every region value is now cold
    before = recomputes(origin, "regions")

    def fetch(_):
        resp = requests.get(f"{origin}/api/regions/330000", timeout=30)
        return resp.status_code, resp.headers["X-Cache"]

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(fetch, range(50)))
    assert {status for status, _ in results} == {200}
    seen = {x: [c for _, c in results].count(x) for x in {c for _, c in results}}
    assert recomputes(origin, "regions") - before == 1, seen
    assert seen.get("miss") == 1, seen


def test_stale_value_is_served_while_another_request_refreshes(app, cache):
    key, calls = "test:" + uuid.uuid4().hex, []

    def compute():
        calls.append(1)
        return f'{{"n":{len(calls)}}}'.encode()

    with app.app_context():
        assert cache.get_or_compute("test", key, ("test",), compute, soft_ttl=0.01).status == "miss"
        time.sleep(0.05)  # past the soft TTL
        cache.client.set(cache.lock_key(key), "someone-else", px=5000)  # another process is refreshing
        stale = cache.get_or_compute("test", key, ("test",), compute, soft_ttl=0.01)
        assert (stale.status, stale.value, len(calls)) == ("stale", b'{"n":1}', 1)
        cache.client.delete(cache.lock_key(key))
        fresh = cache.get_or_compute("test", key, ("test",), compute, soft_ttl=60)
        assert (fresh.status, fresh.value) == ("miss", b'{"n":2}')
        assert cache.get_or_compute("test", key, ("test",), compute, soft_ttl=60).status == "hit"


def test_value_computed_while_the_generation_moved_is_not_stored(app, cache):
    namespace, key = "ns-" + uuid.uuid4().hex[:8], "test:" + uuid.uuid4().hex

    def compute_during_publish():
        cache.bump(namespace)  # a publish lands while we compute from older rows
        return b'{"old":true}'

    with app.app_context():
        first = cache.get_or_compute("test", key, (namespace,), compute_during_publish, soft_ttl=60)
        assert first.status == "miss"
        assert cache.client.get(cache.value_key(key)) is None
        again = cache.get_or_compute("test", key, (namespace,), lambda: b'{"new":true}', soft_ttl=60)
        assert (again.status, again.value) == ("miss", b'{"new":true}')
        assert cache.get_or_compute("test", key, (namespace,), lambda: b"{}", soft_ttl=60).status == "hit"


def test_publish_while_replicas_lag_is_visible_to_other_visitors(app, editor_api, node_admin, origin, slug):
    """The refill after a publish reads with the publish's causal token: on a replica that is behind,
    it waits (MASTER_GTID_WAIT) for the publish instead of caching the old page."""
    database = app.extensions["breakwater.db"]  # no app context here: test-client requests get their own
    visitor = requests.Session()  # no token: a different person than the editor
    visitor.get(f"{origin}/api/home", timeout=10)
    saved_timeout = database.causal_timeout
    # Replicas stop applying but stay in this process's rotation, so its refill must use a replica.
    with held_replication(database, node_admin) as release, ThreadPoolExecutor(max_workers=1) as pool:
        try:
            database.causal_timeout = 30.0  # the wait below must not fall back to the primary
            created = editor_api("POST", "/articles", json={**ARTICLE, "slug": slug, "publish": True})
            assert created.status_code == 201
            publish_gtid = created.headers["X-Causal-Token"].rpartition(".")[0].partition("~")[0]
            done, waits = threading.Event(), []

            def release_once_a_refill_waits() -> None:
                while not done.is_set() and not waits:
                    waits.extend(gtid_waits(node_admin, 1) + gtid_waits(node_admin, 2))
                    time.sleep(0.01)
                release()

            releaser = pool.submit(release_once_a_refill_waits)
            home = app.test_client().get("/api/home")  # a visitor without a token, in this process
            done.set()
            releaser.result()
        finally:
            database.causal_timeout = saved_timeout
        assert waits, f"the refill never waited on a replica (routes {home.headers.get('X-DB-Route')})"
        assert publish_gtid in waits[0], waits
        assert home.status_code == 200 and home.headers["X-Cache"] == "miss"
        assert home.headers["X-DB-Route"] in ("replica1", "replica2"), home.headers.get("X-DB-Route")
        news = next(c for c in home.json["categories"] if c["slug"] == "news")
        assert slug in [a["slug"] for a in news["articles"]]
    # Through Nginx the other visitor sees it too.
    home = visitor.get(f"{origin}/api/home", timeout=10).json()
    news = next(c for c in home["categories"] if c["slug"] == "news")
    assert slug in [a["slug"] for a in news["articles"]]
    assert visitor.get(f"{origin}/api/articles/{slug}", timeout=10).status_code == 200
    # The static homepage follows once the worker's rebuild (with the publish's token) has run.
    wait_for(lambda: slug in visitor.get(f"{origin}/", timeout=10).text, timeout=30, what="the static homepage")


def test_redis_down_site_keeps_serving_then_caching_resumes(stack, origin):
    rpc = stack.supervisor.rpc()
    rpc.stopProcess("redis-cache")
    try:
        # "/" is a static file and needs no Redis at all; "/?from=x" goes to the app (query strings do).
        assert requests.get(f"{origin}/", timeout=10).status_code == 200
        paths = ("/?from=x", "/api/home", "/api/regions", "/api/regions/440000", "/api/articles/breakwater-launch")
        for path in paths:
            for _ in range(3):
                resp = requests.get(f"{origin}{path}", timeout=10)
                assert resp.status_code == 200, (path, resp.text[:200])
                assert resp.headers.get("X-Cache") == "bypass", path

        def reported() -> bool:  # each process reuses its last round of checks for up to a second
            health = requests.get(f"{origin}/healthz", timeout=10)  # from 127.0.0.1, the operator's: the details
            assert health.status_code == 200, health.text
            return "redis_cache is down" in health.json()["problems"]

        wait_for(reported, timeout=5, what="/healthz: redis_cache is down")
    finally:
        rpc.startProcess("redis-cache")

    def cached_again():
        statuses = {requests.get(f"{origin}/api/regions/440000", timeout=10).headers["X-Cache"] for _ in range(4)}
        return statuses == {"hit"}

    wait_for(cached_again, timeout=30, interval=0.5, what="cache hits after Redis returned")
    stack.wait_healthy(timeout=60)


def test_local_tier_is_invalidated_by_a_bump_from_another_process(app, settings):
    """The per-process tier forgets a generation as soon as Redis reports that someone moved it."""
    import redis as redis_lib

    from breakwater.cache.local import LocalTier

    prefix = f"{settings['CACHE_PREFIX']}:g:"
    tier = LocalTier(settings.redis_cache_url, prefix)
    tier.ensure_running()
    try:
        wait_for(lambda: tier.healthy, timeout=10, what="the tracker to subscribe")
        namespace = "local-" + uuid.uuid4().hex[:8]
        epoch = tier.epoch
        tier.remember("k", (namespace,), [0], [""], epoch, time.time() + 60, b"v")
        assert tier.get("k", (namespace,)) == b"v"
        other = redis_lib.Redis.from_url(settings.redis_cache_url)  # another process's connection
        other.set(prefix + namespace, "1|")
        wait_for(lambda: tier.get("k", (namespace,)) is None, timeout=2, interval=0.01, what="the invalidation")
        # A read that raced an invalidation is not remembered.
        stale_epoch = tier.epoch
        other.set(prefix + namespace, "2|")
        wait_for(lambda: tier.epoch != stale_epoch, timeout=2, interval=0.01, what="the second invalidation")
        tier.remember("k", (namespace,), [1], [""], stale_epoch, time.time() + 60, b"old")
        assert tier.get("k", (namespace,)) is None
    finally:
        tier.stop()


def test_redis_roles_are_kept_apart(stack, settings):
    """The broker/gate Redis never evicts and keeps an AOF; the cache Redis evicts only TTL'd values."""
    import redis as redis_lib

    broker = redis_lib.Redis.from_url(settings.redis_url)
    cache_redis = redis_lib.Redis.from_url(settings.redis_cache_url)
    assert broker.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    assert broker.config_get("appendonly")["appendonly"] == "yes"
    assert cache_redis.config_get("maxmemory-policy")["maxmemory-policy"] == "volatile-lru"
    assert int(cache_redis.config_get("maxmemory")["maxmemory"]) > 0


def test_pages_do_not_need_the_broker_redis(stack, origin):
    rpc = stack.supervisor.rpc()
    rpc.stopProcess("redis")
    try:
        for path in ("/", "/api/home", "/api/regions/440000"):
            assert requests.get(f"{origin}{path}", timeout=10).status_code == 200, path
    finally:
        rpc.startProcess("redis")
    stack.wait_healthy(timeout=90)


def test_the_dynamic_homepage_renders_once_per_cached_value_and_afresh_after_a_publish(
    editor_api, origin, slug, settings
):
    """The rendered homepage is kept per process for the cached bytes it came from (cache/http.py cached_page):
    the same value is rendered once per web process, not once per request; a publish changes the value, and
    the page follows it."""
    visitor = requests.Session()
    url = f"{origin}/?dynamic={slug}"  # a query string sends / to the app instead of the emitted file
    assert visitor.get(url, timeout=10).status_code == 200  # the value is cached now
    before = counted(origin, "breakwater_cache_renders_total", "home")
    pages = [visitor.get(url, timeout=10) for _ in range(10)]
    rendered = counted(origin, "breakwater_cache_renders_total", "home") - before
    assert {p.status_code for p in pages} == {200} and len({p.text for p in pages}) == 1
    assert {p.headers["X-Cache"] for p in pages} <= {"hit", "stale"}
    assert rendered <= settings.int("WEB_WORKERS"), f"{rendered:.0f} renders for 10 requests of one cached value"
    title = f"Rendered {slug}"
    created = editor_api("POST", "/articles", json={**ARTICLE, "title": title, "slug": slug, "publish": True})
    assert created.status_code == 201, created.text
    # Well within RENDER_TTL (10 s): a page kept regardless of the value would still be the old one.
    before = counted(origin, "breakwater_cache_renders_total", "home")
    wait_for(lambda: title in visitor.get(url, timeout=10).text, timeout=5, what="the new article on the homepage")
    assert counted(origin, "breakwater_cache_renders_total", "home") > before  # rendered afresh, from the new value
    editor_api("DELETE", f"/articles/{created.json()['article']['id']}")
    wait_for(lambda: title not in visitor.get(url, timeout=10).text, timeout=5, what="the article gone again")
