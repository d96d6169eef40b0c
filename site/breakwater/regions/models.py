from __future__ import annotations

from sqlalchemy import CHAR, ForeignKey, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from breakwater.database.base import Base

LEVELS = {1: "province", 2: "city", 3: "district"}


class Region(Base):
    __tablename__ = "regions"

    code: Mapped[str] = mapped_column(CHAR(6), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    level: Mapped[int] = mapped_column(SmallInteger)
    parent_code: Mapped[str | None] = mapped_column(CHAR(6), ForeignKey("regions.code"), index=True)

    def to_json(self) -> dict:
        return {"code": self.code, "name": self.name, "level": LEVELS.get(self.level, str(self.level))}
