from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from breakwater.common.times import iso
from breakwater.database.base import Base, TimestampMixin


class AdSlot(Base):
    __tablename__ = "ad_slots"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))

    ads: Mapped[list[Ad]] = relationship(back_populates="slot", order_by="Ad.sort_order, Ad.id")

    def to_json(self) -> dict:
        return {"key": self.key, "name": self.name}


class Ad(TimestampMixin, Base):
    __tablename__ = "ads"

    id: Mapped[int] = mapped_column(primary_key=True)
    slot_id: Mapped[int] = mapped_column(ForeignKey("ad_slots.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    link: Mapped[str] = mapped_column(String(500))
    image_url: Mapped[str] = mapped_column(String(500), default="")
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    starts_at: Mapped[datetime | None] = mapped_column(DateTime)
    ends_at: Mapped[datetime | None] = mapped_column(DateTime)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)

    slot: Mapped[AdSlot] = relationship(back_populates="ads")

    def active_at(self, now: datetime) -> bool:
        return (
            self.enabled
            and (self.starts_at is None or self.starts_at <= now)
            and (self.ends_at is None or now < self.ends_at)
        )

    def to_json(self) -> dict:
        return {"id": self.id, "title": self.title, "link": self.link, "image_url": self.image_url}

    def to_editor_json(self) -> dict:
        return {
            **self.to_json(),
            "slot": self.slot.key,
            "sort_order": self.sort_order,
            "starts_at": iso(self.starts_at),
            "ends_at": iso(self.ends_at),
            "enabled": self.enabled,
        }
