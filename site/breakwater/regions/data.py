"""The region table's contents: read ``db/seed/regions.csv`` and bring a database to it.

:func:`sync` is the one path for both cases: an empty table gets a bulk insert (about 45,000 rows,
multi-row INSERTs of a few thousand rows each: a fresh stack must start fast); a table holding an
older release is brought up to date without deleting anything: new codes are inserted, changed
names or parents updated, and codes the release no longer has are marked ``obsolete`` (rows kept,
so whatever stored such a code still resolves; see :mod:`breakwater.regions.references`).

Works on a plain Connection (Alembic's, or a Session's) and a table spelled out here rather than
the ORM model, so an old data migration keeps working when the model grows new columns.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from breakwater.settings import ROOT

SEED_FILE = ROOT / "db" / "seed" / "regions.csv"
CHUNK = 5000

regions = sa.table(
    "regions",
    sa.column("code", sa.String),
    sa.column("name", sa.String),
    sa.column("level", sa.SmallInteger),
    sa.column("parent_code", sa.String),
    sa.column("obsolete", sa.Boolean),
)


@dataclass
class SyncReport:
    inserted: int = 0
    updated: list[str] = field(default_factory=list)
    obsoleted: list[str] = field(default_factory=list)
    revived: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"{self.inserted} inserted, {len(self.updated)} updated, {len(self.obsoleted)} marked obsolete, "
            f"{len(self.revived)} current again"
        )


def read_seed(path: Path = SEED_FILE) -> list[dict]:
    """The release's rows, parents before children (the foreign key needs them in that order)."""
    with path.open(encoding="utf-8", newline="") as f:
        rows = [
            {"code": r["code"], "name": r["name"], "level": int(r["level"]), "parent_code": r["parent_code"] or None}
            for r in csv.DictReader(f)
        ]
    rows.sort(key=lambda r: (r["level"], r["code"]))
    return rows


def _insert(conn: Connection, rows: list[dict]) -> None:
    for start in range(0, len(rows), CHUNK):
        conn.execute(sa.insert(regions), [{**r, "obsolete": False} for r in rows[start : start + CHUNK]])


def sync(conn: Connection, rows: list[dict] | None = None) -> SyncReport:
    """Bring the ``regions`` table to ``rows`` (default: the seed file). The caller commits."""
    rows = read_seed() if rows is None else rows
    report = SyncReport()
    existing = {r.code: r for r in conn.execute(sa.select(regions))}
    new = [r for r in rows if r["code"] not in existing]
    _insert(conn, new)
    report.inserted = len(new)
    for r in rows:
        old = existing.get(r["code"])
        if old is None:
            continue
        if (old.name, old.level, old.parent_code) != (r["name"], r["level"], r["parent_code"]) or old.obsolete:
            conn.execute(
                sa.update(regions)
                .where(regions.c.code == r["code"])
                .values(name=r["name"], level=r["level"], parent_code=r["parent_code"], obsolete=False)
            )
            (report.revived if old.obsolete else report.updated).append(r["code"])
    current = {r["code"] for r in rows}
    gone = sorted(code for code, old in existing.items() if code not in current and not old.obsolete)
    for start in range(0, len(gone), CHUNK):
        conn.execute(sa.update(regions).where(regions.c.code.in_(gone[start : start + CHUNK])).values(obsolete=True))
    report.obsoleted = gone
    return report
