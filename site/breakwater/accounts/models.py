from __future__ import annotations

import enum

from sqlalchemy import Enum, String
from sqlalchemy.orm import Mapped, mapped_column

from breakwater.database.base import Base, TimestampMixin


class Role(enum.StrEnum):
    VISITOR = "visitor"
    EDITOR = "editor"


class User(TimestampMixin, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(
        Enum(Role, values_callable=lambda e: [m.value for m in e], native_enum=True, name="user_role"),
        default=Role.VISITOR,
    )

    @property
    def is_editor(self) -> bool:
        return self.role == Role.EDITOR

    def to_json(self) -> dict:
        return {"id": self.id, "name": self.name, "role": self.role.value}
