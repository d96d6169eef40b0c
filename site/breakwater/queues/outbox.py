"""The transactional outbox: a task to send after a commit is written in the commit itself.

* :func:`add` puts an ``outbox`` row into the caller's transaction. Namespaces recorded with
  ``cache.invalidation.invalidate()`` get one row too (``breakwater.outbox.after_commit``), added
  just before the commit, so page rebuilds and purges hang on the same transaction as the change.
* After the commit the process sends the rows' tasks itself (the fast path; the invalidation row's
  work is done by the cache's own after-commit hook) and deletes the rows.
* If the process dies between commit and send (or the broker refuses the send), the rows stay.
  The relay (:func:`relay`, run by Celery beat every ``BREAKWATER_OUTBOX_RELAY_INTERVAL`` seconds)
  sends every row older than ``BREAKWATER_OUTBOX_GRACE`` and deletes it in the same transaction
  (``FOR UPDATE SKIP LOCKED``, so two relays never send one row twice at once).
* Delivery is at least once: a relay that dies after sending but before its commit sends again.
  Every task reached this way is idempotent.
"""

from __future__ import annotations

import json
import logging

from celery import shared_task
from flask import current_app, has_app_context
from sqlalchemy import delete, event, select, text
from sqlalchemy.orm import Session

from breakwater import extensions
from breakwater.cache import invalidation
from breakwater.queues.models import OutboxMessage

log = logging.getLogger(__name__)

_KEY = "breakwater.outbox"
AFTER_COMMIT = "breakwater.outbox.after_commit"


def add(session: Session, task: str, args: list | tuple = (), kwargs: dict | None = None) -> OutboxMessage:
    """Send ``task`` once the session's transaction commits (never if it rolls back)."""
    row = OutboxMessage(task=task, args=json.dumps(list(args)), kwargs=json.dumps(kwargs or {}))
    session.add(row)
    session.info.setdefault(_KEY, []).append(row)
    return row


@event.listens_for(Session, "before_commit")
def _record_invalidation(session: Session) -> None:
    namespaces = session.info.get(invalidation._KEY)
    if namespaces and not any(r.task == AFTER_COMMIT for r in session.info.get(_KEY, ())):
        add(session, AFTER_COMMIT, kwargs={"namespaces": sorted(namespaces)})


def _send(task: str, args: list, kwargs: dict) -> None:
    current_app.extensions["celery"].send_task(task, args=args, kwargs=kwargs)


@event.listens_for(Session, "after_commit")
def _send_after_commit(session: Session) -> None:
    rows = session.info.pop(_KEY, None)
    if not rows or not has_app_context():
        return
    done = []
    for row in rows:
        try:
            if row.task != AFTER_COMMIT:  # the cache's own after-commit hook did that one's work
                _send(row.task, json.loads(row.args), json.loads(row.kwargs))
            done.append(row.id)
        except Exception as exc:  # the relay sends it later
            log.warning("outbox: %s not sent after commit (%s); the relay will send it", row.task, exc)
    if done:
        from breakwater.extensions import db

        try:
            with db.primary_engine.begin() as conn:
                conn.execute(delete(OutboxMessage).where(OutboxMessage.id.in_(done)))
        except Exception as exc:  # sent twice later at worst: every outbox task is idempotent
            log.warning("outbox: could not delete sent rows %s: %s", done, exc)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_KEY, None)


@shared_task(name="breakwater.outbox.relay", ignore_result=True)
def relay(limit: int = 500) -> int:
    """Send what was committed but not sent; returns how many rows went out. Then measures what is left (the
    backlog gauges: a relay that cannot send, or does not run, shows there)."""
    try:
        return _relay(limit)
    finally:
        _measure_backlog()


def _measure_backlog() -> None:
    from breakwater.extensions import db
    from breakwater.queues.metrics import record_outbox

    try:
        with db.primary_engine.connect() as conn:
            rows, oldest_us = conn.execute(
                text("SELECT COUNT(*), TIMESTAMPDIFF(MICROSECOND, MIN(created_at), NOW(6)) FROM outbox")
            ).one()
    except Exception as exc:  # the primary away: the gauges keep their last values and their time
        log.warning("outbox: could not measure the backlog: %s", exc)
        return
    record_outbox(int(rows), None if oldest_us is None else oldest_us / 1e6)


def _relay(limit: int) -> int:
    from breakwater.extensions import db

    grace = extensions.settings().float("OUTBOX_GRACE")
    with db.primary_engine.begin() as conn:
        rows = conn.execute(
            select(OutboxMessage.id, OutboxMessage.task, OutboxMessage.args, OutboxMessage.kwargs)
            .where(text("created_at < NOW(6) - INTERVAL :grace MICROSECOND").bindparams(grace=int(grace * 1e6)))
            .order_by(OutboxMessage.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        for row in rows:
            _send(row.task, json.loads(row.args), json.loads(row.kwargs))
        if rows:
            conn.execute(delete(OutboxMessage).where(OutboxMessage.id.in_([r.id for r in rows])))
            log.warning("outbox relay sent %d task(s) their committing process did not send", len(rows))
    return len(rows)


@shared_task(name=AFTER_COMMIT, ignore_result=True)
def after_commit(namespaces: list[str]) -> None:
    """What the cache's after-commit hook does, for a commit whose process died before doing it: move the
    generations and run the hooks (page rebuild). The primary's current position covers that commit."""
    from breakwater.extensions import db

    with db.primary_engine.connect() as conn:
        token = conn.execute(text("SELECT @@gtid_binlog_pos")).scalar_one() or ""
    seq = extensions.cache().bump(*sorted(namespaces), token=token)
    for hook in extensions.after_invalidate():
        hook(tuple(sorted(namespaces)), token, seq)


def send_durably(task: str, args: list | tuple = (), kwargs: dict | None = None) -> None:
    """For a send outside any request transaction (a task sending the next task): the intent is
    committed first, so a death between here and the broker leaves it to the relay."""
    from breakwater.extensions import db

    values = {"task": task, "args": json.dumps(list(args)), "kwargs": json.dumps(kwargs or {})}
    with db.primary_engine.begin() as conn:
        row_id = conn.execute(OutboxMessage.__table__.insert().values(**values)).inserted_primary_key[0]
    try:
        _send(task, list(args), kwargs or {})
    except Exception as exc:
        log.warning("outbox: %s not sent (%s); the relay will send it", task, exc)
        return
    with db.primary_engine.begin() as conn:
        conn.execute(delete(OutboxMessage).where(OutboxMessage.id == row_id))
