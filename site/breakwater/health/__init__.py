"""/healthz (every dependency, JSON) and /metrics (Prometheus)."""
