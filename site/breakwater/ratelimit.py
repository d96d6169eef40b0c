"""Rate limits (Flask-Limiter on the broker Redis, sliding-window counters), always per client.

The client is the visitor's own address as the origin settled it from the edge's X-Forwarded-For
(breakwater/proxies.py), never a bucket that every visitor behind the edge shares.

- Login: failed attempts count per client address and account name (LOGIN_FAIL_RATE), and per address over
  all names (LOGIN_ADDRESS_FAIL_RATE): a guesser is throttled at their own address. Nobody can lock the owner
  out from elsewhere: failures on an account from every address only *slow* further attempts on it
  (:func:`login_attempt`, at most LOGIN_SLOWDOWN_MAX seconds), they never refuse them.
- Registration: REGISTER_RATE accounts per address (a bot making N accounts would buy N times the
  per-buyer limit of a flash sale).
- Purchases (flash/api.py): per buyer and per address.

When Redis is unreachable the limiter fails open (with an in-process fallback): logging in must not
depend on Redis, and the in-process counter still slows a single attacker per app process.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import redis
from flask import Flask, current_app, request
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from flask_limiter.util import get_remote_address

from breakwater import extensions
from breakwater.redis_clients import limiter_options
from breakwater.settings import Settings
from breakwater.web.errors import ApiError, error_response

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
    for name in ("LOGIN_FAIL_RATE", "LOGIN_ADDRESS_FAIL_RATE", "REGISTER_RATE"):
        app.config[f"BREAKWATER_{name}"] = settings[name]
    app.config["BREAKWATER_LOGIN_SLOWDOWN_MAX"] = settings.float("LOGIN_SLOWDOWN_MAX")
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


def _config(name: str):
    def value() -> str:
        return current_app.config[f"BREAKWATER_{name}"]

    return value


def _failed(response) -> bool:
    return response.status_code == 401


def login_limit():
    """Decorator for login views: only failed attempts (401) count, per address and account name, and per
    address over every name."""
    per_account = limiter.limit(
        _config("LOGIN_FAIL_RATE"), key_func=login_key, methods=["POST"], deduct_when=_failed, scope="login-account"
    )
    per_address = limiter.limit(
        _config("LOGIN_ADDRESS_FAIL_RATE"), key_func=get_remote_address, methods=["POST"], deduct_when=_failed,
        scope="login-address",
    )  # fmt: skip

    def decorate(view):
        return per_address(per_account(view))

    return decorate


def register_limit():
    """Decorator for registration views: accounts created per client address (only successes count)."""
    return limiter.limit(
        _config("REGISTER_RATE"), key_func=get_remote_address, methods=["POST"], scope="register",
        deduct_when=lambda response: response.status_code in (200, 201, 302, 303),
    )  # fmt: skip


#: Failures on one account (from any address) are remembered this long.
FAILURE_MEMORY_S = 900
#: Failures an account takes before its attempts slow down; then each one more doubles the wait.
SLOW_AFTER = 5
FIRST_WAIT_S = 0.25


@contextlib.contextmanager
def login_attempt(name: object) -> Iterator[None]:
    """Around the password check: an account that failed many times lately (from any address) makes each
    attempt wait first, 0.25 s doubling up to LOGIN_SLOWDOWN_MAX, instead of refusing it, so the owner still
    gets in and a guesser gets few tries. Redis unreachable: no waiting (the per-address limits still hold)."""
    key = f"bw-login-failures:{name.strip().lower()[:64]}" if isinstance(name, str) and name.strip() else None
    client = extensions.broker()
    if key is not None:
        with contextlib.suppress(redis.RedisError, ValueError, TypeError):
            failures = int(client.get(key) or 0)
            if failures >= SLOW_AFTER:
                cap = current_app.config["BREAKWATER_LOGIN_SLOWDOWN_MAX"]
                time.sleep(min(cap, FIRST_WAIT_S * 2 ** (failures - SLOW_AFTER)))
    try:
        yield
    except ApiError as exc:
        if key is not None and exc.status == 401:
            with contextlib.suppress(redis.RedisError):
                client.pipeline().incr(key).expire(key, FAILURE_MEMORY_S).execute()
        raise
