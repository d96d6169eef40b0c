"""Products and sales for editors (and the CLI), the gate's view of them, and a sale's status."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from breakwater import extensions
from breakwater.common import fields
from breakwater.common.errors import ApiError
from breakwater.common.times import epoch_ms, parse_datetime
from breakwater.flash.gate import Gate
from breakwater.flash.models import FlashOrder, FlashSale, OrderStatus, Product, SaleStock

MAX_STOCK = 10_000_000


def gate() -> Gate:
    return extensions.flash_gate()


def _int(data: dict, field: str, low: int, high: int, default: int | None = None) -> int:
    value = data.get(field, default)
    if value is None:
        raise ApiError(400, "missing_field", f"{field} is required.", field=field)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ApiError(400, "invalid_field", f"{field} must be a whole number from {low} to {high}.", field=field)
    return value


# ------------------------------------------------------------------ products
def create_product(session: Session, data: dict) -> Product:
    product = Product(
        name=fields.text(data, "name", required=True)[:200],
        description=fields.text(data, "description", required=False),
        price_cents=_int(data, "price_cents", 0, 100_000_000),
        image_url=fields.url(fields.text(data, "image_url", required=False), "image_url"),
    )
    session.add(product)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise ApiError(409, "product_exists", f"A product named {product.name!r} exists already.") from None
    return product


def update_product(session: Session, product: Product, data: dict) -> Product:
    if "name" in data:
        product.name = fields.text(data, "name", required=True)[:200]
    if "description" in data:
        product.description = fields.text(data, "description", required=False)
    if "price_cents" in data:
        product.price_cents = _int(data, "price_cents", 0, 100_000_000)
    if "image_url" in data:
        product.image_url = fields.url(fields.text(data, "image_url", required=False), "image_url")
    name = product.name
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise ApiError(409, "product_exists", f"A product named {name!r} exists already.") from None
    return product


def get_product(session: Session, product_id: int) -> Product:
    product = session.get(Product, product_id)
    if product is None:
        raise ApiError(404, "product_not_found", f"There is no product {product_id}.")
    return product


# ------------------------------------------------------------------ sales
def get_sale(session: Session, sale_id: int) -> FlashSale:
    sale = session.get(FlashSale, sale_id)
    if sale is None:
        raise ApiError(404, "sale_not_found", f"There is no flash sale {sale_id}.")
    return sale


def _window(data: dict, sale: FlashSale | None) -> tuple[datetime, datetime]:
    starts = parse_datetime(data, "starts_at") if "starts_at" in data or sale is None else sale.starts_at
    ends = parse_datetime(data, "ends_at") if "ends_at" in data or sale is None else sale.ends_at
    if starts is None or ends is None:
        raise ApiError(400, "missing_field", "starts_at and ends_at are required (ISO 8601).")
    if ends <= starts:
        raise ApiError(400, "invalid_window", "ends_at must be after starts_at.")
    return starts, ends


def create_sale(session: Session, data: dict) -> FlashSale:
    product = get_product(session, _int(data, "product_id", 1, 2**31 - 1))
    starts, ends = _window(data, None)
    stock = _int(data, "stock", 1, MAX_STOCK)
    sale = FlashSale(
        product_id=product.id, total_stock=stock, starts_at=starts, ends_at=ends,
        per_user_limit=_int(data, "limit", 1, 100, default=1),
    )  # fmt: skip
    session.add(sale)
    session.flush()
    session.add(SaleStock(sale_id=sale.id, stock=stock, sold=0, version=0))
    session.flush()
    return sale


def update_sale(session: Session, sale: FlashSale, data: dict) -> int:
    """Change window, limit or stock; returns the stock delta for the gate (applied after commit).

    The stock row is changed with the same optimistic lock as orders, so a concurrent order write
    and this change never overwrite each other; stock cannot drop below what is already sold."""
    from sqlalchemy import update

    sale.starts_at, sale.ends_at = _window(data, sale)
    if "limit" in data:
        sale.per_user_limit = _int(data, "limit", 1, 100)
    delta = 0
    if "stock" in data:
        new_total = _int(data, "stock", 1, MAX_STOCK)
        for _attempt in range(20):
            row = session.execute(
                select(SaleStock.stock, SaleStock.sold, SaleStock.version).where(SaleStock.sale_id == sale.id)
            ).one()
            if new_total < row.sold:
                raise ApiError(
                    400, "stock_below_sold", f"{row.sold} units are sold already; stock cannot be lower than that."
                )
            delta = new_total - sale.total_stock
            done = session.execute(
                update(SaleStock)
                .where(SaleStock.sale_id == sale.id, SaleStock.version == row.version, SaleStock.stock + delta >= 0)
                .values(stock=SaleStock.stock + delta, version=SaleStock.version + 1)
            ).rowcount
            if done == 1:
                break
        else:
            raise ApiError(409, "stock_busy", "The stock kept changing; try again.")
        sale.total_stock = new_total
    session.flush()
    return delta


def load_gate(sale: FlashSale, stock_if_missing: int | None = None) -> None:
    """Put the sale's window and limit into the gate; stock only if the gate has none yet."""
    remaining = stock_if_missing if stock_if_missing is not None else sale.stock.stock
    gate().load(sale.id, epoch_ms(sale.starts_at), epoch_ms(sale.ends_at), sale.per_user_limit, remaining)


def await_origin(sale_id: int) -> bool:
    """After an editor's change reached the gate: wait (a second at most) until the origin's markers show it
    (:func:`breakwater.flash.markers.await_markers`), so the next buyer finds the sale as the editor left it."""
    from breakwater.flash.markers import await_markers

    return await_markers(gate().client, sale_id)


def status(session: Session, sale: FlashSale) -> dict:
    counts = dict(
        session.execute(
            select(FlashOrder.status, func.coalesce(func.sum(FlashOrder.quantity), 0))
            .where(FlashOrder.sale_id == sale.id)
            .group_by(FlashOrder.status)
        ).all()
    )
    pending = gate().pending(sale.id)
    return {
        "sale": sale.id,
        "total_stock": sale.total_stock,
        "stock_db": sale.stock.stock,
        "stock_gate": gate().stock_left(sale.id),
        "accepted_not_written": sum(p["quantity"] for p in pending.values()),
        "confirmed": int(counts.get(OrderStatus.CONFIRMED, 0)),
        "failed": int(counts.get(OrderStatus.FAILED, 0)),
    }


def validate_region(code: str) -> dict:
    """The shipping address's region: a current district or street/township, or a region with no finer
    codes at all (Hong Kong, Macau, Taiwan), the rules of ``regions.services.validate_address_code``.
    Read through the region cache (the same entry as ``/api/regions/<code>``), not the database: this
    runs on every purchase attempt of a rush."""
    from breakwater.cache.http import cached_data
    from breakwater.extensions import db
    from breakwater.regions import services as regions

    if not regions.CODE_RE.match(code):
        raise ApiError(400, "invalid_region", "The address needs a district or street code (6 or 9 digits).")
    try:
        node, _status = cached_data(
            "regions", f"regions:{code}", ("regions",), lambda: regions.node_with_children(db.session, code), 3600.0
        )
    except ApiError:
        raise ApiError(400, "invalid_region", f"Region {code} does not exist; pick the address again.") from None
    if node.get("obsolete"):
        raise ApiError(400, "invalid_region", f"Region {code} no longer exists; pick the address again.")
    if node.get("level") not in ("district", "street") and node.get("children"):
        raise ApiError(400, "invalid_region", f"{node.get('name')} ({code}) is too coarse: pick a district or street.")
    return node
