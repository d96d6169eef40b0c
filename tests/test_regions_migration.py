"""The 2023 data migration on a database that holds the 2016 regions and an order pointing at one."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from breakwater.database.migrations import upgrade
from breakwater.regions.references import find_orphans, register_reference, unregister_reference

BIN = Path(sys.executable).parent / "breakwater"
# A slice of the 2016 table (cpca): 滦县 became 滦州市 (130284) in 2018; 莱芜市 joined 济南 in 2019.
OLD_2016 = [
    ("130000", "河北省", 1, None),
    ("130200", "唐山市", 2, "130000"),
    ("130203", "路北区", 3, "130200"),
    ("130223", "滦县", 3, "130200"),
    ("370000", "山东省", 1, None),
    ("371200", "莱芜市", 2, "370000"),
    ("371202", "莱城区", 3, "371200"),
]


@pytest.fixture()
def old_database(settings, node_admin):
    """A scratch database at revision 0002 with 2016 regions and an orders table referring to them."""
    name = "bw_reg_" + uuid.uuid4().hex[:8]
    app_user = (settings["DB_USER"], settings["HOST"])
    with node_admin(0) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
        cur.execute(f"GRANT ALL PRIVILEGES ON `{name}`.* TO %s@%s", (settings["DB_MIGRATE_USER"], settings["HOST"]))
        cur.execute(f"GRANT SELECT ON `{name}`.* TO %s@%s", app_user)  # for the orphans command
    scratch = settings.with_values(DB_NAME=name)
    upgrade(scratch, "0002_content")
    host, port = scratch.primary_address
    engine = create_engine(scratch.database_url(host, port, "DB_MIGRATE_USER"))
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO regions (code, name, level, parent_code) VALUES (:c, :n, :l, :p)"),
            [{"c": c, "n": n, "l": lvl, "p": p} for c, n, lvl, p in OLD_2016],
        )
        conn.execute(text("CREATE TABLE scratch_orders (id INT PRIMARY KEY, region_code CHAR(6) NOT NULL)"))
        conn.execute(text("INSERT INTO scratch_orders VALUES (1, '130223'), (2, '130203'), (3, '371202')"))
    register_reference("scratch_orders", "region_code")
    yield scratch, engine
    unregister_reference("scratch_orders", "region_code")
    engine.dispose()
    with node_admin(0) as conn, conn.cursor() as cur:
        cur.execute(f"REVOKE ALL PRIVILEGES ON `{name}`.* FROM %s@%s", app_user)  # DROP DATABASE keeps grants
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


def test_the_migration_keeps_an_order_whose_district_vanished(old_database):
    from breakwater.regions.models import Region
    from breakwater.regions.services import parent_chain, validate_address_code

    scratch, engine = old_database
    upgrade(scratch, "head")

    with engine.connect() as conn:
        orders = conn.execute(text("SELECT id, region_code FROM scratch_orders ORDER BY id")).all()
        assert orders == [(1, "130223"), (2, "130203"), (3, "371202")]  # nothing lost
        orphans = find_orphans(conn)
    assert [(o.key, o.code, o.name, o.status) for o in orphans] == [
        ({"id": 1}, "130223", "滦县", "obsolete"),
        ({"id": 3}, "371202", "莱城区", "obsolete"),
    ]
    with Session(engine) as session:
        assert [r.name for r in parent_chain(session, "130223")] == ["河北省", "唐山市", "滦县"]
        assert [r.name for r in parent_chain(session, "371202")] == ["山东省", "莱芜市", "莱城区"]
        assert session.get(Region, "371200").obsolete and session.get(Region, "130223").obsolete
        assert not session.get(Region, "130203").obsolete
        assert validate_address_code(session, "130284").name == "滦州市"  # the new code is there
        assert session.get(Region, "130284001").parent_code == "130284"  # and its streets
        with pytest.raises(Exception, match="no longer exists"):
            validate_address_code(session, "130223")


def test_orphans_command_lists_the_order(old_database, stack):
    scratch, _engine = old_database
    upgrade(scratch, "head")
    env = {**stack.env, "BREAKWATER_DB_NAME": scratch["DB_NAME"]}
    result = subprocess.run(
        [str(BIN), "regions", "orphans", "--also", "scratch_orders.region_code"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any("scratch_orders.region_code" in line and "130223" in line and "滦县" in line for line in lines)
    assert lines[-1].startswith("2 reference(s)")
