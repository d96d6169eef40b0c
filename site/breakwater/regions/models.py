from __future__ import annotations

from sqlalchemy import Boolean, ForeignKey, SmallInteger, String, false
from sqlalchemy.orm import Mapped, mapped_column

from breakwater.database.base import Base

LEVELS = {1: "province", 2: "city", 3: "district", 4: "street"}


class Region(Base):
    """A division: 6-digit codes for levels 1-3 (GB/T 2260 / statistical), 9-digit for streets/townships.

    ``obsolete`` rows are codes that a newer data release no longer has. They are kept (with their
    parent) so that anything that stored such a code still resolves to a name and a parent chain;
    the picker and the children lists skip them, and an address cannot be set to one.
    """

    __tablename__ = "regions"

    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    level: Mapped[int] = mapped_column(SmallInteger)
    parent_code: Mapped[str | None] = mapped_column(String(12), ForeignKey("regions.code"), index=True)
    obsolete: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    def to_json(self) -> dict:
        data = {"code": self.code, "name": self.name, "level": LEVELS.get(self.level, str(self.level))}
        if self.obsolete:
            data["obsolete"] = True
        return data
