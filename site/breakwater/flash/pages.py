"""Each sale's static product page, and what a change to a sale affects."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from breakwater.flash.models import FlashSale
from breakwater.pages import registry


@registry.register
def sale_pages(session: Session) -> list[str]:
    return [f"/flash/{sale_id}" for sale_id in session.scalars(select(FlashSale.id))]


@registry.register_affected("flash:")
def sale_changed(session: Session, namespace: str, manifest: dict) -> tuple[list[str], set[str]]:
    return [f"/flash/{namespace.split(':', 1)[1]}"], set()
