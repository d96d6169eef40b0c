"""Alembic, driven from Python so the stack, the CLI and the tests share one code path."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from breakwater.settings import ROOT, Settings

ALEMBIC_INI = ROOT / "db" / "alembic.ini"


def alembic_config(settings: Settings) -> Config:
    cfg = Config(str(ALEMBIC_INI))
    cfg.set_main_option("script_location", str(ROOT / "db" / "migrations"))
    host, port = settings.primary_address
    # Migrations run as the schema owner on the primary; replicas receive them by replication.
    cfg.attributes["url"] = settings.database_url(host, port, "DB_MIGRATE_USER")
    return cfg


def upgrade(settings: Settings, revision: str = "head") -> None:
    command.upgrade(alembic_config(settings), revision)


def downgrade(settings: Settings, revision: str) -> None:
    command.downgrade(alembic_config(settings), revision)


def current(settings: Settings) -> str | None:
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine

    engine = create_engine(alembic_config(settings).attributes["url"])
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
