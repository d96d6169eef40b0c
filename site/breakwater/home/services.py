"""What the homepage shows: every ad slot with its current ads, and the latest articles per category."""

from __future__ import annotations

from sqlalchemy.orm import Session

from breakwater.ads.services import slots_with_active_ads
from breakwater.content.services import latest_by_category

SOFT_TTL = 30.0
DEPS = ("articles", "ads")


def home_data(session: Session) -> dict:
    slots, next_edge = slots_with_active_ads(session)
    return {
        "slots": {slot["key"]: slot for slot in slots},
        "categories": latest_by_category(session),
        # An ad window opening or closing must show without waiting for the soft TTL.
        "next_change_in": next_edge,
    }


def soft_ttl(data: dict) -> float:
    edge = data.get("next_change_in")
    return SOFT_TTL if edge is None else max(0.5, min(SOFT_TTL, edge))
