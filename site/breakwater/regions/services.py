"""Region lookups (read from replicas), the address check for orders, and the seed loader.

Codes: 6 digits for provinces, cities and districts, 9 for streets/townships (the first 9 digits of
the 12-digit statistical code). Children lists and the picker skip obsolete codes; a node and its
parent chain still resolve for an obsolete code, so stored addresses keep their names.
"""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from breakwater.common.errors import ApiError
from breakwater.regions import data
from breakwater.regions.models import Region

CODE_RE = re.compile(r"^(\d{6}|\d{9})$")
ADDRESS_LEVELS = (3, 4)  # district or street/township


def validate_code(code: str) -> str:
    if not CODE_RE.match(code):
        raise ApiError(400, "invalid_region_code", "A region code is 6 digits (e.g. 110101) or 9 (e.g. 110101001).")
    return code


def provinces(session: Session) -> list[dict]:
    rows = session.scalars(
        select(Region).where(Region.parent_code.is_(None), Region.obsolete.is_(False)).order_by(Region.code)
    )
    return [r.to_json() for r in rows]


def children(session: Session, code: str) -> list[Region]:
    return list(
        session.scalars(
            select(Region).where(Region.parent_code == code, Region.obsolete.is_(False)).order_by(Region.code)
        )
    )


def parent_chain(session: Session, code: str) -> list[Region]:
    """The region and its ancestors, province first (obsolete ones included). 404 when unknown."""
    node = session.get(Region, validate_code(code))
    if node is None:
        raise ApiError(404, "region_not_found", f"There is no region with code {code}.")
    chain = [node]
    while chain[-1].parent_code and len(chain) < 5:
        parent = session.get(Region, chain[-1].parent_code)
        if parent is None:
            break
        chain.append(parent)
    return chain[::-1]


def node_with_children(session: Session, code: str) -> dict:
    chain = parent_chain(session, code)
    node = chain[-1]
    return {
        **node.to_json(),
        "parent": node.parent_code,
        "ancestors": [r.to_json() for r in chain[:-1]],
        "children": [c.to_json() for c in children(session, code)],
    }


def validate_address_code(session: Session, code: object) -> Region:
    """The region an address may point at: a current district or street/township.

    Also accepted: a current region with no children at all (Hong Kong, Macau and Taiwan, which have
    no finer official codes). Anything else is a 400 ``invalid_region``.
    """
    if not isinstance(code, str) or not CODE_RE.match(code):
        raise ApiError(400, "invalid_region", "The address needs a district or street code (6 or 9 digits).")
    region = session.get(Region, code)
    if region is None or region.obsolete:
        what = "no longer exists" if region is not None else "does not exist"
        raise ApiError(400, "invalid_region", f"Region {code} {what}; pick the address again.")
    if region.level not in ADDRESS_LEVELS and children(session, code):
        raise ApiError(400, "invalid_region", f"{region.name} ({code}) is too coarse: pick a district or street.")
    return region


def load_seed(session: Session) -> int:
    """Load the regions once (idempotent: does nothing when the table already has rows)."""
    if session.scalar(select(func.count()).select_from(Region)):
        return 0
    report = data.sync(session.connection())
    session.commit()
    return report.inserted
