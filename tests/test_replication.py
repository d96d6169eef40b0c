"""The replication topology itself: rows flow primary -> replicas, replicas refuse writes."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError

from routing_helpers import wait_caught_up


def test_row_written_on_primary_appears_on_both_replicas(db, unique_name):
    with db.primary_engine.begin() as conn:
        conn.execute(
            text("INSERT INTO users (name, password_hash, role) VALUES (:n, 'x', 'visitor')"), {"n": unique_name}
        )
    wait_caught_up(db)
    server_ids = set()
    for node in db.replicas:
        with node.app.connect() as conn:
            server_ids.add(conn.execute(text("SELECT @@server_id")).scalar_one())
            found = conn.execute(text("SELECT COUNT(*) FROM users WHERE name = :n"), {"n": unique_name}).scalar_one()
            assert found == 1, f"{node.name} does not have the row"
    assert len(server_ids) == 2


def test_replicas_refuse_writes_from_the_application_user(db, unique_name):
    for node in db.replicas:
        with node.app.connect() as conn:
            assert conn.execute(text("SELECT @@read_only")).scalar_one() == 1
            with pytest.raises(OperationalError) as info:
                conn.execute(
                    text("INSERT INTO users (name, password_hash, role) VALUES (:n, 'x', 'visitor')"),
                    {"n": unique_name},
                )
            assert info.value.orig.args[0] == 1290  # ER_OPTION_PREVENTS_STATEMENT (--read-only)
            conn.rollback()
            assert (
                conn.execute(text("SELECT COUNT(*) FROM users WHERE name = :n"), {"n": unique_name}).scalar_one() == 0
            )
    with db.primary_engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM users WHERE name = :n"), {"n": unique_name}).scalar_one() == 0


def test_replicas_use_gtid_positioning(node_admin):
    for index in (1, 2):
        with node_admin(index) as conn, conn.cursor() as cur:
            cur.execute("SHOW SLAVE STATUS")
            cols = [d[0] for d in cur.description]
            status = dict(zip(cols, cur.fetchone(), strict=True))
            assert status["Using_Gtid"] == "Slave_Pos"
            assert status["Slave_IO_Running"] == "Yes" and status["Slave_SQL_Running"] == "Yes"
            cur.execute("SELECT @@gtid_strict_mode, @@binlog_format, @@log_bin")
            assert cur.fetchone() == (1, "ROW", 1)


def test_application_user_has_least_privilege(db):
    with db.primary_engine.connect() as conn:
        grants = " ".join(row[0] for row in conn.execute(text("SHOW GRANTS")))
    assert "ALL PRIVILEGES" not in grants
    assert "SUPER" not in grants
    assert "CREATE," not in grants and "DROP" not in grants
    with db.primary_engine.connect() as conn, pytest.raises(DBAPIError) as info:
        conn.execute(text("CREATE TABLE should_not_exist (id INT)"))
    assert info.value.orig.args[0] == 1142  # ER_TABLEACCESS_DENIED_ERROR
