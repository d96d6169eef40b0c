"""Migrations upgrade and downgrade cleanly, on a scratch database of the real primary."""

from __future__ import annotations

import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from breakwater.database.base import Base
from breakwater.database.migrations import current, downgrade, upgrade
from breakwater.models import import_all


@pytest.fixture()
def scratch_settings(settings, node_admin):
    name = "bw_mig_" + uuid.uuid4().hex[:8]
    user = settings["DB_MIGRATE_USER"]
    with node_admin(0) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
        cur.execute(f"GRANT ALL PRIVILEGES ON `{name}`.* TO %s@%s", (user, settings["HOST"]))
    yield settings.with_values(DB_NAME=name)
    with node_admin(0) as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


def tables(settings) -> set[str]:
    host, port = settings.primary_address
    engine = create_engine(settings.database_url(host, port, "DB_MIGRATE_USER"))
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(scratch_settings):
    upgrade(scratch_settings, "head")
    assert {"users", "alembic_version"} <= tables(scratch_settings)
    head = current(scratch_settings)
    assert head is not None

    downgrade(scratch_settings, "base")
    assert tables(scratch_settings) == {"alembic_version"}
    assert current(scratch_settings) is None

    upgrade(scratch_settings, "head")
    assert current(scratch_settings) == head


def test_models_match_migrations(scratch_settings):
    upgrade(scratch_settings, "head")
    import_all()
    host, port = scratch_settings.primary_address
    engine = create_engine(scratch_settings.database_url(host, port, "DB_MIGRATE_USER"))
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_stack_database_is_at_head(settings):
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from breakwater.database.migrations import ALEMBIC_INI
    from breakwater.settings import ROOT

    cfg = Config(str(ALEMBIC_INI))
    cfg.set_main_option("script_location", str(ROOT / "db" / "migrations"))
    assert current(settings) == ScriptDirectory.from_config(cfg).get_current_head()
