"""Ad slots and ads: editor changes with validation, and what the homepage shows right now."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from breakwater.accounts.models import User
from breakwater.ads.models import Ad, AdSlot
from breakwater.common import fields
from breakwater.common.errors import ApiError
from breakwater.common.times import parse_datetime, utcnow
from breakwater.content.services import record_event

SLOT_KEY_RE = re.compile(r"^[a-z0-9_]{1,64}$")


def slots_with_active_ads(session: Session, now: datetime | None = None) -> tuple[list[dict], float | None]:
    """Every slot with its ads active at ``now`` in order, and seconds until the next window edge."""
    now = now or utcnow()
    slots = session.scalars(select(AdSlot).options(selectinload(AdSlot.ads)).order_by(AdSlot.id))
    result, edges = [], []
    for slot in slots:
        active = [ad.to_json() for ad in slot.ads if ad.active_at(now)]
        result.append({**slot.to_json(), "ads": active})
        for ad in slot.ads:
            for edge in (ad.starts_at, ad.ends_at):
                if ad.enabled and edge is not None and edge > now:
                    edges.append((edge - now).total_seconds())
    return result, (min(edges) if edges else None)


def slot_by_key(session: Session, key: str) -> AdSlot:
    slot = session.scalars(select(AdSlot).where(AdSlot.key == key)).first()
    if slot is None:
        raise ApiError(404, "slot_not_found", f"There is no ad slot {key!r}.")
    return slot


def validate_ad(session: Session, data: dict, existing: Ad | None = None) -> dict:
    partial = existing is not None
    clean: dict = {}
    if not partial or "slot" in data:
        clean["slot_id"] = slot_by_key(session, fields.text(data, "slot", required=True)).id
    if not partial or "title" in data:
        clean["title"] = fields.text(data, "title", required=True)
    if not partial or "link" in data:
        clean["link"] = fields.url(fields.text(data, "link", required=True), "link")
    if "image_url" in data or not partial:
        clean["image_url"] = fields.url(fields.text(data, "image_url", required=False), "image_url")
    if "sort_order" in data:
        order = data["sort_order"]
        if not isinstance(order, int) or isinstance(order, bool) or not -1000 <= order <= 1000:
            raise ApiError(400, "invalid_field", "sort_order must be a whole number from -1000 to 1000.")
        clean["sort_order"] = order
    if "enabled" in data:
        if not isinstance(data["enabled"], bool):
            raise ApiError(400, "invalid_field", "enabled must be true or false.")
        clean["enabled"] = data["enabled"]
    for field in ("starts_at", "ends_at"):
        if field in data or not partial:
            clean[field] = parse_datetime(data, field)
    starts = clean.get("starts_at", existing.starts_at if existing else None)
    ends = clean.get("ends_at", existing.ends_at if existing else None)
    if starts and ends and ends <= starts:
        raise ApiError(400, "invalid_window", "ends_at must be after starts_at.")
    return clean


def create_ad(session: Session, actor: User, data: dict) -> Ad:
    ad = Ad(**validate_ad(session, data))
    session.add(ad)
    session.flush()
    record_event(session, actor, "create", "ad", str(ad.id), ad.title)
    session.commit()
    return ad


def get_ad(session: Session, ad_id: int) -> Ad:
    ad = session.get(Ad, ad_id)
    if ad is None:
        raise ApiError(404, "ad_not_found", f"There is no ad {ad_id}.")
    return ad


def update_ad(session: Session, actor: User, ad: Ad, data: dict) -> Ad:
    for field, value in validate_ad(session, data, existing=ad).items():
        setattr(ad, field, value)
    record_event(session, actor, "update", "ad", str(ad.id), ad.title)
    session.commit()
    return ad


def delete_ad(session: Session, actor: User, ad: Ad) -> None:
    record_event(session, actor, "delete", "ad", str(ad.id), ad.title)
    session.delete(ad)
    session.commit()


def create_slot(session: Session, actor: User, data: dict) -> AdSlot:
    key = fields.text(data, "key", required=True)
    if not SLOT_KEY_RE.match(key):
        raise ApiError(400, "invalid_slot_key", "key may contain lowercase letters, digits and '_' (at most 64).")
    name = fields.text(data, "name", required=True)
    if len(name) > 100:
        raise ApiError(400, "field_too_long", "name is longer than 100 characters.")
    slot = AdSlot(key=key, name=name)
    session.add(slot)
    record_event(session, actor, "create", "slot", key)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise ApiError(409, "slot_taken", f"The slot key {key!r} already exists.") from None
    return slot


def all_slots(session: Session) -> list[AdSlot]:
    return list(session.scalars(select(AdSlot).options(selectinload(AdSlot.ads)).order_by(AdSlot.id)))
