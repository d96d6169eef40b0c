"""The static product page of a sale: emitted and purged like every page, the same for everyone.

Stock left, the server's clock (for the countdown), login state and the buyer's order come from small
API calls made by ``flash.js``.
"""

from __future__ import annotations

import contextlib

import redis
from flask import Blueprint, abort, make_response, redirect, render_template, request, url_for
from sqlalchemy import select

from breakwater import extensions
from breakwater.accounts.session import current_user
from breakwater.cache.http import cached_data
from breakwater.common.errors import ApiError
from breakwater.database.consistency import consistency
from breakwater.extensions import db
from breakwater.flash import services
from breakwater.flash.models import FlashOrder, FlashSale, Product
from breakwater.regions.cascade import root_url
from breakwater.web.pages import page_response

bp = Blueprint("flash", __name__)


@bp.get("/flash/<int:sale_id>")
def sale_page(sale_id: int):
    try:
        data, status = cached_data(
            "flash", f"flash:{sale_id}", (f"flash:{sale_id}",),
            lambda: services.get_sale(db.session, sale_id).to_json(), 60.0,
        )  # fmt: skip
    except ApiError:
        abort(404)
    html = render_template("flash/sale.html", sale=data, regions_root=root_url())
    return page_response(html, status, [f"flash-{sale_id}"])


def sales_changed(namespaces: tuple[str, ...], token: str, seq: int) -> None:
    """After a commit that changed a sale (``flash:<id>``): the homepage's list of sales (``flashes``) too."""
    if not any(ns.startswith("flash:") for ns in namespaces):
        return
    from breakwater.pages.tasks import queue_rebuild

    # The rebuild schedules the next one at the next start or end of a sale (pages.tasks.schedule_ad_edge).
    seq = extensions.cache().bump("flashes", token=token)
    queue_rebuild(("flashes",), token, seq)


@bp.get("/orders")
@consistency("causal")
def my_orders():
    """我的订单: the signed-in buyer's orders (the rows GET /api/orders lists), never cached."""
    user = current_user()
    if user is None:
        return redirect(url_for("accounts.login", next="/orders"))
    query = (
        select(FlashOrder, Product.name)
        .join(FlashSale, FlashSale.id == FlashOrder.sale_id)
        .join(Product, Product.id == FlashSale.product_id)
        .where(FlashOrder.user_id == user.id)
        .order_by(FlashOrder.created_at.desc())
        .limit(100)
    )
    # A buyer with recent orders (bw_fo) reads the primary: the worker writes the order there and takes it off
    # the gate's pending list, so a replica not yet caught up would show it in neither place.
    from breakwater.flash.api import ORDERS_COOKIE

    recent = contextlib.nullcontext() if not request.cookies.get(ORDERS_COOKIE) else db.primary()
    with recent:
        rows = db.session.execute(query).all()
    orders = [{**order.to_json(), "product": name} for order, name in rows]
    orders[:0] = _accepted_not_written(user.id, {o["id"] for o in orders})
    response = make_response(render_template("flash/orders.html", orders=orders, user=user))
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _accepted_not_written(user_id: int, known: set[str]) -> list[dict]:
    """Orders the gate accepted that the worker has not written yet (``pending``), in the sales the browser's
    ``bw_fo`` cookie names (the app sets it on every accepted order): so an order shows the moment it is taken."""
    from breakwater.flash.api import ORDERS_COOKIE

    sale_ids = [int(i) for i in request.cookies.get(ORDERS_COOKIE, "").split(".") if i.isdigit()][:10]
    found = []
    for sale_id in sale_ids:
        try:
            accepted = services.gate().pending(sale_id)
        except redis.RedisError:  # the gate is unreachable: the database's rows alone
            return found
        mine = [(oid, p) for oid, p in accepted.items() if p.get("user_id") == user_id and oid not in known]
        if not mine:
            continue
        sale = db.session.get(FlashSale, sale_id)
        for order_id, payload in mine:
            found.append({
                "id": order_id, "sale_id": sale_id, "quantity": payload.get("quantity", 1), "status": "pending",
                "product": sale.product.name if sale else f"#{sale_id}", "created_at": None, "failure": None,
            })  # fmt: skip
    return found
