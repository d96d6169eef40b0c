"""JSON log lines, each carrying the id of the request that caused it."""

from __future__ import annotations

import json
import logging
import time
import uuid
from contextvars import ContextVar

from flask import Flask, g, request

from breakwater.observability.log_sink import NonBlockingHandler

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
_REQUEST_ID_OK = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = request_id_var.get()
        if rid:
            entry["request_id"] = rid
        for key, value in getattr(record, "fields", {}).items():
            entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str) -> None:
    """JSON lines on stderr through a :class:`NonBlockingHandler`: a stalled log reader drops lines
    (counted) instead of stalling requests."""
    root = logging.getLogger()
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = NonBlockingHandler()
    handler.setFormatter(JsonFormatter())
    root.handlers = [handler]
    root.setLevel(level.upper())


def _incoming_request_id() -> str:
    rid = request.headers.get("X-Request-ID", "")
    # Accept the proxy's id only when it is short and plain, so it cannot forge log lines.
    if 0 < len(rid) <= 64 and set(rid) <= _REQUEST_ID_OK:
        return rid
    return uuid.uuid4().hex


def init_request_logging(app: Flask) -> None:
    access = logging.getLogger("breakwater.access")

    @app.before_request
    def _start():
        g.request_id = _incoming_request_id()
        g.request_token = request_id_var.set(g.request_id)
        g.request_started = time.perf_counter()

    @app.after_request
    def _finish(response):
        rid = g.get("request_id")
        if rid:
            response.headers["X-Request-ID"] = rid
            elapsed = time.perf_counter() - g.request_started
            access.info(
                "request",
                extra={
                    "fields": {
                        "client": request.remote_addr,  # the visitor, as the edge and the origin settled it
                        "method": request.method,
                        "path": request.path,
                        "status": response.status_code,
                        "ms": round(elapsed * 1000, 2),
                    }
                },
            )
        return response

    @app.teardown_request
    def _reset(_exc):
        token = g.pop("request_token", None)
        if token is not None:
            request_id_var.reset(token)
