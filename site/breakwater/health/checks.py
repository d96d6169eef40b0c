"""Probe every dependency with short timeouts, concurrently, so /healthz never hangs; at most once a second per
process, so a flood of /healthz costs nothing (:func:`cached_health_report`)."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from concurrent.futures import Future, ThreadPoolExecutor

from flask import current_app
from sqlalchemy import text

from breakwater import extensions
from breakwater.common.gtid import transactions_behind
from breakwater.database.engine import NodeEngines
from breakwater.extensions import db
from breakwater.observability.health_metrics import HEALTH_CHECKS

_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="healthz")
#: seconds a round of checks answers every /healthz of this process
REPORT_TTL = 1.0
_lock = threading.Lock()
_last: tuple[float, dict, bool] | None = None  # (monotonic time it finished, report, can_serve)
_running: Future | None = None  # the round in flight, which callers meanwhile wait for


def check_node(node: NodeEngines) -> dict:
    result: dict = {"name": node.name, "role": node.role, "address": f"{node.host}:{node.port}", "up": False}
    try:
        with node.monitor.connect() as conn:
            row = conn.execute(text("SELECT @@server_id, @@read_only, @@gtid_binlog_pos, @@gtid_slave_pos")).one()
            result.update(
                up=True, server_id=row[0], read_only=bool(row[1]), gtid_binlog_pos=row[2], gtid_slave_pos=row[3]
            )
            if node.role == "replica":
                status = conn.execute(text("SHOW SLAVE STATUS")).mappings().first()
                if status is None:
                    result.update(io_running=False, sql_running=False, lag_seconds=None, replicating=False)
                else:
                    io = status["Slave_IO_Running"] == "Yes"
                    sql = status["Slave_SQL_Running"] == "Yes"
                    lag = status["Seconds_Behind_Master"]
                    result.update(
                        io_running=io,
                        sql_running=sql,
                        lag_seconds=lag,
                        replicating=io and sql and lag is not None,
                        last_error=status["Last_IO_Error"] or status["Last_SQL_Error"] or None,
                    )
    except Exception as exc:  # any failure means "down" with the reason shown
        result["error"] = str(getattr(exc, "orig", exc))[:200]
    return result


def check_redis(extension: str = "breakwater.redis") -> dict:
    client = current_app.extensions[extension]
    started = time.perf_counter()
    try:
        client.ping()
        return {"up": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}
    except Exception as exc:
        return {"up": False, "error": str(exc)[:200]}


def check_worker() -> dict:
    celery = current_app.extensions["celery"]
    try:
        replies = celery.control.ping(timeout=1.0, limit=1)
    except Exception as exc:
        return {"up": False, "error": str(exc)[:200]}
    names = sorted(name for reply in replies for name in reply)
    return {"up": bool(names), "workers": names} if names else {"up": False, "error": "no worker answered within 1 s"}


def check_edge() -> dict:
    """The Varnish edge answers its own /_edge/health (it never asks the origin, so no loop through /healthz).

    The edge is the CDN stand-in, not a dependency of the origin: when it is down /healthz says so and reports
    "degraded", but keeps answering 200 because the origin still serves every request.
    """
    url = extensions.settings().edge_url
    if url is None:
        return {"up": None, "configured": False}
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(f"{url}/_edge/health", timeout=1.0) as resp:
            body = json.load(resp)
    except Exception as exc:
        return {"up": False, "address": url, "error": str(exc)[:200]}
    return {
        "up": True,
        "address": url,
        "origin": body.get("origin"),  # the edge's probe of the origin: healthy or sick
        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
    }


def health_report() -> tuple[dict, bool]:
    """Returns (report, can_serve)."""
    app = current_app._get_current_object()

    def in_app(fn, *args):
        with app.app_context():
            return fn(*args)

    ordered = sorted(db.nodes, key=lambda n: n.name != db.primary_name)  # the primary (maybe promoted) first
    node_futures = [_pool.submit(check_node, node) for node in ordered]
    redis_future = _pool.submit(in_app, check_redis)
    cache_future = _pool.submit(in_app, check_redis, "breakwater.redis_cache")
    worker_future = _pool.submit(in_app, check_worker)
    edge_future = _pool.submit(in_app, check_edge)
    nodes = [f.result() for f in node_futures]
    primary = nodes[0]
    for node in nodes[1:]:
        if node["up"] and primary["up"]:
            node["lag_transactions"] = transactions_behind(primary["gtid_binlog_pos"], node["gtid_slave_pos"])
    monitor = db.monitor
    monitor.ensure_running()
    for node in nodes:
        view = monitor.node(node["name"])
        if view is not None:
            node["router"] = view.to_json() if node["role"] == "replica" else {"reason": view.reason}
    report = {
        "database": nodes,
        "redis": redis_future.result(),
        "redis_cache": cache_future.result(),
        "worker": worker_future.result(),
        "edge": edge_future.result(),
    }

    problems = [f"{n['name']} is down" for n in nodes if not n["up"]]
    problems += [f"{n['name']} is not replicating" for n in nodes[1:] if n["up"] and not n.get("replicating")]
    problems += [f"{name} is down" for name in ("redis", "redis_cache", "worker") if not report[name]["up"]]
    if report["edge"]["up"] is False:
        problems.append("edge is down")
    problems += [
        f"{n.name} is out of rotation ({n.reason})"
        for n in monitor.replicas
        if not n.in_rotation and all(p.split(" ")[0] != n.name for p in problems)
    ]
    # Reads survive on replicas while the primary is away; writes then answer 503.
    can_serve = primary["up"] or bool(monitor.in_rotation())
    report["status"] = "ok" if not problems else ("degraded" if can_serve else "down")
    report["problems"] = problems
    return report, can_serve


def cached_health_report() -> tuple[dict, bool]:
    """:func:`health_report`, run at most once per REPORT_TTL in this process: callers within a second of the
    last round get its answer, and callers while a round runs wait for that round instead of starting another.
    The report is shared: do not change it."""
    global _last, _running
    with _lock:
        if _last is not None and time.monotonic() - _last[0] < REPORT_TTL:
            return _last[1], _last[2]
        running = _running
        if running is None:
            _running = mine = Future()
    if running is not None:
        return running.result(timeout=30)
    try:
        HEALTH_CHECKS.inc()
        result = health_report()
    except BaseException as exc:
        with _lock:
            _running = None
        mine.set_exception(exc)
        raise
    with _lock:
        _last = (time.monotonic(), *result)
        _running = None
    mine.set_result(result)
    return result
