"""Writing accepted requests as orders on the primary (the ``orders`` queue's work), and reconciling.

One transaction per order: the conditional ``UPDATE flash_stock SET stock = stock - :n, version =
version + 1 WHERE sale_id = :id AND stock >= :n AND version = :v`` (the optimistic lock: a version
conflict re-reads and tries again), then the order insert, guarded by the unique constraints. A
redelivered task finds its order by id and changes nothing. When the database refuses (no stock left
there, a slot already taken), the order is recorded as failed and its unit goes back to the gate.
"""

from __future__ import annotations

import logging

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from breakwater.common.times import utcnow
from breakwater.flash.gate import Gate
from breakwater.flash.models import FlashOrder, FlashSale, OrderStatus, SaleStock
from breakwater.observability import flash_metrics

log = logging.getLogger(__name__)
MAX_VERSION_RETRIES = 50


class VersionConflict(RuntimeError):
    """The stock row kept changing under us; the task retries later."""


def _order(payload: dict, status: OrderStatus, slot: int | None, failure: str = "") -> FlashOrder:
    address = payload["address"]
    return FlashOrder(
        id=payload["order_id"], sale_id=payload["sale_id"], user_id=payload["user_id"], slot=slot,
        quantity=payload["quantity"], status=status, idempotency_key=payload["idempotency_key"],
        region_code=address["region_code"], address_detail=address["detail"], recipient_name=address["name"],
        phone=address["phone"], failure=failure,
        confirmed_at=utcnow() if status == OrderStatus.CONFIRMED else None,
    )  # fmt: skip


def write_order(session: Session, gate: Gate, payload: dict, notify=None) -> tuple[str, bool]:
    """Write one accepted request; returns (status, newly written). Safe to call any number of times.
    ``notify(payload, session)`` adds the confirmation mail to the order's own transaction."""
    existing = session.get(FlashOrder, payload["order_id"])
    if existing is not None:
        session.rollback()
        _settle(gate, payload, existing.status)
        return existing.status.value, False
    sale_id, qty = payload["sale_id"], payload["quantity"]
    failure = ""
    for _attempt in range(MAX_VERSION_RETRIES):
        row = session.execute(
            select(SaleStock.stock, SaleStock.version).where(SaleStock.sale_id == sale_id)
        ).one_or_none()
        if row is None:
            failure = "the sale no longer exists"
            break
        if row.stock < qty:
            failure = "sold out (the database had no unit left)"
            break
        taken = session.execute(
            update(SaleStock)
            .where(SaleStock.sale_id == sale_id, SaleStock.stock >= qty, SaleStock.version == row.version)
            .values(stock=SaleStock.stock - qty, sold=SaleStock.sold + qty, version=SaleStock.version + 1)
        ).rowcount
        if taken != 1:
            session.rollback()  # someone else moved the version: read again
            continue
        session.add(_order(payload, OrderStatus.CONFIRMED, payload.get("slot")))
        if notify is not None:  # the confirmation mail's outbox row commits with the order
            notify(payload, session)
        try:
            session.commit()
        except IntegrityError as exc:
            session.rollback()
            if session.get(FlashOrder, payload["order_id"]) is not None:  # a concurrent redelivery won
                return write_order(session, gate, payload, notify)
            failure = "the buyer already has this order slot" if "slot" in str(exc.orig) else "duplicate order"
            break
        _settle(gate, payload, OrderStatus.CONFIRMED)
        flash_metrics.ORDERS_WRITTEN.labels(OrderStatus.CONFIRMED.value).inc()
        return OrderStatus.CONFIRMED.value, True
    else:
        raise VersionConflict(f"stock row of sale {sale_id} kept changing")
    session.rollback()
    return _fail(session, gate, payload, failure)


def _fail(session: Session, gate: Gate, payload: dict, failure: str) -> tuple[str, bool]:
    session.add(_order(payload, OrderStatus.FAILED, None, failure[:200]))
    try:
        session.commit()
    except IntegrityError:
        session.rollback()  # the idempotency key is taken by the buyer's other order: nothing to record
    _settle(gate, payload, OrderStatus.FAILED)
    flash_metrics.ORDERS_WRITTEN.labels(OrderStatus.FAILED.value).inc()
    log.warning("flash order %s failed: %s", payload["order_id"], failure)
    return OrderStatus.FAILED.value, True


def _settle(gate: Gate, payload: dict, status: OrderStatus) -> None:
    gate.settle(
        payload["sale_id"], payload["user_id"], payload["order_id"], payload["quantity"],
        give_back=status == OrderStatus.FAILED,
    )  # fmt: skip


def reconcile(session: Session, gate: Gate, sale: FlashSale, enqueue, min_age_s: float = 5.0) -> dict:
    """Compare the gate with the database and repair it; ``enqueue(payload)`` re-sends lost writes.

    * accepted requests already in the database are settled (their entry dropped, a failed one's unit
      returned); older ones not in the database are enqueued again (the write is idempotent);
    * the gate's window and limit are set from the database; its stock becomes the database's stock
      minus what is accepted but not written; each buyer's count becomes what the database and the
      pending requests say.
    """
    import time

    from sqlalchemy import func

    from breakwater.common.times import epoch_ms
    from breakwater.flash.gate import stock_key, user_key

    report = {"settled": 0, "requeued": 0, "stock_repaired": None, "users_repaired": 0}
    pending = gate.pending(sale.id)
    written = {
        o.id: o.status for o in session.scalars(select(FlashOrder).where(FlashOrder.id.in_(list(pending) or [""])))
    }
    now_ms = time.time() * 1000
    for order_id, payload in pending.items():
        if order_id in written:
            _settle(gate, payload, written[order_id])
            report["settled"] += 1
        elif now_ms - payload.get("accepted_ms", 0) >= min_age_s * 1000:
            enqueue(payload)
            report["requeued"] += 1
    still = {k: v for k, v in gate.pending(sale.id).items() if k not in written}
    db_stock = session.scalar(select(SaleStock.stock).where(SaleStock.sale_id == sale.id)) or 0
    expected = db_stock - sum(p["quantity"] for p in still.values())
    gate.load(sale.id, epoch_ms(sale.starts_at), epoch_ms(sale.ends_at), sale.per_user_limit, expected)
    current = gate.stock_left(sale.id)
    raw = gate.client.get(stock_key(sale.id))
    if raw is None or int(raw) != expected:
        gate.client.set(stock_key(sale.id), expected)
        report["stock_repaired"] = {"was": current, "now": expected}
        if expected > 0:
            gate.client.publish("bw:flash:events", f"restock {sale.id}")
    claims: dict[int, int] = {}
    for user_id, qty in session.execute(
        select(FlashOrder.user_id, func.sum(FlashOrder.quantity))
        .where(FlashOrder.sale_id == sale.id, FlashOrder.status == OrderStatus.CONFIRMED)
        .group_by(FlashOrder.user_id)
    ):
        claims[user_id] = int(qty)
    for payload in still.values():
        claims[payload["user_id"]] = claims.get(payload["user_id"], 0) + payload["quantity"]
    for user_id, qty in claims.items():
        key = user_key(sale.id, user_id)
        if int(gate.client.get(key) or 0) != qty:
            gate.client.set(key, qty)
            report["users_repaired"] += 1
    if report["users_repaired"]:  # web processes forget who they believed was at the limit
        gate.client.publish("bw:flash:events", f"unlimit {sale.id}")
    session.rollback()
    return report


def measure_drift(session: Session, gate: Gate, sale_id: int, attempts: int = 20) -> dict:
    """How far the gate is from the database for one sale, repairing nothing (the ``breakwater.flash.drift_check``
    task, every ``FLASH_DRIFT_CHECK_SECONDS``; safe while purchases arrive, unlike :func:`reconcile`).

    The gate is read in one MULTI/EXEC (:meth:`Gate.snapshot`: its stock, the accepted requests not written yet,
    the buyers' counts), then the database in one snapshot on the primary (``session`` must be bound there):
    the stock row, the orders of those pending requests, every buyer's confirmed units. What the gate should
    hold then:

    * stock: the database's stock less the units of the pending requests that are not confirmed in the database
      (not written yet, or written as failed and not given back yet: the gate holds their unit still);
    * each buyer's count: their confirmed units plus their pending requests not confirmed.

    One race is left between the two reads: a request accepted after the gate's read and written before the
    database's would look like drift (seen in tests, with the measuring process short of CPU). Every order
    write bumps the stock row's ``version``, read once before the gate and again in the snapshot: when it moved,
    an order was written in between and the measurement is taken again (up to ``attempts`` times, a few ms
    apart); one with no write in between is exact. Buyers the gate's read did not name (a first purchase
    written in between) wait for the next check.

    Returns ``{"loaded", "quiet" (no write between the reads: the numbers are exact), "attempts",
    "gate_stock", "expected_stock", "stock_drift" (gate minus expected), "pending", "buyers_checked",
    "buyers_off": {buyer: [gate, expected]}}``; an unloaded gate (a sale nobody tried to buy yet, or a gate
    that lost its state and reloads at the next purchase) has no drift."""
    import random
    import time

    from sqlalchemy import func

    confirmed = (FlashOrder.sale_id == sale_id) & (FlashOrder.status == OrderStatus.CONFIRMED)
    stock_row = select(SaleStock.stock, SaleStock.version).where(SaleStock.sale_id == sale_id)
    for attempt in range(1, attempts + 1):
        before = session.execute(stock_row).one_or_none()
        buyers = session.scalars(select(FlashOrder.user_id).where(confirmed).distinct()).all()
        session.rollback()  # the database's snapshot starts at its next read, after the gate's
        session.connection()  # checked out (and pinged) now, not between the two reads
        snap = gate.snapshot(sale_id, buyers)
        row = session.execute(stock_row).one_or_none()
        quiet = before is not None and row is not None and row.version == before.version
        if quiet or attempt == attempts:
            break
        session.rollback()
        time.sleep(random.uniform(0.002, 0.02))
    written = {
        order_id: status
        for order_id, status in session.execute(
            select(FlashOrder.id, FlashOrder.status).where(FlashOrder.id.in_(list(snap.pending) or [""]))
        )
    }
    claims = {
        int(user): int(qty)
        for user, qty in session.execute(
            select(FlashOrder.user_id, func.sum(FlashOrder.quantity)).where(confirmed).group_by(FlashOrder.user_id)
        )
    }
    session.rollback()
    report = {
        "loaded": snap.loaded and snap.stock is not None and row is not None,
        "quiet": quiet,
        "attempts": attempt,
        "gate_stock": snap.stock,
        "expected_stock": None,
        "stock_drift": 0,
        "pending": len(snap.pending),
        "buyers_checked": 0,
        "buyers_off": {},
    }
    if not report["loaded"]:
        return report
    unwritten = [p for order_id, p in snap.pending.items() if written.get(order_id) != OrderStatus.CONFIRMED]
    expected = row.stock - sum(p["quantity"] for p in unwritten)
    for p in unwritten:
        claims[p["user_id"]] = claims.get(p["user_id"], 0) + p["quantity"]
    report["expected_stock"], report["stock_drift"] = expected, snap.stock - expected
    report["buyers_checked"] = len(snap.claims)
    report["buyers_off"] = {
        user: [held, claims.get(user, 0)] for user, held in snap.claims.items() if held != claims.get(user, 0)
    }
    return report
