"""The static product page of a sale: emitted and purged like every page, the same for everyone.

Stock left, the server's clock (for the countdown), login state and the buyer's order come from small
API calls made by ``flash.js``.
"""

from __future__ import annotations

from flask import Blueprint, abort, render_template
from sqlalchemy import select
from sqlalchemy.orm import Session

from breakwater.cache.http import cached_data
from breakwater.errors import ApiError
from breakwater.extensions import db
from breakwater.flash import services
from breakwater.flash.models import FlashSale
from breakwater.pages import registry
from breakwater.pages.http import page_response
from breakwater.pages.regions_data import root_url

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


@registry.register
def sale_pages(session: Session) -> list[str]:
    return [f"/flash/{sale_id}" for sale_id in session.scalars(select(FlashSale.id))]


@registry.register_affected("flash:")
def affected(session: Session, namespace: str) -> list[str]:
    return [f"/flash/{namespace.split(':', 1)[1]}"]
