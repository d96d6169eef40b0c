"""Region lookups (read from replicas) and the seed loader."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from breakwater.errors import ApiError
from breakwater.regions.models import Region
from breakwater.settings import ROOT

CODE_RE = re.compile(r"^\d{6}$")
SEED_FILE = ROOT / "db" / "seed" / "regions.csv"


def validate_code(code: str) -> str:
    if not CODE_RE.match(code):
        raise ApiError(400, "invalid_region_code", "A region code is six digits, e.g. 110000.")
    return code


def provinces(session: Session) -> list[dict]:
    rows = session.scalars(select(Region).where(Region.parent_code.is_(None)).order_by(Region.code))
    return [r.to_json() for r in rows]


def node_with_children(session: Session, code: str) -> dict:
    node = session.get(Region, validate_code(code))
    if node is None:
        raise ApiError(404, "region_not_found", f"There is no region with code {code}.")
    children = session.scalars(select(Region).where(Region.parent_code == code).order_by(Region.code))
    return {**node.to_json(), "parent": node.parent_code, "children": [c.to_json() for c in children]}


def load_seed(session: Session, path: Path = SEED_FILE) -> int:
    """Insert the regions once (idempotent: does nothing when the table already has rows)."""
    if session.scalar(select(func.count()).select_from(Region)):
        return 0
    with path.open(encoding="utf-8") as f:
        rows = [
            {"code": r["code"], "name": r["name"], "level": int(r["level"]), "parent_code": r["parent_code"] or None}
            for r in csv.DictReader(f)
        ]
    rows.sort(key=lambda r: (r["level"], r["code"]))  # parents before children (foreign key)
    for start in range(0, len(rows), 1000):
        session.execute(insert(Region), rows[start : start + 1000])
    session.commit()
    return len(rows)
