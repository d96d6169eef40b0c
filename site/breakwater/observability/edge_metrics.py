"""Prometheus metrics of edge / CDN purges."""

from prometheus_client import Counter

PURGES = Counter(
    "breakwater_edge_purge_total",
    "Purge requests sent to edge/CDN endpoints, by result: ok, forbidden (not in the purge ACL), error",
    ["result"],
)
PURGE_FAILURES = Counter(
    "breakwater_edge_purge_failures_total",
    "Purge calls in which an endpoint failed (the caller retries; every failure is counted and logged)",
    ["endpoint"],
)
