"""Error responses: JSON ``{"error": {"code", "message"}}`` under /api/, an HTML page elsewhere."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException

from breakwater.common.errors import ApiError
from breakwater.database import PrimaryUnavailable

log = logging.getLogger(__name__)


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.path in ("/healthz",)


def error_response(status: int, code: str, message: str, **details: object):
    if wants_json():
        body: dict = {"error": {"code": code, "message": message}}
        if details:
            body["error"]["details"] = details
        return jsonify(body), status
    return render_template("error.html", status=status, code=code, message=message), status


def _code_for(exc: HTTPException) -> str:
    return (exc.name or "error").lower().replace(" ", "_").replace("'", "")


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, **exc.details)

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError):
        return error_response(400, "csrf_failed", f"{exc.description} Reload the page and submit the form again.")

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        return error_response(exc.code or 500, _code_for(exc), exc.description or exc.name)

    @app.errorhandler(PrimaryUnavailable)
    def _primary(exc: PrimaryUnavailable):
        return error_response(503, "primary_unavailable", "Writes are unavailable right now; retry in a moment.")

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    def _db_down(exc: DBAPIError):
        log.error("database unavailable: %s", exc.orig)
        return error_response(503, "database_unavailable", "The database is unavailable right now; retry in a moment.")

    @app.errorhandler(PoolTimeoutError)
    def _pool_exhausted(exc: PoolTimeoutError):
        log.error("database connection pool exhausted: %s", exc)
        return error_response(503, "database_busy", "The site is very busy right now; retry in a moment.")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        return error_response(500, "internal_error", "Something went wrong on our side; it has been logged.")
