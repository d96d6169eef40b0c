"""Celery tasks of the flash sale: ``orders`` queue writes (the peak shaved), reconciliation."""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta

import redis
from celery import shared_task
from sqlalchemy.exc import OperationalError

from breakwater import extensions
from breakwater.database.router import PrimaryUnavailable
from breakwater.flash.orders import VersionConflict

log = logging.getLogger(__name__)
#: the drift check looks at sales starting within DRIFT_AHEAD or ended less than DRIFT_AFTER ago
DRIFT_AHEAD = timedelta(minutes=5)
DRIFT_AFTER = timedelta(minutes=15)


def _gate():
    return extensions.flash_gate()


def enqueue_write(payload: dict) -> bool:
    """Send the write; False when the broker did not take it (the reconciler will, later)."""
    try:
        write_order.apply_async(args=[payload])  # routed to the orders queue by name
        return True
    except Exception as exc:  # the request was accepted and is safe in Redis
        log.warning("flash: could not enqueue order %s (%s); the reconciler will", payload["order_id"], exc)
        return False


@shared_task(
    name="breakwater.flash.write_order",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    # A RedisError comes only after the order's commit (settling the gate): the retry finds the order
    # written and settles again; if Redis stays away, the reconciler settles it. PrimaryUnavailable (the
    # primary down or fenced, until a promotion or a restart): retried, and if it lasts longer than the
    # retries the order stays pending in the gate, where the reconciler writes it once writes are back.
    autoretry_for=(VersionConflict, OperationalError, PrimaryUnavailable, redis.RedisError),
    retry_backoff=0.2,
    retry_backoff_max=10,
    retry_jitter=True,
    max_retries=10,
    soft_time_limit=30,
    time_limit=60,
    ignore_result=True,
)
def write_order(self, payload: dict) -> str:
    from breakwater.extensions import db
    from breakwater.flash.orders import _fail
    from breakwater.flash.orders import write_order as write

    notify = extensions.notify_order()
    with db.primary():
        try:
            status, _new = write(db.session, _gate(), payload, notify)
        except (VersionConflict, OperationalError):
            if self.request.retries >= self.max_retries:
                db.session.rollback()
                status, _new = _fail(db.session, _gate(), payload, "gave up after repeated write conflicts")
                return status
            raise
    return status


@shared_task(name="breakwater.flash.reconcile", acks_late=True, ignore_result=True)
def reconcile_all() -> dict:
    """Periodic: reconcile every sale that is open or ended in the last hour."""
    from datetime import timedelta

    from sqlalchemy import select

    from breakwater.common.times import utcnow
    from breakwater.extensions import db
    from breakwater.flash.models import FlashSale
    from breakwater.flash.orders import reconcile

    now = utcnow()
    reports = {}
    with db.primary():
        sales = db.session.scalars(
            select(FlashSale).where(FlashSale.starts_at <= now + timedelta(minutes=5),
                                    FlashSale.ends_at >= now - timedelta(hours=1))
        ).all()  # fmt: skip
        for sale in sales:
            reports[sale.id] = reconcile(db.session, _gate(), sale, enqueue_write)
    return reports


# No retries: the next check comes anyway, and a gate Redis or primary that is down has alerts of its own (a sale
# not measured keeps its last measurement, and the rule lets it go once it is a minute old).
@shared_task(name="breakwater.flash.drift_check", acks_late=True, ignore_result=True, autoretry_for=(), max_retries=0)
def drift_check() -> dict:
    """Periodic (beat, every FLASH_DRIFT_CHECK_SECONDS): how far the gate is from the database for each sale open
    or ended in the last 15 minutes, measured, not repaired (flash.orders.measure_drift); queues/metrics.py turns
    the result into ``breakwater_flash_gate_drift`` for FlashGateDrift. A sale that cannot be measured now (Redis
    or the primary unavailable) is left out of the result."""
    from sqlalchemy import select

    from breakwater.common.times import utcnow
    from breakwater.extensions import db
    from breakwater.flash.models import FlashSale
    from breakwater.flash.orders import measure_drift

    now = utcnow()
    reports = {}
    try:
        with db.primary():
            sales = db.session.scalars(
                select(FlashSale.id).where(
                    FlashSale.starts_at <= now + DRIFT_AHEAD, FlashSale.ends_at >= now - DRIFT_AFTER
                )
            ).all()
            db.session.rollback()
            for sale_id in sales:
                reports[sale_id] = measure_drift(db.session, _gate(), sale_id)
    except (redis.RedisError, OperationalError, PrimaryUnavailable) as exc:
        with contextlib.suppress(Exception):
            db.session.rollback()
        log.warning("flash drift check: measured %d sale(s), then could not go on: %s", len(reports), exc)
    for sale_id, report in reports.items():
        if report["stock_drift"] or report["buyers_off"]:
            log.warning("flash: the gate is off from the database on sale %s: %s", sale_id, report)
    return reports
