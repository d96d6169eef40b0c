"""Breakwater: a Flask content site that stays fast and correct under traffic spikes."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

import redis
from flask import Flask

from breakwater import extensions
from breakwater.proxies import FrontServerProxyFix
from breakwater.settings import Settings

__version__ = "0.1.0"


def create_app(config: Mapping[str, object] | Settings | None = None) -> Flask:
    """Build the app. ``config`` is a Settings object, or a mapping of Flask config overrides."""
    settings = config if isinstance(config, Settings) else Settings.load()
    app = Flask(__name__)
    # The client's address as the origin settled it, believed only from the origin (breakwater/proxies.py).
    app.wsgi_app = FrontServerProxyFix(app.wsgi_app, settings.app_trusted_proxies)  # type: ignore[method-assign]
    app.config.update(
        SECRET_KEY=settings["SECRET_KEY"] or None,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.flag("COOKIE_SECURE"),
        SESSION_COOKIE_NAME="bw_session",
        PERMANENT_SESSION_LIFETIME=timedelta(days=14),
        MAX_CONTENT_LENGTH=1024 * 1024,
        MAX_NAME_LENGTH=settings.int("MAX_NAME_LENGTH"),
        ARTICLE_MAX_BYTES=settings.int("ARTICLE_MAX_BYTES"),
        JSON_SORT_KEYS=False,
        WTF_CSRF_TIME_LIMIT=None,
    )
    if isinstance(config, Mapping):
        app.config.update(config)
    if not app.config["SECRET_KEY"]:
        raise RuntimeError(
            "BREAKWATER_SECRET_KEY is not set; start the stack once with `make run` (it generates one into "
            ".stack/secrets.env) or export BREAKWATER_SECRET_KEY."
        )
    app.extensions[extensions.SETTINGS] = settings

    from breakwater.observability.logging import configure_logging, init_request_logging
    from breakwater.observability.metrics import init_metrics

    configure_logging(settings["LOG_LEVEL"])
    init_request_logging(app)
    init_metrics(app)

    from breakwater.extensions import csrf, db

    db.init_app(app, settings)

    from breakwater.database.consistency import init_consistency

    init_consistency(app, settings)  # before CSRF: its error page may already read the database
    from breakwater.database.read_retry import init_read_retry

    init_read_retry(app)
    csrf.init_app(app)
    redis_timeout = settings.float("REDIS_TIMEOUT")

    from breakwater.redis_clients import from_url

    def redis_client(url: str) -> redis.Redis:
        return from_url(
            url, socket_timeout=redis_timeout, socket_connect_timeout=redis_timeout, health_check_interval=30
        )

    # Two Redis roles: the broker/gate must never evict; the cache may.
    app.extensions[extensions.BROKER] = redis_client(settings.redis_url)
    app.extensions[extensions.CACHE_REDIS] = redis_client(settings.redis_cache_url)

    import breakwater.cache.invalidation
    from breakwater.cache.breaker import CircuitBreaker
    from breakwater.cache.store import Cache

    app.extensions[extensions.CACHE] = Cache(
        extensions.cache_redis(app),
        prefix=settings["CACHE_PREFIX"],
        enabled=settings.flag("CACHE_ENABLED"),
        breaker=CircuitBreaker(cooldown=settings.float("CACHE_BREAKER_COOLDOWN")),
        local_url=settings.redis_cache_url if settings.flag("CACHE_LOCAL") else None,
        before_refill=lambda: db.session().release_read_snapshot(),
    )

    from breakwater.ratelimit import init_limits

    init_limits(app, settings)

    from breakwater.tasks import celery_init_app

    celery_init_app(app, settings)
    import breakwater.health.tasks  # registers the tasks
    import breakwater.queues.outbox
    from breakwater.notify.tasks import init_app as init_notify

    init_notify(app)
    from breakwater.web.errors import register_error_handlers

    register_error_handlers(app)
    _register_blueprints(app, csrf)
    _security_headers(app)

    from breakwater.accounts.session import current_user

    app.jinja_env.globals["current_user"] = current_user
    from breakwater.pages import init_pages

    init_pages(app)
    from breakwater.content import init_content

    init_content(app)
    import breakwater.home.pages
    import breakwater.regions.pages  # noqa: F401  (each feature's static pages, registered on import)
    from breakwater.flash import init_flash

    init_flash(app)
    from breakwater.media import init_media

    init_media(app)
    from breakwater.localtime import init_localtime

    init_localtime(app)
    from breakwater.openapi import init_openapi

    init_openapi(app)
    return app


def _register_blueprints(app: Flask, csrf) -> None:
    from breakwater.accounts import api as accounts_api
    from breakwater.accounts import views as accounts_views
    from breakwater.content import api as content_api
    from breakwater.content import views as content_views
    from breakwater.editor import api as editor_api
    from breakwater.editor import views as editor_views
    from breakwater.health import views as health_views
    from breakwater.home import api as home_api
    from breakwater.home import views as home_views
    from breakwater.regions import api as regions_api
    from breakwater.regions import cascade as regions_cascade
    from breakwater.regions import views as regions_views

    for bp in (
        home_views.bp,
        accounts_views.bp,
        health_views.bp,
        content_views.bp,
        regions_views.bp,
        regions_cascade.bp,
        editor_views.bp,
    ):
        app.register_blueprint(bp)
    for bp in (accounts_api.bp, home_api.bp, content_api.bp, regions_api.bp):
        csrf.exempt(bp)  # JSON-only writes; see breakwater.web.json_api.require_json_for_writes
        app.register_blueprint(bp)
    # Session-authenticated editor writes check the CSRF token themselves; bearer tokens need none.
    csrf.exempt(editor_api.bp)
    app.register_blueprint(editor_api.bp)
    from breakwater.dashboard import views as dashboard_views  # /ops/: operators and editors

    app.register_blueprint(dashboard_views.bp)


def _security_headers(app: Flask) -> None:
    @app.after_request
    def _headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        response.headers.setdefault(
            "Content-Security-Policy", "default-src 'self'; img-src 'self' data: https:; object-src 'none'"
        )
        return response
