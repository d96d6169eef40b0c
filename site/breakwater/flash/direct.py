"""The database-only purchase path, kept for one purpose: ``make bench-flash`` compares it with the gate.

Selected with ``BREAKWATER_FLASH_PURCHASE_PATH=database`` (read once per app). No Redis gate, no queue:
every attempt is decided synchronously on the primary, the way the public "database only" flash-sale
designs do it:

1. a plain read of the sale (404; outside its window 403, unless the Idempotency-Key names an order
   already made, which is replayed as in the gate path);
2. one transaction: ``SELECT ... FOR UPDATE`` on the sale's stock row (every attempt on the sale queues
   here), the buyer's orders in this sale and the order holding this Idempotency-Key (replay or 422),
   the per-buyer limit (409 ``limit_reached``), the stock (409 ``sold_out``), the conditional ``UPDATE``
   of the stock row, the order inserted as ``confirmed`` (with its confirmation mail's outbox row),
   commit. The unique constraints on (sale, user, slot) and (user, idempotency key) still hold.

The answer is ``201`` with the same body as the gate's ``202`` (``order_id``, ``status``, ``status_url``),
``status`` already ``confirmed``. A rejection writes nothing, so retrying its key gets the same answer
while nothing changes; there is no ``409 request_in_flight``: a concurrent duplicate waits for the row
lock and then gets the first request's order replayed.

The stock row lock is taken by a locking read, which in InnoDB does not fix the transaction's snapshot:
the buyer's orders are read after the lock is granted, so they include every order committed before.
"""

from __future__ import annotations

import time
import uuid

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from breakwater.common.errors import ApiError
from breakwater.flash.models import FlashOrder, FlashSale, OrderStatus, SaleStock
from breakwater.flash.orders import _order
from breakwater.flash.purchase import REJECTIONS


def _same_request(order: FlashOrder, sale_id: int, quantity: int, address: dict) -> bool:
    return (order.sale_id, order.quantity, order.region_code, order.address_detail, order.recipient_name,
            order.phone) == (sale_id, quantity, address["region_code"], address["detail"], address["name"],
                             address["phone"])  # fmt: skip


def _replay(order: FlashOrder, sale_id: int, quantity: int, address: dict) -> tuple[str, str, bool]:
    if not _same_request(order, sale_id, quantity, address):
        raise ApiError(
            422, "idempotency_key_reused", "This Idempotency-Key was used with a different request body; use a new key."
        )
    return order.id, order.status.value, True


def _by_key(session: Session, user_id: int, key: str) -> FlashOrder | None:
    return session.scalars(
        select(FlashOrder).where(FlashOrder.user_id == user_id, FlashOrder.idempotency_key == key)
    ).first()


def purchase(
    session: Session, sale_id: int, user_id: int, key: str, quantity: int, address: dict, notify=None
) -> tuple[str, str, bool]:
    """Decide and write one attempt on the primary: (order id, its status, whether it is a replay). Rejections
    raise :class:`ApiError` with the gate path's status and code. ``session`` must use the primary."""
    from breakwater.common.times import epoch_ms

    sale = session.execute(
        select(FlashSale.starts_at, FlashSale.ends_at, FlashSale.per_user_limit).where(FlashSale.id == sale_id)
    ).one_or_none()
    now_ms = int(time.time() * 1000)
    outside = None
    if sale is not None:
        if now_ms < epoch_ms(sale.starts_at):
            outside = "not_started"
        elif now_ms >= epoch_ms(sale.ends_at):
            outside = "ended"
    if sale is None or outside:
        existing = _by_key(session, user_id, key)
        answer = _replay(existing, sale_id, quantity, address) if existing is not None else None
        session.rollback()
        if answer is not None:
            return answer
        if sale is None:
            raise ApiError(404, "sale_not_found", f"There is no flash sale {sale_id}.")
        raise ApiError(REJECTIONS[outside][0], outside, REJECTIONS[outside][1])
    session.rollback()  # the locked transaction below starts with the lock, not with a snapshot

    stock = session.execute(
        select(SaleStock.stock, SaleStock.version).where(SaleStock.sale_id == sale_id).with_for_update()
    ).one_or_none()
    if stock is None:
        session.rollback()
        raise ApiError(404, "sale_not_found", f"There is no flash sale {sale_id}.")
    mine = session.scalars(
        select(FlashOrder).where(
            FlashOrder.user_id == user_id, or_(FlashOrder.sale_id == sale_id, FlashOrder.idempotency_key == key)
        )
    ).all()
    same_key = next((o for o in mine if o.idempotency_key == key), None)
    if same_key is not None:
        try:
            return _replay(same_key, sale_id, quantity, address)
        finally:
            session.rollback()
    used = sum(o.quantity for o in mine if o.sale_id == sale_id and o.status != OrderStatus.FAILED)
    rejection = None
    if used + quantity > sale.per_user_limit:
        rejection = "limit_reached"
    elif stock.stock < quantity:
        rejection = "sold_out"
    if rejection:
        session.rollback()
        raise ApiError(REJECTIONS[rejection][0], rejection, REJECTIONS[rejection][1])
    taken = session.execute(
        update(SaleStock)
        .where(SaleStock.sale_id == sale_id, SaleStock.stock >= quantity, SaleStock.version == stock.version)
        .values(stock=SaleStock.stock - quantity, sold=SaleStock.sold + quantity, version=SaleStock.version + 1)
    ).rowcount
    if taken != 1:  # cannot happen while we hold the row lock; refuse rather than oversell
        session.rollback()
        raise ApiError(409, "sold_out", REJECTIONS["sold_out"][1])
    payload = {
        "order_id": f"{sale_id:08x}{uuid.uuid4().hex[:24]}", "sale_id": sale_id, "user_id": user_id,
        "quantity": quantity, "idempotency_key": key, "address": address,
    }  # fmt: skip
    session.add(_order(payload, OrderStatus.CONFIRMED, used + 1))
    if notify is not None:  # the confirmation mail's outbox row commits with the order
        notify(payload, session)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        existing = _by_key(session, user_id, key)
        try:
            if existing is not None:
                return _replay(existing, sale_id, quantity, address)
        finally:
            session.rollback()
        raise ApiError(409, "limit_reached", REJECTIONS["limit_reached"][1]) from None
    return payload["order_id"], OrderStatus.CONFIRMED.value, False
