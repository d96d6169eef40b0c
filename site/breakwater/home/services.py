"""What the homepage shows: every ad slot with its current ads, and the latest articles per category."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from breakwater.ads.services import slots_with_active_ads
from breakwater.common.times import utcnow
from breakwater.content.services import latest_by_category

SOFT_TTL = 30.0
#: ``flashes`` moves with every change to a sale (flash.views.sales_changed) and at each sale's start and end
DEPS = ("articles", "ads", "flashes")
SALES_SHOWN = 8


def current_sales(session: Session, now: datetime | None = None) -> tuple[list[dict], float | None]:
    """Sales live or upcoming at ``now``, each with its state, what a visitor can buy now first (the newest
    sale first), then what opens next, sold-out sales last; and seconds until the next start or end of any
    sale not ended (the homepage's next rebuild)."""
    from breakwater.flash.models import FlashSale

    now = now or utcnow()
    rows = session.scalars(select(FlashSale).where(FlashSale.ends_at > now).order_by(FlashSale.starts_at)).all()
    ranked, edges = [], []
    for sale in rows:
        for edge in (sale.starts_at, sale.ends_at):
            if edge > now:
                edges.append((edge - now).total_seconds())
        started = sale.starts_at.timestamp()
        if sale.starts_at > now:
            state, key = "upcoming", (1, started)
        elif sale.stock is not None and sale.stock.stock <= 0:
            state, key = "sold_out", (2, -started)
        else:
            state, key = "live", (0, -started)
        ranked.append((key, {**sale.to_json(), "state": state}))
    ranked.sort(key=lambda pair: pair[0])
    return [sale for _key, sale in ranked[:SALES_SHOWN]], (min(edges) if edges else None)


def home_data(session: Session) -> dict:
    slots, next_edge = slots_with_active_ads(session)
    sales, sale_edge = current_sales(session)
    edges = [e for e in (next_edge, sale_edge) if e is not None]
    return {
        "slots": {slot["key"]: slot for slot in slots},
        "categories": latest_by_category(session),
        "sales": sales,
        # An ad window or a sale opening or closing must show without waiting for the soft TTL.
        "next_change_in": min(edges) if edges else None,
    }


def soft_ttl(data: dict) -> float:
    edge = data.get("next_change_in")
    return SOFT_TTL if edge is None else max(0.5, min(SOFT_TTL, edge))
