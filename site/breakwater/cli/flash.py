"""``breakwater flash ...``: create a sale, watch it, reconcile the gate ."""

from __future__ import annotations

import json

import click

from breakwater.cli.common import fail, load_settings


@click.group("flash")
def group() -> None:
    """Flash sales: create one, watch it, reconcile the gate with the database."""


@group.command("create")
@click.option("--product", "product_name", required=True, help="Product name (created when new).")
@click.option("--stock", type=int, required=True, help="Units for sale.")
@click.option("--starts", required=True, help="Start, ISO 8601 (e.g. 2026-12-01T10:00:00+08:00).")
@click.option("--ends", required=True, help="End, ISO 8601.")
@click.option("--limit", type=int, default=1, show_default=True, help="Units per buyer.")
@click.option("--price", type=int, default=100, show_default=True, help="Price in cents (for a new product).")
def flash_create(product_name: str, stock: int, starts: str, ends: str, limit: int, price: int) -> None:
    """Create a sale; prints its id alone on the last line."""
    from sqlalchemy import select

    from breakwater.app import create_app
    from breakwater.cache.invalidation import invalidate
    from breakwater.common.errors import ApiError
    from breakwater.extensions import db as database
    from breakwater.flash import services
    from breakwater.flash.models import Product

    app = create_app(load_settings())
    with app.app_context(), database.primary():
        session = database.session
        try:
            product = session.scalars(select(Product).where(Product.name == product_name)).first()
            if product is None:
                product = services.create_product(session, {"name": product_name, "price_cents": price})
            sale = services.create_sale(
                session,
                {"product_id": product.id, "stock": stock, "starts_at": starts, "ends_at": ends, "limit": limit},
            )
            invalidate(session, f"flash:{sale.id}")
            session.commit()
            services.load_gate(sale)
        except ApiError as exc:
            session.rollback()
            fail(f"{exc.message} Nothing was created.")
        click.echo(
            f"created flash sale of {stock} x {product.name} ({sale.starts_at}Z to {sale.ends_at}Z, limit {limit})"
        )
        click.echo(sale.id)


@group.command("status")
@click.argument("sale_id", type=int)
@click.option("--watch", type=float, default=0, help="Repeat every N seconds, with per-second rates.")
def flash_status(sale_id: int, watch: float) -> None:
    """Stock (database and gate), accepted, confirmed, failed, and rates per second."""
    import time

    from breakwater.app import create_app
    from breakwater.common.errors import ApiError
    from breakwater.extensions import db as database
    from breakwater.flash import services

    app = create_app(load_settings())
    previous = None
    while True:
        with app.app_context(), database.primary():
            try:
                report = services.status(database.session, services.get_sale(database.session, sale_id))
            except ApiError as exc:
                fail(exc.message)
        now = time.monotonic()
        line = ", ".join(f"{k} {v}" for k, v in report.items())
        if previous is not None:
            elapsed = now - previous[0]
            rate = (report["confirmed"] - previous[1]["confirmed"]) / elapsed
            line += f", confirmed/s {rate:.1f}"
        click.echo(line)
        if not watch:
            return
        previous = (now, report)
        time.sleep(watch)


@group.command("reconcile")
@click.option("--sale", "sale_id", type=int, help="Only this sale (default: every open or recent sale).")
def flash_reconcile(sale_id: int | None) -> None:
    """Compare the gate with the database; re-send lost writes, return failed units, repair counters."""
    from breakwater.app import create_app
    from breakwater.extensions import db as database
    from breakwater.flash import services
    from breakwater.flash.orders import reconcile
    from breakwater.flash.tasks import enqueue_write, reconcile_all

    app = create_app(load_settings())
    with app.app_context(), database.primary():
        if sale_id is None:
            reports = reconcile_all.run()
        else:
            sale = services.get_sale(database.session, sale_id)
            reports = {sale_id: reconcile(database.session, services.gate(), sale, enqueue_write, min_age_s=0)}
    for sid, report in reports.items():
        click.echo(f"sale {sid}: {json.dumps(report, ensure_ascii=False)}")


@group.command("markers")
def flash_markers() -> None:
    """Keep each sale's state.json and rejection marker in the static folder (the flash-markers program)."""
    from breakwater.app import create_app
    from breakwater.flash.markers import Markers

    Markers(create_app(load_settings())).run()
