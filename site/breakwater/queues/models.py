from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String, Text, func
from sqlalchemy.dialects.mysql import DATETIME
from sqlalchemy.orm import Mapped, mapped_column

from breakwater.database.base import Base


class OutboxMessage(Base):
    """A task to send, written in the same transaction as the change that calls for it."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    task: Mapped[str] = mapped_column(String(200))
    args: Mapped[str] = mapped_column(Text, default="[]")  # JSON
    kwargs: Mapped[str] = mapped_column(Text, default="{}")  # JSON
    created_at: Mapped[datetime] = mapped_column(DATETIME(fsp=6), server_default=func.now(6), index=True)


class FailedTask(Base):
    """A task that finally failed (retries used up, a permanent error, or its worker died too often)."""

    __tablename__ = "failed_tasks"

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[str] = mapped_column(String(64), index=True)
    task: Mapped[str] = mapped_column(String(200))
    queue: Mapped[str] = mapped_column(String(64), default="")
    args: Mapped[str] = mapped_column(Text, default="[]")
    kwargs: Mapped[str] = mapped_column(Text, default="{}")
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    failed_at: Mapped[datetime] = mapped_column(DATETIME(fsp=6), server_default=func.now(6))
    retried_at: Mapped[datetime | None] = mapped_column(DATETIME(fsp=6), nullable=True)
    retry_task_id: Mapped[str | None] = mapped_column(String(64), nullable=True)

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "task_id": self.task_id,
            "task": self.task,
            "queue": self.queue,
            "args": self.args,
            "kwargs": self.kwargs,
            "error": self.error,
            "attempts": self.attempts,
            "failed_at": self.failed_at.isoformat() if self.failed_at else None,
            "retried_at": self.retried_at.isoformat() if self.retried_at else None,
            "retry_task_id": self.retry_task_id,
        }
