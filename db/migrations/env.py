"""Alembic environment: online migrations against the primary only."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from breakwater.database.base import Base
from breakwater.models import import_all
from breakwater.settings import Settings

import_all()
config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.attributes.get("url")
    if url:
        return url
    settings = Settings.load()
    host, port = settings.primary_address
    return settings.database_url(host, port, "DB_MIGRATE_USER")


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
