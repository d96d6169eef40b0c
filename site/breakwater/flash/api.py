"""Visitor JSON API of the flash sale.

* ``GET /api/flash/<id>``: the sale, its stock left (from the gate) and the server's clock; public
  for one second, so the origin microcache and the edge absorb a million refreshes.
* ``POST /api/flash/<id>/orders``: a signed-in buyer's purchase attempt, decided by the gate; 202
  with the order id, the write itself happens on the ``orders`` queue. Checked in this order, each
  as far upstream as possible: the per-buyer rate limit (skipped while this process knows the sale
  is sold out or the buyer at the limit), sign-in (from the signed session cookie: no database
  read), the buyer-at-limit memo and the sold-out flag (then only the buyer's idempotency record is
  read, so a retry of an accepted order still gets its 202), input, the Idempotency-Key, the gate.
  The decision itself is :mod:`.purchase`'s; ``BREAKWATER_FLASH_PURCHASE_PATH=database`` sends the attempt
  to :mod:`.direct` instead (201).
  The gate unreachable: 503 ``gate_unavailable`` with ``Retry-After``.
* ``GET /api/orders/<id>``, ``GET /api/orders``: the buyer's own orders, read causally; an order
  accepted but not yet written is ``pending``.
"""

from __future__ import annotations

import logging
import re
import time

import redis
from flask import Blueprint, jsonify, request, session
from flask_limiter.util import get_remote_address
from sqlalchemy import select

from breakwater import extensions
from breakwater.accounts.session import current_user
from breakwater.cache.http import cached_data
from breakwater.database.consistency import consistency
from breakwater.extensions import db
from breakwater.flash import purchase, services
from breakwater.flash.models import FlashOrder, SaleStock
from breakwater.ratelimit import limiter
from breakwater.web.errors import ApiError, error_response
from breakwater.web.json_api import json_body, require_json_for_writes

log = logging.getLogger(__name__)
bp = Blueprint("flash_api", __name__, url_prefix="/api")
require_json_for_writes(bp)

ORDER_ID_RE = re.compile(r"^[0-9a-f]{32}$")  # the sale id in 8 hex digits, then 24 random ones
KEY_RE = re.compile(r"^[\x21-\x7e]{8,64}$")


def _sale_json(sale_id: int) -> dict:
    def compute():
        return services.get_sale(db.session, sale_id).to_json()

    data, _status = cached_data("flash", f"flash:{sale_id}", (f"flash:{sale_id}",), compute, 60.0)
    return data


@bp.get("/flash/<int:sale_id>")
def sale(sale_id: int):
    data = _sale_json(sale_id)
    try:
        left = None if _purchase_path() == "database" else services.gate().stock_left(sale_id)
        if left is None and _purchase_path() == "gate":
            # the gate lost its state (or never had it): load it from the database
            with db.primary():
                services.load_gate(services.get_sale(db.session, sale_id))
            left = services.gate().stock_left(sale_id)
    except redis.RedisError:  # the gate is unreachable: the database's stock (accepted, unwritten orders aside)
        left = None
    if left is None:
        left = max(0, db.session.scalar(select(SaleStock.stock).where(SaleStock.sale_id == sale_id)) or 0)
    response = jsonify({"sale": {**data, "stock_left": left}, "server_time": _now_iso()})
    response.headers["Cache-Control"] = "public, max-age=1, s-maxage=1"
    response.headers["xkey"] = f"flash-{sale_id}"
    return response


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z"


def _buyer_id() -> int | None:
    """The signed-in buyer's id straight from the signed session cookie: the purchase path reads no
    database row for it (a rush of attempts must not become a rush of user lookups on the replicas)."""
    uid = session.get("uid")
    return uid if isinstance(uid, int) else None


def _user_key() -> str:
    uid = _buyer_id()
    return f"flash-user:{uid}" if uid else request.remote_addr or "?"


def _user_rate() -> str:
    return extensions.settings()["FLASH_USER_RATE"]


def _address_rate() -> str:
    return extensions.settings()["FLASH_ADDRESS_RATE"]


def _sold_out_here() -> bool:
    sale_id = (request.view_args or {}).get("sale_id")
    return sale_id is not None and extensions.soldout_flags().is_sold_out(sale_id)


def _at_limit_here() -> bool:
    """This process saw the buyer take the last unit the limit allows (or be refused for it)."""
    sale_id, uid = (request.view_args or {}).get("sale_id"), _buyer_id()
    return sale_id is not None and uid is not None and extensions.soldout_flags().limit_reached(sale_id, uid)


def _known_answer_here() -> bool:
    """The attempt is answered from this process's memory (sold out, or the buyer at the limit):
    no rate limit then, as for any other cheap rejection."""
    return _sold_out_here() or _at_limit_here()


def _order_response(sale_id: int, placed: purchase.Placed, code: int):
    """202 (the gate accepted it) or 201 (the database-only path wrote it), pointing at the order."""
    body = {"order_id": placed.order_id, "status": placed.status, "status_url": f"/api/orders/{placed.order_id}"}
    response = jsonify(body)
    response.status_code = code
    response.headers["Location"] = body["status_url"]
    if placed.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    remember_order(response, sale_id)
    return response


ORDERS_COOKIE = "bw_fo"
ORDERS_COOKIE_SALES = 32  # the most recent sales named; an older sale's replay is answered by its marker


def remember_order(response, sale_id: int) -> None:
    """Name the sale in the browser's ``bw_fo`` cookie (``12.15``): the sales it has an order in. Nginx passes
    this browser's attempts on those sales to the app even while a marker says the sale is closed
    (flash/markers.py), so a retry of an accepted order (same Idempotency-Key) still gets its 202 replayed.
    It lives as long as the gate's idempotency records (a day), is read by Nginx only, and grants nothing: a
    forged one only buys its sender the app's answer instead of Nginx's, the same answer."""
    from breakwater.flash.gate import IDEM_TTL

    ids = [i for i in request.cookies.get(ORDERS_COOKIE, "").split(".") if i.isdigit() and i != str(sale_id)]
    value = ".".join([*ids[-(ORDERS_COOKIE_SALES - 1) :], str(sale_id)])
    response.set_cookie(
        ORDERS_COOKIE, value, max_age=IDEM_TTL, path="/api/flash", httponly=True, samesite="Lax",
        secure=extensions.settings().flag("COOKIE_SECURE"),
    )  # fmt: skip


@bp.post("/flash/<int:sale_id>/orders")
@limiter.limit(_user_rate, key_func=_user_key, exempt_when=_known_answer_here, scope="flash-buyer")
@limiter.limit(_address_rate, key_func=get_remote_address, exempt_when=_known_answer_here, scope="flash-address")
def place_order(sale_id: int):
    uid = _buyer_id()
    if uid is None:
        raise ApiError(401, "not_authenticated", "Log in first: POST /api/auth/login.")
    key = request.headers.get("Idempotency-Key", "")
    if not key:
        raise ApiError(400, "missing_idempotency_key", "Send an Idempotency-Key header (a new random value per order).")
    if not KEY_RE.match(key):
        raise ApiError(400, "invalid_idempotency_key", "Idempotency-Key must be 8 to 64 visible ASCII characters.")
    body = json_body()
    if _purchase_path() == "database":
        return _place_in_database(sale_id, uid, key, body)
    try:
        placed = purchase.through_gate(services.gate(), extensions.soldout_flags(), sale_id, uid, key, body)
        return _order_response(sale_id, placed, 202)
    except redis.RedisError as exc:  # the gate is unreachable: nothing was accepted, the buyer retries
        log.warning("flash: the gate is unreachable (%s); purchase attempts answer 503", exc)
        response, status = error_response(
            503, "gate_unavailable", "The sale cannot take orders this second; retry in a moment."
        )
        response.headers["Retry-After"] = "1"
        return response, status


def _purchase_path() -> str:
    return extensions.purchase_path()


def _place_in_database(sale_id: int, uid: int, key: str, body: dict):
    """BREAKWATER_FLASH_PURCHASE_PATH=database (for the benchmark's comparison): see :mod:`.direct`."""
    from breakwater.flash.direct import purchase as purchase_in_database

    quantity, address = purchase.quantity(body), purchase.address(body.get("address"))
    with db.primary():
        order_id, status, replayed = purchase_in_database(
            db.session, sale_id, uid, key, quantity, address, extensions.notify_order()
        )
    return _order_response(sale_id, purchase.Placed(order_id, status, replayed), 201)


def _order_for(user_id: int, order_id: str) -> dict:
    """Database first (causal); then the gate's accepted requests (``pending``); then the primary,
    for an order the worker wrote a moment ago that this replica has not applied yet."""
    if not ORDER_ID_RE.match(order_id):
        raise ApiError(404, "order_not_found", f"You have no order {order_id[:40]!r}.")
    order = db.session.get(FlashOrder, order_id)
    if order is None:
        try:
            payload = services.gate().pending(int(order_id[:8], 16)).get(order_id)
        except redis.RedisError:  # the gate is unreachable: the database alone answers
            payload = None
        if payload is not None and payload["user_id"] == user_id:
            return {"id": order_id, "sale_id": payload["sale_id"], "quantity": payload["quantity"], "status": "pending"}
        with db.primary():
            order = db.session.get(FlashOrder, order_id)
    if order is None or order.user_id != user_id:
        raise ApiError(404, "order_not_found", f"You have no order {order_id[:40]!r}.")
    return order.to_json()


@bp.get("/orders/<order_id>")
@consistency("causal")
def order(order_id: str):
    user = current_user()
    if user is None:
        raise ApiError(401, "not_authenticated", "Log in first: POST /api/auth/login.")
    response = jsonify({"order": _order_for(user.id, order_id)})
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/orders")
@consistency("causal")
def orders():
    user = current_user()
    if user is None:
        raise ApiError(401, "not_authenticated", "Log in first: POST /api/auth/login.")
    rows = db.session.scalars(
        select(FlashOrder).where(FlashOrder.user_id == user.id).order_by(FlashOrder.created_at.desc()).limit(100)
    )
    response = jsonify({"orders": [o.to_json() for o in rows]})
    response.headers["Cache-Control"] = "private, no-store"
    return response
