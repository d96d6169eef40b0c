"""One row per accepted image, named by the SHA-256 of its re-encoded master."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, func
from sqlalchemy.orm import Mapped, mapped_column

from breakwater.database.base import Base

#: Characters of the SHA-256 in file names and URLs (64 bits: collisions are not a practical concern).
NAME_HASH = 16


class MediaImage(Base):
    __tablename__ = "media_images"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    bytes: Mapped[int] = mapped_column(Integer)  # the upload's size, as the editor knows the file
    original_name: Mapped[str] = mapped_column(String(255), default="")
    widths: Mapped[str] = mapped_column(String(64))  # the emitted variant widths, "320,640,1280"
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=func.now(), nullable=False)

    @property
    def key(self) -> str:
        return self.sha256[:NAME_HASH]

    @property
    def width_list(self) -> list[int]:
        return [int(w) for w in self.widths.split(",") if w]

    @property
    def url(self) -> str:
        """The canonical URL content refers to: the largest JPEG variant."""
        return f"/media/{self.key}-{self.width_list[-1]}.jpg"

    def variant_names(self) -> list[str]:
        return [f"{self.key}-{w}.{ext}" for w in self.width_list for ext in ("webp", "jpg")]
