"""Prometheus metrics of the database router and the replication monitor."""

from prometheus_client import Counter, Gauge, Histogram

STATEMENTS = Counter(
    "breakwater_db_statements_total",
    "Statements routed, by node and by the reason for choosing it",
    ["node", "reason"],
)
CAUSAL_WAIT = Histogram(
    "breakwater_db_causal_wait_seconds",
    "Time spent in MASTER_GTID_WAIT before a causal read",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0),
)
LAG_SECONDS = Gauge(
    "breakwater_db_replica_lag_seconds", "Seconds_Behind_Master per replica", ["node"], multiprocess_mode="max"
)
LAG_TRANSACTIONS = Gauge(
    "breakwater_db_replica_lag_transactions",
    "Transactions the replica has not applied yet",
    ["node"],
    multiprocess_mode="max",
)
IN_ROTATION = Gauge(
    "breakwater_db_replica_in_rotation", "1 when the replica serves reads", ["node"], multiprocess_mode="min"
)

PRIMARY_SWITCHES = Counter(
    "breakwater_db_primary_switches_total", "Times this process adopted a promoted primary", ["new_primary"]
)
AUTO_PROMOTIONS = Counter(
    "breakwater_db_auto_promotions_total",
    "Replicas promoted by `breakwater db watch` after BREAKWATER_DB_FAILOVER_AFTER seconds without a primary",
    ["new_primary"],
)
SEMISYNC_ACTIVE = Gauge(
    "breakwater_db_semisync_active",
    "1 while the primary waits for a replica's acknowledgement (semi-synchronous), 0 when it fell back to async",
    multiprocess_mode="min",
)


def record_switch(_old: str, new: str) -> None:
    PRIMARY_SWITCHES.labels(new).inc()


def record_monitor(monitor) -> None:
    if monitor.semisync is not None:
        SEMISYNC_ACTIVE.set(1 if monitor.semisync else 0)
    for node in monitor.replicas:
        LAG_SECONDS.labels(node.name).set(node.lag_seconds if node.lag_seconds is not None else float("nan"))
        LAG_TRANSACTIONS.labels(node.name).set(
            node.lag_transactions if node.lag_transactions is not None else float("nan")
        )
        IN_ROTATION.labels(node.name).set(1 if node.in_rotation else 0)
