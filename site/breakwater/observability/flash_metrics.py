"""Prometheus metrics of the flash sale: what the Redis gate accepts against what the orders queue writes.

During a sale the two rates should meet; a gap that stays open is the orders queue falling behind (the
dashboard's flash panel, /ops/)."""

from prometheus_client import Counter

GATE_DECISIONS = Counter(
    "breakwater_flash_gate_decisions_total",
    "Purchase attempts the Redis gate decided, by outcome (accepted, sold_out, limit_reached, not_started, ended, "
    "idem, no_sale)",
    ["outcome"],
)
ORDERS_WRITTEN = Counter(
    "breakwater_flash_orders_written_total",
    "Accepted purchases the orders queue wrote to the database, by status (confirmed, failed)",
    ["status"],
)

# Every process exports these series from zero: rate() cannot count a counter's first value, so without them the
# first burst of a sale (all of it, for a small one) would never show as accepted or written.
GATE_DECISIONS.labels("accepted")
for _status in ("confirmed", "failed"):
    ORDERS_WRITTEN.labels(_status)
