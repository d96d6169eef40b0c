"""Rebuild the pages a commit affected, after the commit, coalesced; then purge them at the edges.

* The commit hook (:func:`queue_rebuild`, called by the cache's after-commit invalidation) adds one
  entry per change to a Redis set on the broker Redis, ``<namespace>\\t<causal token>~<cache seq>``,
  and schedules a rebuild ``BREAKWATER_PAGES_COALESCE_SECONDS`` later unless one is scheduled already:
  ten publishes in that window cause one homepage build.
* The task takes every pending entry, builds with the merged causal token (never a replica older
  than any of the publishes), removes exactly the entries it built only once the files are written:
  a worker killed mid-build leaves them pending and the redelivered task builds them again
  (builds are idempotent: same data, same bytes, nothing rewritten).
* Then it sends a purge of exactly the changed URLs and keys, and schedules a rebuild for the next
  moment an ad window opens or closes, so the static homepage shows it on time without a publish.
"""

from __future__ import annotations

import json
import logging
import random
import time

import redis
from celery import shared_task
from flask import Flask, current_app

from breakwater import extensions
from breakwater.database import causal
from breakwater.observability import page_metrics

log = logging.getLogger(__name__)

PENDING = "bw:pages:pending"
SCHEDULED = "bw:pages:scheduled"
AD_EDGE = "bw:pages:ad-edge"
HISTORY = "bw:pages:history"  # the last builds, newest first (`breakwater pages history`)


def init_app(app: Flask) -> None:
    extensions.after_invalidate(app).append(queue_rebuild)


def _broker() -> redis.Redis:
    return extensions.broker()


def queue_rebuild(namespaces: tuple[str, ...], token: str = "", seq: int = 0) -> None:
    """After a commit: remember what changed and make sure a rebuild is on its way."""
    settings = extensions.settings()
    if not settings.flag("PAGES_REBUILD"):
        return
    entries = [f"{ns}\t{token}~{seq}" for ns in namespaces]
    delay = settings.float("PAGES_COALESCE_SECONDS")
    try:
        client = _broker()
        client.sadd(PENDING, *entries)
        if not client.set(SCHEDULED, "1", nx=True, px=int(max(delay, 1) * 30_000)):
            page_metrics.COALESCED.inc()
            return
        rebuild.apply_async(countdown=delay)
    except Exception as exc:
        # Without the coalescing set the change still travels, in the task's own arguments.
        log.warning("pages: coalescing unavailable (%s); sending the rebuild directly", exc)
        try:
            rebuild.apply_async(kwargs={"namespaces": list(namespaces), "token": token, "seq": seq})
        except Exception as send_exc:
            page_metrics.LOST_TRIGGERS.inc()
            log.error("pages: could not queue a rebuild of %s: %s", namespaces, send_exc)


def _take_pending(client: redis.Redis) -> tuple[list[bytes], set[str], str, int]:
    entries = list(client.smembers(PENDING))
    namespaces, tokens, seq = set(), [], 0
    for raw in entries:
        ns, _, rest = raw.decode().partition("\t")
        token, _, s = rest.partition("~")
        namespaces.add(ns)
        tokens.append(token)
        seq = max(seq, int(s or 0))
    return entries, namespaces, causal.merge(*tokens), seq


def urls_to_purge(changed: list[str]) -> list[str]:
    """Changed URLs minus content-hashed ones (assets, region data, media): a hashed name never gets other
    bytes, so an edge copy of it is never stale. A regions rebuild changes ~3,400 such files; one
    PURGE each would keep the single worker busy long after the build."""
    from breakwater.pages import registry

    return [u for u in changed if not u.startswith(registry.hashed_prefixes())]


@shared_task(
    name="breakwater.pages.rebuild",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(Exception,),
    retry_backoff=1,
    retry_backoff_max=30,
    retry_jitter=True,
    max_retries=8,
    soft_time_limit=120,
    time_limit=150,
)
def rebuild(self, namespaces: list[str] | None = None, token: str = "", seq: int = 0) -> dict:
    from breakwater.pages.builder import Builder

    client = _broker()
    client.delete(SCHEDULED)  # publishes from now on schedule another run
    entries, pending_ns, pending_token, pending_seq = _take_pending(client)
    wanted = set(namespaces or ()) | pending_ns
    if not wanted:
        return {"written": [], "removed": []}
    token, seq = causal.merge(token, pending_token), max(seq, pending_seq)
    started = time.monotonic()
    report = Builder(current_app._get_current_object(), token=token, cache_seq=seq).rebuild(wanted)
    if entries:
        client.srem(PENDING, *entries)
    page_metrics.BUILDS.labels("incremental").inc()
    page_metrics.BUILD_SECONDS.observe(time.monotonic() - started)
    page_metrics.WRITTEN.inc(len(report.written))
    record = {"at": time.time(), "namespaces": sorted(wanted), **report.to_json()}
    client.pipeline().lpush(HISTORY, json.dumps(record)).ltrim(HISTORY, 0, 199).execute()
    urls = urls_to_purge(report.changed_urls)
    if urls or report.keys:
        from breakwater.queues.outbox import send_durably

        send_durably("breakwater.pages.purge", [urls, sorted(report.keys)])
    if "/" in report.written or "ads" in wanted or "flashes" in wanted or not self.request.retries:
        schedule_ad_edge()
    log.info("pages rebuilt: %s", report.to_json())
    return report.to_json()


def schedule_ad_edge() -> None:
    """One rebuild at the next moment an ad window or a sale opens or closes (if none is scheduled earlier):
    the homepage shows the ads and the sales of the moment."""
    from breakwater.extensions import db
    from breakwater.pages import registry

    next_edge = registry.seconds_to_next_change(db.session)
    if next_edge is None:
        return
    at = time.time() + next_edge
    client = _broker()
    current = client.get(AD_EDGE)
    if current is not None and time.time() < float(current) <= at + 0.05:
        return  # an earlier (or the same) edge is already scheduled
    client.set(AD_EDGE, repr(at), px=int((next_edge + 60) * 1000))
    ad_window.apply_async(countdown=next_edge + 0.2)


@shared_task(name="breakwater.pages.ad_window", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def ad_window() -> None:
    """An ad window or a sale opened or closed: move the ads and sales generations (the cached homepage data
    knew nothing of the clock) and rebuild the homepage."""
    _broker().delete(AD_EDGE)
    seq = extensions.cache().bump("ads", "flashes")
    queue_rebuild(("ads", "flashes"), "", seq)


@shared_task(
    name="breakwater.pages.purge",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=8,
    ignore_result=True,
)
def purge(self, urls: list[str], keys: list[str]) -> dict:
    """Purge at every endpoint of BREAKWATER_CDN_PURGE_URLS, retrying with backoff; a purge that keeps
    failing is logged and counted (``breakwater_pages_purge_failures_total``), never dropped silently."""
    from breakwater.edge.purge import PurgeError
    from breakwater.edge.purge import purge as purge_at

    endpoints = extensions.settings().cdn_purge_urls
    if not endpoints:
        return {"endpoints": 0}
    try:
        report = purge_at(urls, keys, endpoints)
        return {"endpoints": len(report.endpoints), "urls": len(report.urls), "keys": len(report.keys)}
    except PurgeError as exc:
        if self.request.retries >= self.max_retries:
            page_metrics.PURGE_GAVE_UP.inc()
            log.error("purge of %d URLs / %d keys gave up after %d attempts: %s", len(urls), len(keys),
                      self.request.retries + 1, exc)  # fmt: skip
            raise
        raise self.retry(exc=exc, countdown=min(60, 2**self.request.retries) * (0.5 + random.random())) from exc


def history(client: redis.Redis, limit: int = 20) -> list[dict]:
    return [json.loads(raw) for raw in client.lrange(HISTORY, 0, limit - 1)]
