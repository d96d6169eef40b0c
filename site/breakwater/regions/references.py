"""Columns elsewhere that hold region codes, and the check that finds codes which no longer resolve.

A feature that stores a region code registers its column once, next to its model::

    from breakwater.regions.references import register_reference
    register_reference("flash_orders", "region_code")

When a new data release drops a code, the code's row stays in ``regions`` marked ``obsolete`` (so
joins and parent chains still work) and :func:`find_orphans` lists every registered row whose code
is obsolete or unknown: ``breakwater regions orphans`` prints them, the data migration counts them.
The list is computed, not stored, so it is empty again as soon as the addresses are corrected.
Tables that do not exist (yet) in the database are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

REFERENCES: dict[tuple[str, str], None] = {}  # ordered set of (table, column)


def register_reference(table: str, column: str) -> None:
    REFERENCES[(table, column)] = None


def unregister_reference(table: str, column: str) -> None:
    REFERENCES.pop((table, column), None)


@dataclass(frozen=True)
class Orphan:
    table: str
    column: str
    key: dict  # the row's primary key
    code: str
    name: str | None  # None: the code is in no release at all
    status: str  # "obsolete" | "unknown"

    def to_json(self) -> dict:
        return {**self.__dict__}


def _quote(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def find_orphans(conn: Connection, references=None) -> list[Orphan]:
    """Rows of registered columns whose non-empty code is obsolete or missing from ``regions``."""
    inspector = inspect(conn)
    existing = set(inspector.get_table_names())
    found: list[Orphan] = []
    for table, column in list(references if references is not None else REFERENCES):
        if table not in existing:
            continue
        pk = inspector.get_pk_constraint(table).get("constrained_columns") or [column]
        q = {name: _quote(conn, name) for name in {table, column, *pk}}
        keys = ", ".join(f"t.{q[c]}" for c in pk)
        sql = (
            f"SELECT {keys}, t.{q[column]}, r.name, r.obsolete FROM {q[table]} t "
            f"LEFT JOIN regions r ON r.code = t.{q[column]} "
            f"WHERE t.{q[column]} IS NOT NULL AND t.{q[column]} <> '' AND (r.code IS NULL OR r.obsolete) "
            f"ORDER BY {keys}"
        )
        for row in conn.execute(text(sql)):
            key = dict(zip(pk, row[: len(pk)], strict=True))
            code, name, obsolete = row[len(pk) :]
            found.append(Orphan(table, column, key, code, name, "obsolete" if obsolete else "unknown"))
    return found
