"""Products, flash sales, their stock row (optimistic lock) and orders.

The database has the last word on stock: ``SaleStock.stock`` only changes through a conditional
``UPDATE ... WHERE stock >= :n AND version = :v`` (see :mod:`breakwater.flash.orders`), and two unique
constraints make a second order for the same user and slot, or for the same user and idempotency
key, impossible whatever the application does.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Enum,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)  # fmt: skip
from sqlalchemy.orm import Mapped, mapped_column, relationship

from breakwater.common.times import iso
from breakwater.database.base import Base, TimestampMixin
from breakwater.regions.references import register_reference


class Product(TimestampMixin, Base):
    __tablename__ = "products"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    price_cents: Mapped[int] = mapped_column(Integer)
    image_url: Mapped[str] = mapped_column(String(500), default="")

    def to_json(self) -> dict:
        return {
            "id": self.id, "name": self.name, "description": self.description,
            "price_cents": self.price_cents, "image_url": self.image_url,
        }  # fmt: skip


class FlashSale(TimestampMixin, Base):
    __tablename__ = "flash_sales"

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    total_stock: Mapped[int] = mapped_column(Integer)
    starts_at: Mapped[datetime] = mapped_column(DateTime)
    ends_at: Mapped[datetime] = mapped_column(DateTime)
    per_user_limit: Mapped[int] = mapped_column(Integer, default=1)

    product: Mapped[Product] = relationship(lazy="joined")
    stock: Mapped[SaleStock] = relationship(lazy="joined", uselist=False)

    def to_json(self) -> dict:
        return {
            "id": self.id, "product": self.product.to_json(), "total_stock": self.total_stock,
            "starts_at": iso(self.starts_at), "ends_at": iso(self.ends_at), "limit": self.per_user_limit,
        }  # fmt: skip


class SaleStock(Base):
    """What is left to sell in the database, with the version column of the optimistic lock."""

    __tablename__ = "flash_stock"
    __table_args__ = (CheckConstraint("stock >= 0", name="stock_not_negative"),)

    sale_id: Mapped[int] = mapped_column(ForeignKey("flash_sales.id"), primary_key=True)
    stock: Mapped[int] = mapped_column(Integer)
    sold: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[int] = mapped_column(BigInteger, default=0)


class OrderStatus(enum.StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class FlashOrder(Base):
    """An order. ``id`` is chosen when the gate accepts the request (so every retry of its write is the
    same row); ``slot`` is the buyer's n-th unit-claim in the sale (1..limit), so (sale, user, slot) is
    unique: with the default limit of 1, a second order for the same user and sale cannot exist."""

    __tablename__ = "flash_orders"
    __table_args__ = (
        UniqueConstraint("sale_id", "user_id", "slot", name="uq_flash_orders_sale_user_slot"),
        UniqueConstraint("user_id", "idempotency_key", name="uq_flash_orders_user_idempotency"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    sale_id: Mapped[int] = mapped_column(ForeignKey("flash_sales.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    slot: Mapped[int | None] = mapped_column(Integer, nullable=True)  # NULL once failed: frees the slot
    quantity: Mapped[int] = mapped_column(Integer)
    status: Mapped[OrderStatus] = mapped_column(
        Enum(OrderStatus, values_callable=lambda e: [m.value for m in e], native_enum=False, length=16)
    )
    idempotency_key: Mapped[str] = mapped_column(String(64))
    region_code: Mapped[str] = mapped_column(String(12))
    address_detail: Mapped[str] = mapped_column(String(200))
    recipient_name: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str] = mapped_column(String(20))
    failure: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=func.now())
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    def to_json(self) -> dict:
        return {
            "id": self.id, "sale_id": self.sale_id, "quantity": self.quantity, "status": self.status.value,
            "address": {"region_code": self.region_code, "detail": self.address_detail,
                        "name": self.recipient_name, "phone": self.phone},
            "created_at": iso(self.created_at), "confirmed_at": iso(self.confirmed_at),
            "failure": self.failure or None,
        }  # fmt: skip


register_reference("flash_orders", "region_code")  # obsolete codes are kept, flagged, listed (regions orphans)
