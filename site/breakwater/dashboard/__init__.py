"""The operator's dashboard at /ops/: live charts of every tier from Prometheus, the firing alerts on top.

views.py (who may see it, the page and its JSON API), panels.py (the fixed PromQL of each chart),
prometheus.py (a small client of Prometheus's HTTP API with short timeouts)."""
