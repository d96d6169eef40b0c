"""A PyMySQL dialect that learns the GTID of each write it commits.

PyMySQL does not expose MariaDB's session-tracked GTIDs, so right after a commit that wrote
(the router sets ``track_commit``) we ask the same connection for ``@@last_gtid`` and merge it
into the current causal token. One extra round trip, only for commits that wrote.
"""

from __future__ import annotations

import logging

from sqlalchemy.dialects import registry
from sqlalchemy.dialects.mysql.pymysql import MySQLDialect_pymysql

from breakwater.database import causal

log = logging.getLogger(__name__)


class GtidTrackingDialect(MySQLDialect_pymysql):
    supports_statement_cache = True

    def do_commit(self, dbapi_connection) -> None:
        super().do_commit(dbapi_connection)
        state = causal.current.get()
        if state is None or not state.track_commit:
            return
        try:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("SELECT @@last_gtid, @@read_only")
                row = cursor.fetchone()
            finally:
                cursor.close()
        except Exception as exc:  # the write is committed: never report it as failed
            state.track_commit = False
            log.warning("commit done but @@last_gtid unreadable (%s); this request now reads the primary", exc)
            state.mode = "strong"
            return
        if row and row[1]:
            # A read-only node (a replica; every node's engine tracks, since any may be promoted) wrote
            # nothing here: its session's last GTID would be stale, from its days as a primary.
            return
        state.track_commit = False
        if row and row[0]:
            state.add_commit(row[0])


registry.register("mysql.pymysql_gtid", "breakwater.database.dialect", "GtidTrackingDialect")
