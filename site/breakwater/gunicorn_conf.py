"""gunicorn hooks (``-c python:breakwater.gunicorn_conf``): tidy Prometheus multi-process files."""

from __future__ import annotations

import os

#: Idle keep-alive seconds, longer than Nginx's upstream keepalive_timeout (5 s, nginx/origin.conf.j2):
#: the side that closes idle connections first must be Nginx, or a reused connection races the close.
keepalive = 15


def child_exit(server, worker) -> None:
    """A dead worker's live gauges must stop counting (prometheus-client multi-process mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
