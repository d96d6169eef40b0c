"""Prometheus metrics of the Redis cache."""

from prometheus_client import Counter

EVENTS = Counter(
    "breakwater_cache_events_total",
    "Cache lookups by result: hit, miss, stale, bypass (breaker open), error, discarded",
    ["name", "result"],
)
RECOMPUTES = Counter("breakwater_cache_recomputes_total", "Values computed from the database", ["name"])
RENDERS = Counter(
    "breakwater_cache_renders_total", "Pages rendered from a cached value (cache/http.py cached_page)", ["name"]
)
LOCAL_SKIPS = Counter(
    "breakwater_cache_local_skips_total",
    "Lookups that skipped the per-process tier because the request carries a publish it has not processed yet",
)
LOCAL_HITS = Counter(
    "breakwater_cache_local_hits_total",
    "Lookups the per-process tier answered (also counted as hit in breakwater_cache_events_total)",
    ["name"],
)
