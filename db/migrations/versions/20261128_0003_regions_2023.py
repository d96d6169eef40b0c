"""regions: 2023 statistical codes with streets/townships; obsolete codes kept and flagged

Widens ``regions.code``/``parent_code`` to VARCHAR(12) (streets have 9-digit codes), adds
``obsolete``, then brings existing rows to ``db/seed/regions.csv``: new codes inserted, renamed ones
updated, codes the release dropped kept as ``obsolete`` rows so that every stored reference still
resolves. An empty table (a fresh database) is left to the seed step. References to obsolete or
unknown codes are counted here and listed by ``breakwater regions orphans``.

The next release: convert it (db/seed/convert_regions.py), then add a migration whose upgrade is
``data.sync(op.get_bind())`` plus the same report.

Revision ID: 0003_regions_2023
Revises: 0002_content
Create Date: 2026-11-28 05:10:00
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = "0003_regions_2023"
down_revision = "0002_content"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")
FK = "fk_regions_parent_code_regions"


def _columns(old: sa.types.TypeEngine, new: sa.types.TypeEngine) -> None:
    op.drop_constraint(FK, "regions", type_="foreignkey")
    op.alter_column("regions", "code", existing_type=old, type_=new, existing_nullable=False)
    op.alter_column("regions", "parent_code", existing_type=old, type_=new, existing_nullable=True)
    op.create_foreign_key(FK, "regions", "regions", ["parent_code"], ["code"])


def upgrade() -> None:
    _columns(sa.CHAR(length=6), sa.String(length=12))
    op.add_column("regions", sa.Column("obsolete", sa.Boolean(), server_default=sa.false(), nullable=False))
    data_step(op.get_bind())


def data_step(conn: sa.engine.Connection) -> None:
    from breakwater.regions import data
    from breakwater.regions.references import find_orphans

    if not conn.execute(sa.text("SELECT 1 FROM regions LIMIT 1")).first():
        return  # a fresh database: the seed step loads the release
    report = data.sync(conn)
    log.info("regions: %s", report)
    orphans = find_orphans(conn)
    if orphans:
        log.warning(
            "regions: %d stored references point at obsolete or unknown codes; `breakwater regions orphans` lists them",
            len(orphans),
        )


def downgrade() -> None:
    # Streets cannot fit CHAR(6): they go. District-level rows stay (current and obsolete alike).
    op.execute("DELETE FROM regions WHERE level = 4 OR CHAR_LENGTH(code) > 6")
    op.drop_column("regions", "obsolete")
    _columns(sa.String(length=12), sa.CHAR(length=6))
