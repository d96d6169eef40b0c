"""Benchmark-only routes for `make bench-workers` (BREAKWATER_BENCH_ROUTES=1): the same work under gunicorn's
sync, gthread and gevent workers.

* ``/replica``  - the homepage data read from a replica on every request (no cache): MariaDB I/O plus the
  Python that turns rows into JSON.
* ``/upstream?port=N`` - one HTTP GET to a slow server on 127.0.0.1:N (the runner's, which answers after
  50 ms): nothing but waiting.
* ``/markdown`` - the article renderer on a long document: nothing but CPU.
* ``/probe`` - ``SELECT SLEEP(0.05)`` through the router (a replica) and a PING to both Redis servers, and how
  this process serves requests and whether its background threads run (the replication monitor, the cache's
  invalidation tracker, the sold-out listener): what tests/test_worker_classes.py checks.

Every response carries ``X-Bench-Model`` (``process``, ``thread`` or ``gevent``), decided by what the serving
process really is (is the socket module patched by gevent? is this a worker thread?), not by a setting, so a
benchmark run under the wrong worker class fails its own requests.
"""

from __future__ import annotations

import http.client
import os
import sys
import threading

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import text

from breakwater import extensions
from breakwater.cache.http import dumps
from breakwater.content.rendering import render_markdown
from breakwater.extensions import db
from breakwater.home.services import home_data
from breakwater.web.errors import error_response

bp = Blueprint("bench_workers", __name__, url_prefix="/_bench/workers")

_lock = threading.Lock()
_inflight = 0
_max_inflight = 0


def model() -> str:
    """The concurrency model serving this request, from the process itself."""
    if "gevent.monkey" in sys.modules and sys.modules["gevent.monkey"].is_module_patched("socket"):
        return "gevent"
    return "thread" if threading.current_thread() is not threading.main_thread() else "process"


def _native_thread_id() -> int:
    """The OS thread running this request (gevent's patched threading reports greenlets, not OS threads)."""
    if "gevent.monkey" in sys.modules:
        return sys.modules["gevent.monkey"].get_original("threading", "get_native_id")()
    return threading.get_native_id()


def _document(sections: int = 12) -> str:
    """A long article in the Markdown editors write: headings, paragraphs, lists, a table, code, quotes."""
    parts = []
    for i in range(1, sections + 1):
        parts += [
            f"## Section {i}: what the flood wall holds",
            "",
            f"The harbour's **breakwater** took the storm of year {1900 + i} without a *single* breach; "
            "[the survey](https://example.org/survey) lists every block, and `inspection-notes.txt` the cracks. "
            "Waves reach the wall at an angle, so the load spreads along it rather than onto one block.",
            "",
            "- granite blocks, each about 20 tonnes",
            "- a concrete crown with a parapet",
            "  1. poured in sections",
            "  2. joined with steel",
            "",
            "| year | storms | repairs |",
            "|---|---:|:---|",
            *(f"| {1900 + i + k} | {k * 3 + i % 5} | {'none' if k % 2 else 'crown joints'} |" for k in range(6)),
            "",
            "> A wall is only as good as its weakest joint.",
            "",
            "```python",
            f"def load(height_m: float, angle: float = {i}.0) -> float:",
            "    return 0.5 * 1025 * 9.81 * height_m ** 2",
            "```",
            "",
        ]
    return "\n".join(parts)


DOCUMENT = _document()


@bp.after_request
def _tag(response):
    response.headers["X-Bench-Model"] = model()
    return response


@bp.get("/replica")
def replica():
    return current_app.response_class(dumps(home_data(db.session)), mimetype="application/json")


@bp.get("/upstream")
def upstream():
    port = request.args.get("port", "")
    if not port.isdigit() or not 0 < int(port) < 65536:
        return error_response(400, "bad_port", "Give the slow upstream's port as ?port=N (1-65535).")
    conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
    try:
        conn.request("GET", "/")
        body = conn.getresponse().read()
    finally:
        conn.close()
    return jsonify({"upstream_bytes": len(body)})


@bp.get("/markdown")
def markdown_render():
    html = render_markdown(DOCUMENT)
    return jsonify({"markdown_bytes": len(DOCUMENT), "html_bytes": len(html)})


@bp.get("/probe")
def probe():
    global _inflight, _max_inflight
    with _lock:
        _inflight += 1
        _max_inflight = max(_max_inflight, _inflight)
    try:
        slept = db.session.execute(text("SELECT SLEEP(0.05)")).scalar_one()
        pings = [bool(current_app.extensions[k].ping()) for k in ("breakwater.redis", "breakwater.redis_cache")]
        # The per-process background threads (greenlets under gevent): the replication monitor started with the
        # read above; the cache's invalidation tracker and the sold-out listener start on first use.
        cache = extensions.cache()
        if cache.local is not None:
            cache.local.ensure_running()
        extensions.soldout_flags().is_sold_out(0)
    finally:
        with _lock:
            _inflight -= 1
    return jsonify(
        {
            "model": model(),
            "pid": os.getpid(),
            "native_thread_id": _native_thread_id(),
            "thread_name": threading.current_thread().name,
            "socket_patched": model() == "gevent",
            "max_inflight": _max_inflight,
            "mariadb_sleep": slept,
            "redis_ping": pings,
            "server_software": request.environ.get("SERVER_SOFTWARE", ""),
            "background": sorted({t.name for t in threading.enumerate()}),
            "cache_tracking": bool(cache.local is not None and cache.local.healthy),
        }
    )
