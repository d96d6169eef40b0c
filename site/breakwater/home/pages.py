"""The homepage as a static page: emitted, rebuilt when ads change, and again whenever an ad window or a sale
opens or closes (the homepage shows the ads and sales of the moment)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from breakwater.ads.services import slots_with_active_ads
from breakwater.home.services import current_sales
from breakwater.pages import registry


@registry.register
def homepage(session: Session) -> list[str]:
    return ["/"]


@registry.register_affected("ads")
def ads_changed(session: Session, namespace: str, manifest: dict) -> tuple[list[str], set[str]]:
    return ["/"], {"home", "ads"}


@registry.register_affected("flashes")
def sales_changed(session: Session, namespace: str, manifest: dict) -> tuple[list[str], set[str]]:
    return ["/"], set()  # the homepage lists the current and upcoming sales


@registry.register_next_change
def next_window(session: Session) -> float | None:
    _slots, ad_edge = slots_with_active_ads(session)
    _sales, sale_edge = current_sales(session)
    edges = [e for e in (ad_edge, sale_edge) if e is not None]
    return min(edges) if edges else None
