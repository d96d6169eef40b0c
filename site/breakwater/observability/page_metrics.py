"""Prometheus metrics of the static-page builds."""

from prometheus_client import Counter, Histogram

BUILDS = Counter("breakwater_pages_builds_total", "Static page builds", ["kind"])
BUILD_SECONDS = Histogram("breakwater_pages_build_seconds", "Duration of incremental builds")
WRITTEN = Counter("breakwater_pages_written_total", "Static files written (changed bytes only)")
COALESCED = Counter("breakwater_pages_coalesced_total", "Commits folded into an already scheduled rebuild")
LOST_TRIGGERS = Counter("breakwater_pages_lost_triggers_total", "Rebuilds that could not be queued at all")
PURGE_GAVE_UP = Counter("breakwater_pages_purge_failures_total", "Purges that failed after every retry")
