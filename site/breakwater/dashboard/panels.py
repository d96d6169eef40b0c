"""The dashboard's fixed panels: a name, a title, and the PromQL of each line. The browser only ever names a
panel (``/ops/api/panels/<name>``); the queries are these and nothing else.

Metric names are the ones the stack's scrape targets export (breakwater_tools/stack/monitoring.py):

* the app's own (``breakwater_*``, observability/): every gunicorn process and Celery worker of one machine
  writes into one multiprocess folder, so each gunicorn instance of that machine reports the machine's totals.
  Rates therefore take the largest instance's sum (``max(sum by (instance) ...)``) rather than adding the
  instances up; ratios and quantiles do not care;
* Varnish's exporter (``varnish_main_*``), Nginx's (``nginx_*``, stub_status), mysqld's per node
  (``mysql_slave_status_*``), RabbitMQ's rabbitmq_prometheus per queue (``rabbitmq_queue_*``).

Not measured, and said so on the panel: the edge's and the origin's latency (varnishstat and stub_status
count requests but time none) and the origin microcache's hit ratio (stub_status has no cache counters;
each response's ``X-Origin-Cache`` header says HIT or MISS).

``{w}`` in an expression is the rate window, chosen per request from the step (:func:`rate_window`).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Prometheus's scrape interval in the stack (monitoring.py), seconds
SCRAPE_SECONDS = 5
#: stands for the rate window in an expression
W = "{w}"


@dataclass(frozen=True)
class Line:
    """One query; each series it returns is a line, named ``label`` or by the value of ``label_from``. A line with
    a fixed ``label`` is drawn (empty) even before its series exists."""

    expr: str
    label: str = ""
    label_from: str = ""


@dataclass(frozen=True)
class Panel:
    name: str
    title: str
    unit: str  # "req/s", "s", "ratio", "messages", "/s"
    lines: tuple[Line, ...]
    note: str = ""


def _app_rate(selector: str) -> str:
    return f"max(sum by (instance) (rate({selector}[{W}])))"


_LOOKUPS = 'breakwater_cache_events_total{result=~"hit|stale|miss"}'
_LOCAL_HITS = "(sum(rate(breakwater_cache_local_hits_total[{w}])) or vector(0))"
_LOOKUP_RATE = f"sum(rate({_LOOKUPS}[{W}]))"

PANELS: tuple[Panel, ...] = (
    Panel(
        "requests",
        "Requests per second per tier",
        "req/s",
        (
            Line("sum(rate(varnish_main_client_req[{w}]))", "edge (Varnish)"),
            Line("sum(rate(nginx_http_requests_total[{w}]))", "origin (Nginx)"),
            Line(_app_rate("breakwater_http_requests_total"), "app (gunicorn)"),
        ),
        "The origin counts every request it serves, the edge's fetches and health probes included.",
    ),
    Panel(
        "latency",
        "p99 latency per tier",
        "s",
        (
            Line(
                "histogram_quantile(0.99, sum by (le) (rate(breakwater_http_request_duration_seconds_bucket[{w}])))",
                "app p99",
            ),
            Line(
                "histogram_quantile(0.5, sum by (le) (rate(breakwater_http_request_duration_seconds_bucket[{w}])))",
                "app p50",
            ),
        ),
        "Edge and origin p99: not measured (varnishstat and Nginx's stub_status count requests but time none). "
        "The app's budget is 0.5 s (alert P99OverBudget).",
    ),
    Panel(
        "hit_ratio",
        "Hit ratio per cache layer",
        "ratio",
        (
            Line(
                "sum(rate(varnish_main_cache_hit[{w}])) / "
                "(sum(rate(varnish_main_cache_hit[{w}])) + sum(rate(varnish_main_cache_miss[{w}])))",
                "edge (Varnish)",
            ),
            Line(
                f'(sum(rate(breakwater_cache_events_total{{result=~"hit|stale"}}[{W}])) - {_LOCAL_HITS}) / '
                f"({_LOOKUP_RATE} - {_LOCAL_HITS})",
                "app Redis tier",
            ),
            Line(
                f"{_LOCAL_HITS} / {_LOOKUP_RATE}",
                "app local tier",
            ),
        ),
        "Origin microcache: not measured (stub_status has no cache counters; see each response's X-Origin-Cache). "
        "Local tier: lookups answered in the process; Redis tier: the rest that Redis answered.",
    ),
    Panel(
        "replica_lag",
        "Replica lag per node",
        "s",
        (Line("max by (instance) (mysql_slave_status_seconds_behind_master)", label_from="instance"),),
        "Seconds_Behind_Master as each replica's exporter reads it; the app takes a replica out of rotation past "
        "DB_MAX_LAG.",
    ),
    Panel(
        "queues",
        "Queue depth per queue",
        "messages",
        (
            Line(
                'sum by (queue) (rabbitmq_queue_messages_ready{queue!~"celery.*|.*pidbox.*"})',
                label_from="queue",
            ),
        ),
        "Messages ready in RabbitMQ, waiting for a worker (alert QueueBacklog past 100 for a minute).",
    ),
    Panel(
        "flash",
        "Flash sale: accepted at the gate vs orders written",
        "/s",
        (
            Line(_app_rate('breakwater_flash_gate_decisions_total{outcome="accepted"}'), "accepted at the gate"),
            Line(_app_rate("breakwater_flash_orders_written_total"), "orders written"),
        ),
        "During a sale the two lines should meet: the orders queue writes what the gate accepted (failed "
        "orders count as written). A gap that stays open is a backlog; see the orders queue.",
    ),
)

BY_NAME = {p.name: p for p in PANELS}


def rate_window(step: float) -> str:
    """The rate window for a step: at least four scrapes, and never shorter than two steps (no gaps)."""
    return f"{int(max(4 * SCRAPE_SECONDS, 2 * step, 30))}s"


def expression(line: Line, step: float) -> str:
    return line.expr.replace(W, rate_window(step))
