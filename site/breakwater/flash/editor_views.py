"""The editor UI for flash sales: products, sales with their live status, stock changes (forms + CSRF)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from breakwater.cache.invalidation import invalidate
from breakwater.common.errors import ApiError
from breakwater.editor.auth import editor_page
from breakwater.extensions import db
from breakwater.flash import services
from breakwater.flash.models import FlashSale, Product
from breakwater.localtime import form_value

bp = Blueprint("flash_editor", __name__, url_prefix="/editor/flash")


def _int_or_text(value: str):
    value = (value or "").strip()
    return int(value) if value.lstrip("-").isdigit() else value


@bp.get("")
@editor_page
def index():
    with db.primary():
        sales = db.session.scalars(select(FlashSale).order_by(FlashSale.id.desc()).limit(50)).all()
        rows = [(s, services.status(db.session, s)) for s in sales]
        products = db.session.scalars(select(Product).order_by(Product.name)).all()
        return render_template("editor/flash.html", rows=rows, products=products)


@bp.post("/products")
@editor_page
def create_product():
    f = request.form
    try:
        services.create_product(
            db.session,
            {"name": f.get("name", ""), "description": f.get("description", ""),
             "price_cents": _int_or_text(f.get("price_cents", "")), "image_url": f.get("image_url", "")},
        )  # fmt: skip
        db.session.commit()
        flash("Product created.")
    except ApiError as exc:
        db.session.rollback()
        flash(f"Not saved: {exc.message}")
    return redirect(url_for("flash_editor.index"), 303)


@bp.post("/sales")
@editor_page
def create_sale():
    f = request.form
    try:
        sale = services.create_sale(
            db.session,
            {"product_id": _int_or_text(f.get("product_id", "")), "stock": _int_or_text(f.get("stock", "")),
             "starts_at": form_value(f.get("starts_at")), "ends_at": form_value(f.get("ends_at")),
             "limit": _int_or_text(f.get("limit", "1") or "1")},
        )  # fmt: skip
        invalidate(db.session, f"flash:{sale.id}")
        db.session.commit()
        services.load_gate(sale)
        flash(f"Sale {sale.id} created.")
    except ApiError as exc:
        db.session.rollback()
        flash(f"Not saved: {exc.message}")
    return redirect(url_for("flash_editor.index"), 303)


@bp.post("/sales/<int:sale_id>")
@editor_page
def update_sale(sale_id: int):
    f = request.form
    data = {k: form_value(f.get(k)) for k in ("starts_at", "ends_at") if f.get(k)}
    for k in ("stock", "limit"):
        if f.get(k):
            data[k] = _int_or_text(f[k])
    with db.primary():
        try:
            sale = services.get_sale(db.session, sale_id)
            delta = services.update_sale(db.session, sale, data)
            invalidate(db.session, f"flash:{sale.id}")
            db.session.commit()
            services.load_gate(sale, stock_if_missing=sale.stock.stock)
            services.gate().add_stock(sale.id, delta)
            services.await_origin(sale.id)  # the origin's markers show the change before the editor hears back
            flash(f"Sale {sale.id} saved.")
        except ApiError as exc:
            db.session.rollback()
            flash(f"Not saved: {exc.message}")
    return redirect(url_for("flash_editor.index"), 303)
