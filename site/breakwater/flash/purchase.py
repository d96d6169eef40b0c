"""A flash purchase decided: the rejections, and the claim / accept / replay / reload / enqueue steps.

The HTTP view (:mod:`.api`) checks who buys and with which Idempotency-Key, calls :func:`through_gate` (or the
database-only path in :mod:`.direct`, which shares :data:`REJECTIONS` and the input checks here) and maps the
:class:`Placed` result or the :class:`ApiError` back to HTTP. Nothing here reads the request.

Through the gate, in order, each step as cheap as it can be:

1. this process already knows the answer (the buyer at the limit, the sale sold out): only the buyer's
   idempotency record is read, so a retry of an accepted order still gets its 202;
2. the input (quantity, address);
3. **claim** the Idempotency-Key at the gate (an existing record is **replayed**: the first answer again, or
   409/422 for a key in flight or reused with another body);
4. **accept** at the gate (stock and per-buyer limit in one Redis script); a gate that lost the sale is
   **reloaded** from the database once;
5. an accepted order is **enqueued** for the orders worker; a rejection is remembered under the key.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass

from breakwater.common.errors import ApiError
from breakwater.extensions import db
from breakwater.flash import services
from breakwater.flash.gate import EVENTS, Gate, body_hash, idem_key
from breakwater.flash.models import FlashSale
from breakwater.flash.soldout import SoldOutFlags
from breakwater.flash.tasks import enqueue_write
from breakwater.observability import flash_metrics

PHONE_RE = re.compile(r"^\+?[0-9][0-9 -]{5,18}[0-9]$")
#: outcome -> (HTTP status, message); the origin's closed-sale markers answer with the same (flash/markers.py)
REJECTIONS = {
    "sold_out": (409, "The sale is sold out."),
    "limit_reached": (409, "You have bought as many as this sale allows per buyer."),
    "not_started": (403, "The sale has not started yet."),
    "ended": (403, "The sale has ended."),
}


@dataclass(frozen=True)
class Placed:
    """An order placed (or placed before, when ``replayed``): ``pending`` until the orders worker writes it."""

    order_id: str
    status: str = "pending"
    replayed: bool = False


def rejection(code: str, **details: object) -> ApiError:
    status, message = REJECTIONS.get(code, (409, "Rejected."))
    return ApiError(status, code, message, **details)


def quantity(body: dict) -> int:
    value = body.get("quantity", 1)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 100:
        raise ApiError(400, "invalid_quantity", "quantity must be a whole number from 1 to 100.")
    return value


def address(data: object) -> dict:
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_address", "address must be an object with region_code, detail, name and phone.")
    clean = {}
    for field, limit in (("region_code", 12), ("detail", 200), ("name", 64), ("phone", 20)):
        value = data.get(field)
        if not isinstance(value, str) or not value.strip():
            raise ApiError(400, "invalid_address", f"address.{field} is required.", field=f"address.{field}")
        if len(value.strip()) > limit:
            raise ApiError(400, "invalid_address", f"address.{field} is longer than {limit} characters.")
        clean[field] = value.strip()
    if not PHONE_RE.match(clean["phone"]):
        raise ApiError(400, "invalid_address", "address.phone must be a phone number, e.g. 13800138000.")
    services.validate_region(clean["region_code"])
    return clean


def replay(record: str, digest: str) -> Placed:
    """Answer from an existing Idempotency-Key record: the first answer again, or 409/422."""
    kind, _, rest = record.partition(" ")
    if kind == "inflight":
        raise ApiError(409, "request_in_flight", "A request with this Idempotency-Key is still being processed.")
    parts = rest.split(" ")
    if parts[0] != digest:
        raise ApiError(
            422, "idempotency_key_reused", "This Idempotency-Key was used with a different request body; use a new key."
        )
    if kind == "accepted":
        return Placed(parts[1], replayed=True)
    status, code = int(parts[1]), parts[2]
    raise ApiError(status, code, REJECTIONS.get(code, (status, "Rejected."))[1], replayed=True)


def through_gate(gate: Gate, flags: SoldOutFlags, sale_id: int, uid: int, key: str, body: dict) -> Placed:
    """Steps 1 to 5 above. Raises ApiError for every refusal, redis.RedisError when the gate is unreachable
    (nothing was accepted then)."""
    digest = body_hash(body)
    at_limit = flags.limit_reached(sale_id, uid)
    if at_limit or flags.is_sold_out(sale_id):
        record = gate.client.get(idem_key(sale_id, uid, key))
        if record is not None:
            return replay(record.decode(), digest)
        raise rejection("limit_reached" if at_limit else "sold_out")  # the gate's order: the limit first
    payload = {
        "order_id": f"{sale_id:08x}{uuid.uuid4().hex[:24]}", "sale_id": sale_id, "user_id": uid,
        "quantity": quantity(body), "idempotency_key": key, "address": address(body.get("address")),
        "accepted_ms": int(time.time() * 1000),
    }  # fmt: skip
    existing = gate.claim(sale_id, uid, key, digest)
    if existing is not None:
        return replay(existing, digest)
    try:
        decision = gate.accept(sale_id, uid, key, digest, payload["accepted_ms"], payload)
        if decision.outcome == "no_sale":
            _reload(gate, sale_id, uid, key)
            decision = gate.accept(sale_id, uid, key, digest, payload["accepted_ms"], payload)
    except ApiError:
        raise
    except Exception:
        gate.release(sale_id, uid, key)
        raise
    flash_metrics.GATE_DECISIONS.labels(decision.outcome).inc()
    if decision.buyer_at_limit:
        flags.mark_limit(sale_id, uid)
    if decision.outcome == "accepted":
        enqueue_write({**payload, "slot": decision.slot})
        return Placed(payload["order_id"])
    if decision.outcome == "idem":
        return replay(decision.record, digest)
    if decision.outcome == "sold_out":
        # This process's flag had expired (or never came): tell every process again, not only this one.
        flags.mark(sale_id)
        gate.client.publish(EVENTS, f"soldout {sale_id}")
    error = rejection(decision.outcome)
    gate.remember_rejection(sale_id, uid, key, digest, error.status, decision.outcome)
    raise error


def _reload(gate: Gate, sale_id: int, uid: int, key: str) -> None:
    """The gate lost the sale (or never had it): load it from the primary, or 404 when there is none."""
    with db.primary():
        sale = db.session.get(FlashSale, sale_id)
        if sale is None:
            gate.release(sale_id, uid, key)
            raise ApiError(404, "sale_not_found", f"There is no flash sale {sale_id}.")
        services.load_gate(sale)
