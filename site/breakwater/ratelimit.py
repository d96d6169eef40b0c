"""Rate limits (Flask-Limiter on the broker Redis, sliding-window counters).

Login: failed attempts are limited per client address *and* account name, so guessing one
account's password is slow while nobody can lock a user out from elsewhere. Only failures count.
When Redis is unreachable the limiter fails open (with an in-process fallback): logging in must not
depend on Redis, and the in-process counter still slows a single attacker per app process.
"""

from __future__ import annotations

from flask import Flask, request
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from flask_limiter.util import get_remote_address

from breakwater.errors import error_response
from breakwater.redis_clients import limiter_options
from breakwater.settings import Settings

limiter = Limiter(get_remote_address, strategy="sliding-window-counter", key_prefix="bw-rl")


def init_limits(app: Flask, settings: Settings) -> None:
    app.config.update(
        RATELIMIT_STORAGE_URI=settings.redis_url,
        RATELIMIT_STORAGE_OPTIONS=limiter_options(settings.redis_url, settings.float("REDIS_TIMEOUT")),
        RATELIMIT_SWALLOW_ERRORS=True,
        RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=True,
        # No X-RateLimit-* headers: each costs one more storage call per limited request (a hung Redis
        # would cost its timeout again), and Flask-Limiter's Retry-After rounding turns a 503's "1" into "0".
        # A 429 says when to come back itself (below).
        RATELIMIT_HEADERS_ENABLED=False,
    )
    app.config["BREAKWATER_LOGIN_FAIL_RATE"] = settings["LOGIN_FAIL_RATE"]
    limiter.init_app(app)

    @app.errorhandler(RateLimitExceeded)
    def _limited(exc: RateLimitExceeded):
        wait = exc.limit.limit.get_expiry()  # the limit's window: by then it has room again
        response, status = error_response(
            429, "rate_limited", f"Too many attempts ({exc.description}); wait {wait} s and try again."
        )
        response.headers["Retry-After"] = str(wait)
        return response, status


def login_key() -> str:
    """Client address plus the account name being tried."""
    data = request.get_json(silent=True) if request.is_json else request.form
    name = data.get("name") if isinstance(data, dict) or hasattr(data, "get") else None
    name = name.strip().lower()[:64] if isinstance(name, str) else ""
    return f"{get_remote_address()}|{name}"


def login_fail_rate() -> str:
    from flask import current_app

    return current_app.config["BREAKWATER_LOGIN_FAIL_RATE"]


def login_limit():
    """Decorator for login views: only failed attempts (401) count."""
    return limiter.limit(
        login_fail_rate, key_func=login_key, methods=["POST"], deduct_when=lambda response: response.status_code == 401
    )
