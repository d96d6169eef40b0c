"""Prometheus metrics of the database router and the replication monitor.

The monitor's gauges are labelled by node, so only a process whose monitor checked that node has a sample (an
unlabelled multi-process gauge has a 0 in every process that merely imports it), and their modes are the
``live`` ones, so the view of a process that exited stops counting (observability/metrics.py forgets dead
processes' files). Whether the primary waits for a replica's acknowledgement (semi-sync) is not the app's to
report: the mysqld exporter's ``mysql_global_status_rpl_semi_sync_master_status`` on the writable node says it
(the rule SemiSyncFellBackToAsync); the monitor only logs the fallback.
"""

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
    "breakwater_db_replica_lag_seconds", "Seconds_Behind_Master per replica", ["node"], multiprocess_mode="livemax"
)
LAG_TRANSACTIONS = Gauge(
    "breakwater_db_replica_lag_transactions",
    "Transactions the replica has not applied yet",
    ["node"],
    multiprocess_mode="livemax",
)
IN_ROTATION = Gauge(
    "breakwater_db_replica_in_rotation", "1 when the replica serves reads", ["node"], multiprocess_mode="livemin"
)

PRIMARY_SWITCHES = Counter(
    "breakwater_db_primary_switches_total", "Times this process adopted a promoted primary", ["new_primary"]
)
AUTO_PROMOTIONS = Counter(
    "breakwater_db_auto_promotions_total",
    "Replicas promoted by `breakwater db watch` after BREAKWATER_DB_FAILOVER_AFTER seconds without a primary",
    ["new_primary"],
)


def record_switch(_old: str, new: str) -> None:
    PRIMARY_SWITCHES.labels(new).inc()


_replicas_seen: set[str] = set()


def record_monitor(monitor) -> None:
    for node in monitor.replicas:
        _replicas_seen.add(node.name)
        LAG_SECONDS.labels(node.name).set(node.lag_seconds if node.lag_seconds is not None else float("nan"))
        LAG_TRANSACTIONS.labels(node.name).set(
            node.lag_transactions if node.lag_transactions is not None else float("nan")
        )
        IN_ROTATION.labels(node.name).set(1 if node.in_rotation else 0)
    # A replica promoted since: it is no replica any more, and a series cannot leave a multi-process file, so its
    # last view (out of rotation: it was writable, not replicating) would say "out" for as long as this process
    # lives. It says what a primary is: nothing behind, nothing to take out of rotation.
    if monitor.primary_name in _replicas_seen:
        LAG_SECONDS.labels(monitor.primary_name).set(0)
        LAG_TRANSACTIONS.labels(monitor.primary_name).set(0)
        IN_ROTATION.labels(monitor.primary_name).set(1)
