"""Tasks that finally failed, kept in the database where an operator finds them.

`breakwater tasks failed` lists them; `breakwater tasks retry ID` sends one again (a new task id,
the same name, arguments and queue) and notes when.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime

from flask import current_app
from sqlalchemy import select

from breakwater.queues.models import FailedTask
from breakwater.queues.routing import queue_for

log = logging.getLogger(__name__)


def record(task_id: str, task: str, args: object, kwargs: object, error: str, attempts: int, queue: str = "") -> None:
    """Insert on the primary in a transaction of its own; never raises (the log keeps it then)."""
    from breakwater.extensions import db

    row = {
        "task_id": task_id or "",
        "task": task,
        "queue": queue or queue_for(task),
        "args": json.dumps(args, default=repr),
        "kwargs": json.dumps(kwargs, default=repr),
        "error": error[:4000],
        "attempts": attempts,
    }
    log.error("task %s[%s] failed for good after %d attempt(s): %s", task, task_id, attempts, error[:500])
    from breakwater.queues.metrics import record_failed_for_good

    record_failed_for_good(task, row["queue"])
    try:
        with db.primary_engine.begin() as conn:
            conn.execute(FailedTask.__table__.insert().values(**row))
    except Exception as exc:
        log.error("could not record the failed task %s[%s] (%s): %s", task, task_id, exc, json.dumps(row))


def listing(session, limit: int = 50, include_retried: bool = False) -> list[FailedTask]:
    query = select(FailedTask).order_by(FailedTask.id.desc()).limit(limit)
    if not include_retried:
        query = query.where(FailedTask.retried_at.is_(None))
    return list(session.scalars(query))


def retry(session, failed_id: int) -> FailedTask:
    row = session.get(FailedTask, failed_id)
    if row is None:
        raise LookupError(f"no failed task with id {failed_id}; `breakwater tasks failed` lists them")
    result = current_app.extensions["celery"].send_task(
        row.task, args=json.loads(row.args), kwargs=json.loads(row.kwargs), queue=row.queue or None
    )
    row.retried_at = datetime.now()
    row.retry_task_id = result.id
    session.commit()
    return row
