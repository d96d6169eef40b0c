"""The app's extensions and clients: created unbound here or in ``create_app``, read through typed accessors.

``db`` and ``csrf`` are bound to the app inside ``create_app``; the clients it builds (the two Redis roles, the
cache, the flash gate and its sold-out flags...) live in ``app.extensions`` under the keys below, and every
other module reads them through these functions, never by string key. Each accessor takes an app, or uses
the current one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import redis
from flask import Flask, current_app
from flask_wtf.csrf import CSRFProtect

from breakwater.database import Database
from breakwater.settings import Settings

if TYPE_CHECKING:
    from breakwater.cache.store import Cache
    from breakwater.flash.gate import Gate
    from breakwater.flash.soldout import SoldOutFlags

csrf = CSRFProtect()
db = Database()

SETTINGS = "breakwater.settings"
BROKER = "breakwater.redis"  # the broker/gate Redis: never evicts
CACHE_REDIS = "breakwater.redis_cache"  # the cache Redis: may evict
CACHE = "breakwater.cache"
FLASH_GATE = "breakwater.flash.gate"
SOLDOUT = "breakwater.flash.soldout"
PURCHASE_PATH = "breakwater.flash.purchase_path"
NOTIFY_ORDER = "breakwater.notify_order"
AFTER_INVALIDATE = "breakwater.after_invalidate"


def _get(app: Flask | None, key: str) -> Any:
    return (app or current_app).extensions[key]


def settings(app: Flask | None = None) -> Settings:
    return _get(app, SETTINGS)


def broker(app: Flask | None = None) -> redis.Redis:
    """The broker/gate Redis (Celery's results, the flash gate, the page builder's coalescing set)."""
    return _get(app, BROKER)


def cache_redis(app: Flask | None = None) -> redis.Redis:
    return _get(app, CACHE_REDIS)


def cache(app: Flask | None = None) -> Cache:
    return _get(app, CACHE)


def flash_gate(app: Flask | None = None) -> Gate:
    return _get(app, FLASH_GATE)


def soldout_flags(app: Flask | None = None) -> SoldOutFlags:
    return _get(app, SOLDOUT)


def purchase_path(app: Flask | None = None) -> str:
    """``gate`` (the default) or ``database`` (only to compare the two in ``make bench-flash``)."""
    return _get(app, PURCHASE_PATH)


def notify_order(app: Flask | None = None) -> Callable | None:
    """The confirmation mail's outbox writer, when notifications are on."""
    return (app or current_app).extensions.get(NOTIFY_ORDER)


def after_invalidate(app: Flask | None = None) -> list[Callable]:
    """Hooks run after a commit that invalidated cache namespaces (the page rebuild, the sales' homepage)."""
    return (app or current_app).extensions.setdefault(AFTER_INVALIDATE, [])
