"""The Redis gate: one Lua script decides every purchase attempt, atomically.

Keys live on the broker Redis (``noeviction``, append-only: the cache Redis may evict, this one must
not) and every key a script touches comes in through KEYS, all sharing the sale's hash tag
``{flash:<id>}``, so the scripts run unchanged on Redis Cluster:

* ``window``  ``"<start ms> <end ms> <limit>"`` (a missing window means "not loaded": the app loads it
  from the database, :func:`ensure_loaded`);
* ``stock``   units the gate may still accept;
* ``u:<uid>`` units this buyer has claimed;
* ``idem:<uid>:<sha256(key)>`` the Idempotency-Key record: ``inflight <body hash>`` while the first
  request runs, then ``accepted <body hash> <order id> <slot>`` or ``rejected <body hash> <status> <code>``;
* ``accepted`` hash: order id -> the accepted request, everything needed to write the order. An entry
  leaves only when the order is in the database (or failed and its unit was returned), so a web
  process dying right after acceptance loses nothing: the reconciler enqueues what is left.

The database has the last word: the order writer's conditional UPDATE never takes stock below zero,
whatever Redis says (after a Redis restart without its data, say).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

import redis

_ACCEPT = """
local w = redis.call('GET', KEYS[1])
if not w then return {'no_sale'} end
local s, e, limit = string.match(w, '^(%d+) (%d+) (%d+)$')
local idem = redis.call('GET', KEYS[4])
if idem ~= 'inflight ' .. ARGV[5] then return {'idem', idem or ''} end
local now = tonumber(ARGV[1])
if now < tonumber(s) then return {'not_started'} end
if now >= tonumber(e) then return {'ended'} end
local qty = tonumber(ARGV[2])
local used = tonumber(redis.call('GET', KEYS[3]) or '0')
if used + qty > tonumber(limit) then return {'limit_reached', tostring(used), limit} end
local stock = tonumber(redis.call('GET', KEYS[2]) or '0')
if stock < qty then return {'sold_out', tostring(stock)} end
local left = redis.call('DECRBY', KEYS[2], qty)
redis.call('INCRBY', KEYS[3], qty)
local slot = used + 1
redis.call('SET', KEYS[4], 'accepted ' .. ARGV[5] .. ' ' .. ARGV[3] .. ' ' .. slot, 'EX', ARGV[6])
local payload = cjson.decode(ARGV[4])
payload['slot'] = slot
redis.call('HSET', KEYS[5], ARGV[3], cjson.encode(payload))
return {'accepted', tostring(left), tostring(slot), tostring(used + qty), limit}
"""

# KEYS: accepted, stock, user. ARGV: order id, quantity, give back (1: the unit returns to the gate).
_SETTLE = """
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
if ARGV[3] == '1' then
  redis.call('INCRBY', KEYS[2], ARGV[2])
  local left = redis.call('DECRBY', KEYS[3], ARGV[2])
  if left <= 0 then redis.call('DEL', KEYS[3]) end
end
return 1
"""

# KEYS: window, stock. ARGV: window value, stock if missing.
_LOAD = """
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2], 'NX')
return 1
"""

EVENTS = "bw:flash:events"  # pub/sub: "soldout <id>" / "restock <id>" / "unlimit <id> [<user id>]"
IDEM_TTL = 24 * 3600


def _tag(sale_id: int) -> str:
    return f"bw:{{flash:{sale_id}}}"


def window_key(sale_id: int) -> str:
    return _tag(sale_id) + ":window"


def stock_key(sale_id: int) -> str:
    return _tag(sale_id) + ":stock"


def user_key(sale_id: int, user_id: int) -> str:
    return _tag(sale_id) + f":u:{user_id}"


def idem_key(sale_id: int, user_id: int, key: str) -> str:
    return _tag(sale_id) + f":idem:{user_id}:{hashlib.sha256(key.encode()).hexdigest()[:32]}"


def accepted_key(sale_id: int) -> str:
    return _tag(sale_id) + ":accepted"


def body_hash(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:32]


@dataclass
class Snapshot:
    """The gate's view of one sale at one instant: loaded (a window), the stock, the accepted requests not written
    yet (order id -> request) and the units each buyer read has claimed."""

    loaded: bool
    stock: int | None
    pending: dict[str, dict]
    claims: dict[int, int]


@dataclass
class Decision:
    outcome: str  # accepted | sold_out | not_started | ended | limit_reached | no_sale | idem
    left: int | None = None
    slot: int | None = None
    record: str = ""  # the idempotency record when outcome == "idem"
    used: int | None = None  # the buyer's units after this decision (accepted, limit_reached)
    limit: int | None = None

    @property
    def buyer_at_limit(self) -> bool:
        """No quantity can pass for this buyer any more (until a unit of theirs comes back)."""
        return self.used is not None and self.limit is not None and self.used >= self.limit


class Gate:
    def __init__(self, client: redis.Redis):
        self.client = client
        self._accept = client.register_script(_ACCEPT)
        self._settle = client.register_script(_SETTLE)
        self._load = client.register_script(_LOAD)

    # ------------------------------------------------------------------ loading
    def load(self, sale_id: int, starts_ms: int, ends_ms: int, limit: int, stock_if_missing: int) -> None:
        self._load(
            keys=[window_key(sale_id), stock_key(sale_id)],
            args=[f"{starts_ms} {ends_ms} {limit}", stock_if_missing],
        )
        self.client.publish(EVENTS, f"unlimit {sale_id}")  # the limit may have changed: forget who reached it

    def add_stock(self, sale_id: int, delta: int) -> None:
        if delta:
            self.client.incrby(stock_key(sale_id), delta)
            if delta > 0:
                self.client.publish(EVENTS, f"restock {sale_id}")

    def stock_left(self, sale_id: int) -> int | None:
        value = self.client.get(stock_key(sale_id))
        return None if value is None else max(0, int(value))

    # ------------------------------------------------------------------ buying
    def claim(self, sale_id: int, user_id: int, key: str, digest: str) -> str | None:
        """Mark the Idempotency-Key in flight; None when it was free, else its existing record."""
        k = idem_key(sale_id, user_id, key)
        if self.client.set(k, f"inflight {digest}", nx=True, ex=60):
            return None
        return (self.client.get(k) or b"inflight ?").decode()

    def accept(self, sale_id: int, user_id: int, key: str, digest: str, now_ms: int, payload: dict) -> Decision:
        out = self._accept(
            keys=[window_key(sale_id), stock_key(sale_id), user_key(sale_id, user_id),
                  idem_key(sale_id, user_id, key), accepted_key(sale_id)],
            args=[now_ms, payload["quantity"], payload["order_id"], json.dumps(payload), digest, IDEM_TTL],
        )  # fmt: skip
        outcome = out[0].decode() if isinstance(out[0], bytes) else out[0]
        rest = [x.decode() if isinstance(x, bytes) else x for x in out[1:]]
        if outcome == "accepted":
            left = int(rest[0])
            if left <= 0:
                self.client.publish(EVENTS, f"soldout {sale_id}")
            return Decision("accepted", left=left, slot=int(rest[1]), used=int(rest[2]), limit=int(rest[3]))
        if outcome == "limit_reached":
            return Decision("limit_reached", used=int(rest[0]), limit=int(rest[1]))
        if outcome == "sold_out":
            return Decision("sold_out", left=int(rest[0]))
        if outcome == "idem":
            return Decision("idem", record=rest[0])
        return Decision(outcome)

    def remember_rejection(self, sale_id: int, user_id: int, key: str, digest: str, status: int, code: str) -> None:
        self.client.set(idem_key(sale_id, user_id, key), f"rejected {digest} {status} {code}", ex=IDEM_TTL)

    def release(self, sale_id: int, user_id: int, key: str) -> None:
        """Free an in-flight key whose request ended before the gate (a rate limit, an error)."""
        k = idem_key(sale_id, user_id, key)
        value = self.client.get(k)
        if value is not None and value.startswith(b"inflight "):
            self.client.delete(k)

    # ------------------------------------------------------------------ settling
    def settle(self, sale_id: int, user_id: int, order_id: str, quantity: int, give_back: bool) -> bool:
        """The order is in the database (or failed): drop the accepted entry, once; a failed order's
        unit and the buyer's claim go back to the gate. Idempotent: only the first call acts."""
        done = bool(
            self._settle(
                keys=[accepted_key(sale_id), stock_key(sale_id), user_key(sale_id, user_id)],
                args=[order_id, quantity, "1" if give_back else "0"],
            )
        )
        if done and give_back:
            self.client.publish(EVENTS, f"restock {sale_id}")
            self.client.publish(EVENTS, f"unlimit {sale_id} {user_id}")
        return done

    def pending(self, sale_id: int) -> dict[str, dict]:
        return {k.decode(): json.loads(v) for k, v in self.client.hgetall(accepted_key(sale_id)).items()}

    def snapshot(self, sale_id: int, buyers: Iterable[int] = ()) -> Snapshot:
        """Stock, pending requests and buyers' counts at one instant, for the drift check (flash.orders.measure_drift):
        one MULTI/EXEC, so nothing runs between its reads and a purchase accepted meanwhile cannot look like drift.
        Reads only, and runs no script (the purchase path's scripts stay the only ones counted). The counts read are
        those of ``buyers`` and of the buyers pending a moment before; a buyer whose first request was accepted
        in between is left out (``claims`` has no entry for them)."""
        users = {int(b) for b in buyers}
        users |= {json.loads(v)["user_id"] for v in self.client.hvals(accepted_key(sale_id))}
        order = sorted(users)
        pipe = self.client.pipeline(transaction=True)
        pipe.get(window_key(sale_id))
        pipe.get(stock_key(sale_id))
        pipe.hgetall(accepted_key(sale_id))
        if order:
            pipe.mget([user_key(sale_id, u) for u in order])
        window, stock, pending, *counts = pipe.execute()
        return Snapshot(
            loaded=window is not None,
            stock=None if stock is None else int(stock),
            pending={k.decode(): json.loads(v) for k, v in pending.items()},
            claims={u: int(c or 0) for u, c in zip(order, counts[0] if counts else [], strict=True)},
        )
