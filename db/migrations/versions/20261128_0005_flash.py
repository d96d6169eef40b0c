"""flash sale: products, sales, stock with a version column, orders

Revision ID: 0005_flash
Revises: 0003_queues
Create Date: 2026-11-28 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_flash"
down_revision = "0003_queues"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "products",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("price_cents", sa.Integer(), nullable=False),
        sa.Column("image_url", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
        sa.UniqueConstraint("name", name=op.f("uq_products_name")),
    )
    op.create_table(
        "flash_sales",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("total_stock", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(), nullable=False),
        sa.Column("ends_at", sa.DateTime(), nullable=False),
        sa.Column("per_user_limit", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["product_id"], ["products.id"], name=op.f("fk_flash_sales_product_id_products")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flash_sales")),
    )
    op.create_index(op.f("ix_flash_sales_product_id"), "flash_sales", ["product_id"], unique=False)
    op.create_table(
        "flash_stock",
        sa.Column("sale_id", sa.Integer(), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=False),
        sa.Column("sold", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("stock >= 0", name=op.f("ck_flash_stock_stock_not_negative")),
        sa.ForeignKeyConstraint(["sale_id"], ["flash_sales.id"], name=op.f("fk_flash_stock_sale_id_flash_sales")),
        sa.PrimaryKeyConstraint("sale_id", name=op.f("pk_flash_stock")),
    )
    op.create_table(
        "flash_orders",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("sale_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.Column("region_code", sa.String(length=12), nullable=False),
        sa.Column("address_detail", sa.String(length=200), nullable=False),
        sa.Column("recipient_name", sa.String(length=64), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("failure", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(), server_default=sa.text("now()"), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["sale_id"], ["flash_sales.id"], name=op.f("fk_flash_orders_sale_id_flash_sales")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_flash_orders_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flash_orders")),
        sa.UniqueConstraint("sale_id", "user_id", "slot", name="uq_flash_orders_sale_user_slot"),
        sa.UniqueConstraint("user_id", "idempotency_key", name="uq_flash_orders_user_idempotency"),
    )
    op.create_index(op.f("ix_flash_orders_sale_id"), "flash_orders", ["sale_id"], unique=False)
    op.create_index(op.f("ix_flash_orders_user_id"), "flash_orders", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_table("flash_orders")
    op.drop_table("flash_stock")
    op.drop_table("flash_sales")
    op.drop_table("products")
