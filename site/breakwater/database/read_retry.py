"""A GET whose replica dies in the middle of the request is answered again, once, from another node.

The session retries a read by itself only when it is the first statement of its transaction (a later one would
see another snapshot). A view that had already read from the replica that died would otherwise answer 503 for a
read the site can serve: when a replica disappears with its host, every request that was halfway through it.
For GET and HEAD, which change nothing, the whole view runs again on a fresh session instead, after the dead
node is taken out of rotation. Writes are never repeated: their error reaches the client as it is.
"""

from __future__ import annotations

import logging

from flask import Flask, g, request
from sqlalchemy.exc import OperationalError

from breakwater.database.router import is_disconnect
from breakwater.observability import db_metrics

log = logging.getLogger(__name__)
SAFE_METHODS = ("GET", "HEAD")


def init_read_retry(app: Flask) -> None:
    db = app.extensions["breakwater.db"]
    dispatch = app.dispatch_request

    def dispatch_request():
        try:
            return dispatch()
        except OperationalError as exc:
            session = db.session() if db.session is not None else None
            node = getattr(session, "_last_node", None)
            if (
                request.method not in SAFE_METHODS
                or g.get("bw_read_retried")
                or not is_disconnect(exc)
                or node is None
                or node == db.primary_name
            ):
                raise
            g.bw_read_retried = True
            why = str(exc.orig)[:120]
            if db.monitor is not None:
                db.monitor.mark_down(node, why)
            db_metrics.STATEMENTS.labels(node, "request_retry").inc()
            log.warning("%s %s lost %s mid-request (%s); running it again on another node", request.method,
                        request.path, node, why)  # fmt: skip
            session.rollback()
            return dispatch()

    app.dispatch_request = dispatch_request  # type: ignore[method-assign]
