from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CHAR, DateTime, Enum, ForeignKey, String, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from breakwater.database.base import Base, TimestampMixin


class Role(enum.StrEnum):
    VISITOR = "visitor"
    EDITOR = "editor"


class User(TimestampMixin, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)  # only for notifications
    role: Mapped[Role] = mapped_column(
        Enum(Role, values_callable=lambda e: [m.value for m in e], native_enum=True, name="user_role"),
        default=Role.VISITOR,
    )

    @property
    def is_editor(self) -> bool:
        return self.role == Role.EDITOR

    def to_json(self) -> dict:
        return {"id": self.id, "name": self.name, "role": self.role.value}


class ApiToken(Base):
    """A bearer token for the editor API; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(CHAR(64), unique=True)
    label: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=func.now())

    user: Mapped[User] = relationship(lazy="joined")
