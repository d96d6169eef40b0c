"""Editors' JSON API for products and sales: ``/api/editor/flash/...`` (bearer token or session + CSRF).

Every change commits first; then the gate learns the new window, limit or stock (a raise mid-sale
sells the new units at once), and the sale's cached data and static page are invalidated (rebuilt by
the pages worker after the commit). A change to a sale answers once the origin's markers show it (a sold-out
or ended sale reopened; :mod:`.markers`), a second at most.
"""

from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import select

from breakwater.cache.invalidation import invalidate
from breakwater.editor.auth import require_editor_api
from breakwater.extensions import db
from breakwater.flash import services
from breakwater.flash.models import FlashSale, Product
from breakwater.web.json_api import json_body, require_json_for_writes

bp = Blueprint("flash_editor_api", __name__, url_prefix="/api/editor/flash")
require_json_for_writes(bp)


@bp.before_request
def _auth():
    require_editor_api()


@bp.get("/products")
def products():
    rows = db.session.scalars(select(Product).order_by(Product.id.desc()).limit(200))
    return jsonify({"products": [p.to_json() for p in rows]})


@bp.post("/products")
def create_product():
    product = services.create_product(db.session, json_body())
    db.session.commit()
    return jsonify({"product": product.to_json()}), 201


@bp.patch("/products/<int:product_id>")
def update_product(product_id: int):
    product = services.get_product(db.session, product_id)
    services.update_product(db.session, product, json_body())
    sale_ids = db.session.scalars(select(FlashSale.id).where(FlashSale.product_id == product.id)).all()
    invalidate(db.session, *(f"flash:{s}" for s in sale_ids))
    db.session.commit()
    return jsonify({"product": product.to_json()})


@bp.get("/sales")
def sales():
    rows = db.session.scalars(select(FlashSale).order_by(FlashSale.id.desc()).limit(200))
    return jsonify({"sales": [s.to_json() for s in rows]})


@bp.post("/sales")
def create_sale():
    sale = services.create_sale(db.session, json_body())
    invalidate(db.session, f"flash:{sale.id}")
    db.session.commit()
    services.load_gate(sale)
    return jsonify({"sale": sale.to_json()}), 201


@bp.get("/sales/<int:sale_id>")
def get_sale(sale_id: int):
    sale = services.get_sale(db.session, sale_id)
    return jsonify({"sale": sale.to_json(), "status": services.status(db.session, sale)})


@bp.patch("/sales/<int:sale_id>")
def update_sale(sale_id: int):
    with db.primary():
        sale = services.get_sale(db.session, sale_id)
        delta = services.update_sale(db.session, sale, json_body())
        invalidate(db.session, f"flash:{sale.id}")
        db.session.commit()
        services.load_gate(sale, stock_if_missing=sale.stock.stock)
        services.gate().add_stock(sale.id, delta)
        services.await_origin(sale.id)  # the origin's markers show the change before the editor hears back
        return jsonify({"sale": sale.to_json()})
