"""Prometheus metrics of /healthz."""

from prometheus_client import Counter

HEALTH_CHECKS = Counter(
    "breakwater_health_checks_total",
    "Rounds of /healthz checks run (every database node, both Redis servers, the workers, the edge): at most one "
    "per second per process; the callers in between share the last round's answer",
)
