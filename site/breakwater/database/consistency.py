"""Per-request consistency: causal tokens in and out, and per-view contracts.

* ``@consistency("causal")``: read your own writes (the default whenever the request carries a token);
* ``@consistency("bounded", max_lag=2.0)``: any replica at most ``max_lag`` seconds behind;
* ``@consistency("strong")``: the primary.

Requests without a token and without a contract read from any replica in rotation.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from flask import Flask, g, request, session
from itsdangerous import BadSignature, Signer

from breakwater.common.errors import ApiError
from breakwater.database import causal
from breakwater.settings import Settings

MODES = {"causal", "bounded", "strong", "eventual"}
HEADER = "X-Causal-Token"
COOKIE_KEY = "gtid"
SEQ_KEY = "cseq"  # the highest cache-bump sequence of this client's publishes
RW_COOKIE = "bw_rw"  # set for a while after a browser's own write (no secret in it)
RW_SECONDS = 300


def consistency(mode: str, max_lag: float | None = None) -> Callable:
    if mode not in MODES:
        raise ValueError(f"unknown consistency mode {mode!r}; use one of {sorted(MODES)}")
    if mode == "bounded" and (max_lag is None or max_lag < 0):
        raise ValueError('consistency("bounded") needs max_lag=<seconds>')

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args, **kwargs):
            state = causal.state()
            state.mode, state.max_lag = mode, max_lag
            return view(*args, **kwargs)

        wrapper.consistency = (mode, max_lag)  # type: ignore[attr-defined]
        return wrapper

    return decorate


def token_signer(app: Flask) -> Signer:
    """Tokens handed to API clients are signed: a client can only send back positions we issued,
    so nobody can make every read wait for a GTID the primary has never written."""
    return Signer(app.secret_key, salt="breakwater.causal-token")


def init_consistency(app: Flask, settings: Settings) -> None:
    debug_routes = settings.flag("DEBUG_ROUTES")
    signer = token_signer(app)
    secure_cookies = settings.flag("COOKIE_SECURE")

    @app.before_request
    def _begin() -> None:
        header = request.headers.get(HEADER, "")
        try:
            header, header_seq = _split(signer.unsign(header).decode()) if header else ("", 0)
            causal.parse(header)
        except (BadSignature, causal.InvalidToken) as exc:
            g.causality_token = causal.current.set(causal.Causality())
            raise ApiError(
                400,
                "invalid_causal_token",
                f"The {HEADER} header must be a token this site issued, sent back unchanged ({exc}).",
            ) from None
        token = causal.merge(session.get(COOKIE_KEY), header) if (header or COOKIE_KEY in session) else ""
        seq = max(header_seq, _int(session.get(SEQ_KEY)))
        state = causal.Causality(token=token, mode="causal" if token else "eventual", cache_seq=seq)
        g.causal_incoming = (token, seq)
        g.causality_token = causal.current.set(state)

    @app.after_request
    def _finish(response):
        state = causal.current.get()
        if state is None:
            return response
        if state.token:
            value = f"{state.token}~{state.cache_seq}" if state.cache_seq else state.token
            response.headers[HEADER] = signer.sign(value).decode()
            changed = (state.token, state.cache_seq) != g.get("causal_incoming")
            if changed or session.get(COOKIE_KEY) != state.token:
                session[COOKIE_KEY] = state.token
            if state.cache_seq > _int(session.get(SEQ_KEY)):
                session[SEQ_KEY] = state.cache_seq
            if changed and state.token != g.get("causal_incoming", ("",))[0]:
                # This request wrote. Tells Nginx and the edge, which cannot read the signed session,
                # that this browser has writes of its own to read: for RW_SECONDS its page requests
                # bypass static files and caches (static rebuilds take about a second).
                response.set_cookie(
                    RW_COOKIE, "1", max_age=RW_SECONDS, httponly=True, samesite="Lax", secure=secure_cookies
                )
        if debug_routes and state.routes:
            response.headers["X-DB-Route"] = ",".join(dict.fromkeys(state.routes))
        return response

    @app.teardown_request
    def _end(_exc) -> None:
        token = g.pop("causality_token", None)
        if token is not None:
            causal.current.reset(token)


def _split(value: str) -> tuple[str, int]:
    """``'0-1-42~17'`` -> ``('0-1-42', 17)``: the GTID list and the cache-bump sequence."""
    token, _, seq = value.partition("~")
    if seq and not seq.isdigit():
        raise causal.InvalidToken("malformed cache sequence")
    return token, int(seq or 0)


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0
