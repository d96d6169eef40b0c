"""The flash sale's invariants, checked in the database after a run (no Locust needed to import it).

``check_sale(db_url, sale_id, accepted)`` reads the sale, its stock row and every order on the
primary and returns one :class:`Verdict` per invariant:

* **no oversell**: confirmed units <= the sale's stock, the stock row never negative, and the stock
  row's ``sold`` equal to the confirmed units (``stock + sold == total``);
* **at most the limit per buyer**: no buyer holds more confirmed units than ``per_user_limit``;
* **no duplicate orders**: no (buyer, Idempotency-Key) twice, no (buyer, slot) twice among confirmed
  orders, and (with ``accepted``, the run's own 202 answers as (user id, key, order id)) no order id
  handed to two different requests;
* **no accepted order lost**: every order id answered 202 is one confirmed order.

    python loadtests/scenarios/flash_check.py SALE_ID [DB_URL]   # DB_URL defaults to the local stack's
"""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from dataclasses import dataclass

from sqlalchemy import create_engine, text

NAMES = ("no oversell", "at most the limit per buyer", "no duplicate orders", "no accepted order lost")


@dataclass(frozen=True)
class Verdict:
    name: str
    ok: bool
    detail: str


def check_sale(db_url: str, sale_id: int, accepted: list[tuple[int, str, str]] | None = None) -> list[Verdict]:
    engine = create_engine(db_url, pool_pre_ping=True)
    try:
        with engine.connect() as conn:
            sale = conn.execute(
                text(
                    "SELECT s.total_stock, s.per_user_limit, k.stock, k.sold FROM flash_sales s "
                    "JOIN flash_stock k ON k.sale_id = s.id WHERE s.id = :s"
                ),
                {"s": sale_id},
            ).one_or_none()
            if sale is None:
                raise LookupError(f"there is no flash sale {sale_id} in that database")
            orders = conn.execute(
                text(
                    "SELECT id, user_id, quantity, status, slot, idempotency_key FROM flash_orders WHERE sale_id = :s"
                ),
                {"s": sale_id},
            ).all()
    finally:
        engine.dispose()
    confirmed = [o for o in orders if o.status == "confirmed"]
    units = sum(o.quantity for o in confirmed)
    per_buyer: dict[int, int] = defaultdict(int)
    for o in confirmed:
        per_buyer[o.user_id] += o.quantity
    verdicts = [
        _oversell(sale, units),
        _limit(per_buyer, sale.per_user_limit),
        _duplicates(orders, confirmed, accepted or []),
    ]
    if accepted is not None:
        verdicts.append(_lost(confirmed, accepted))
    return verdicts


def _oversell(sale, units: int) -> Verdict:
    ok = units <= sale.total_stock and sale.stock >= 0 and sale.sold == units
    ok = ok and sale.stock + sale.sold == sale.total_stock
    return Verdict(
        "no oversell", ok,
        f"{units} units confirmed of {sale.total_stock}; stock row: {sale.stock} left, {sale.sold} sold",
    )  # fmt: skip


def _limit(per_buyer: dict[int, int], limit: int) -> Verdict:
    over = {uid: n for uid, n in per_buyer.items() if n > limit}
    most = max(per_buyer.values(), default=0)
    detail = f"most units held by one buyer: {most} (limit {limit}), {len(per_buyer)} buyers"
    if over:
        detail += f"; over the limit: {dict(sorted(over.items())[:5])} (buyer id: units)"
    return Verdict("at most the limit per buyer", not over, detail)


def _duplicates(orders, confirmed, accepted: list[tuple[int, str, str]]) -> Verdict:
    keys = [k for k, n in Counter((o.user_id, o.idempotency_key) for o in orders).items() if n > 1]
    slots = [k for k, n in Counter((o.user_id, o.slot) for o in confirmed).items() if n > 1]
    requests_of: dict[str, set] = defaultdict(set)
    for user_id, key, order_id in accepted:
        requests_of[order_id].add((user_id, key))
    shared = [oid for oid, reqs in requests_of.items() if len(reqs) > 1]
    ok = not keys and not slots and not shared
    detail = (
        f"{len(orders)} orders: {len(keys)} (buyer, Idempotency-Key) pairs twice, {len(slots)} (buyer, slot) pairs "
        f"twice among confirmed; {len(shared)} order ids answered to two different requests"
    )
    return Verdict("no duplicate orders", ok, detail)


def _lost(confirmed, accepted: list[tuple[int, str, str]]) -> Verdict:
    ids = {o.id for o in confirmed}
    answered = {order_id for _uid, _key, order_id in accepted}
    missing = sorted(answered - ids)
    detail = f"{len(answered)} orders answered 202, {len(answered) - len(missing)} of them confirmed"
    if missing:
        detail += f"; not confirmed: {', '.join(missing[:3])}"
    return Verdict("no accepted order lost", not missing, detail)


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3) or not argv[1].isdigit():
        print("usage: python flash_check.py SALE_ID [DB_URL]", file=sys.stderr)
        return 2
    db_url = argv[2] if len(argv) == 3 else None
    if db_url is None:
        from breakwater.settings import Settings

        settings = Settings.load()
        db_url = settings.database_url(*settings.primary_address)
    verdicts = check_sale(db_url, int(argv[1]))
    for v in verdicts:
        print(f"{'ok  ' if v.ok else 'FAIL'} {v.name}: {v.detail}")
    return 0 if all(v.ok for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
