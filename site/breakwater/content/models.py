from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import DateTime, Enum, ForeignKey, Index, Integer, String, Text, func
from sqlalchemy.dialects.mysql import MEDIUMTEXT
from sqlalchemy.orm import Mapped, mapped_column, relationship

from breakwater.accounts.models import User
from breakwater.common.times import iso
from breakwater.database.base import Base, TimestampMixin


class Status(enum.StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"


class Category(Base):
    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    sort_order: Mapped[int] = mapped_column(Integer, default=0)

    def to_json(self) -> dict:
        return {"slug": self.slug, "name": self.name}


class Article(TimestampMixin, Base):
    __tablename__ = "articles"
    __table_args__ = (Index("ix_articles_listing", "status", "category_id", "published_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    summary: Mapped[str] = mapped_column(String(500), default="")
    body_md: Mapped[str] = mapped_column(Text().with_variant(MEDIUMTEXT(), "mysql"))
    body_html: Mapped[str] = mapped_column(Text().with_variant(MEDIUMTEXT(), "mysql"))
    cover_url: Mapped[str] = mapped_column(String(500), default="")
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"), index=True)
    status: Mapped[Status] = mapped_column(
        Enum(Status, values_callable=lambda e: [m.value for m in e], name="article_status"),
        default=Status.DRAFT,
        index=True,
    )
    published_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)

    category: Mapped[Category] = relationship(lazy="joined")
    author: Mapped[User] = relationship(lazy="joined")

    def to_summary(self) -> dict:
        return {
            "id": self.id,
            "slug": self.slug,
            "title": self.title,
            "summary": self.summary,
            "cover_url": self.cover_url,
            "category": self.category.to_json(),
            "published_at": iso(self.published_at),
        }

    def to_json(self) -> dict:
        return {
            **self.to_summary(),
            "body_html": self.body_html,
            "author": self.author.name,
            "updated_at": iso(self.updated_at),
        }

    def to_editor_json(self) -> dict:
        return {**self.to_json(), "id": self.id, "status": self.status.value, "body_md": self.body_md}


class PublishEvent(Base):
    """History of what editors published, unpublished, changed or deleted."""

    __tablename__ = "publish_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, server_default=func.now(), index=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(32))  # article | ad | slot
    subject_key: Mapped[str] = mapped_column(String(200))
    detail: Mapped[str] = mapped_column(String(500), default="")

    actor: Mapped[User] = relationship(lazy="joined")

    def to_json(self) -> dict:
        return {
            "at": iso(self.at),
            "actor": self.actor.name,
            "action": self.action,
            "subject": self.subject,
            "key": self.subject_key,
            "detail": self.detail,
        }
