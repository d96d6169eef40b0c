"""The app really runs under each gunicorn worker class BREAKWATER_WEB_WORKER_CLASS offers.

One single-process gunicorn per class, started with the stack's own arguments (supervised.worker_class_args),
on the test stack's MariaDB and Redis. Eight requests at once to /_bench/workers/probe (a SELECT SLEEP(0.05)
through the router plus a PING to both Redis servers) show how the process served them: one at a time on one
thread (sync), several at once on several OS threads (gthread), several at once on one OS thread with the socket
module patched (gevent: PyMySQL and redis-py yielded to each other). /healthz (its checks run on a thread pool)
and the cached /api/home must answer too, and the app's background threads (replication monitor, cache
invalidation tracker, sold-out listener) must be running: under gevent they are greenlets.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from breakwater.settings import Settings
from breakwater_tools.stack.errors import StackError
from breakwater_tools.stack.ports import free_ports
from breakwater_tools.stack.supervised import worker_class_args

GUNICORN = str(Path(sys.executable).parent / "gunicorn")
CLASSES = ["sync", "gthread", "gevent"]


def test_worker_class_setting_is_checked():
    assert worker_class_args(Settings({"WEB_WORKER_CLASS": "gevent", "WEB_GEVENT_CONNECTIONS": "50"})) == [
        "--worker-class", "gevent", "--worker-connections", "50",
    ]  # fmt: skip
    assert worker_class_args(Settings({"WEB_WORKER_CLASS": "sync"}))[:2] == ["--worker-class", "sync"]
    with pytest.raises(StackError, match="one of sync, gthread, gevent"):
        worker_class_args(Settings({"WEB_WORKER_CLASS": "eventlet"}))


@pytest.fixture(scope="module")
def gunicorns(stack, tmp_path_factory) -> dict[str, str]:
    """worker class -> base URL of a one-process gunicorn serving the app with the bench routes; the three
    start at once (their start-up is most of this file's time)."""
    logs = tmp_path_factory.mktemp("gunicorn")
    env = stack.settings.child_env()
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update({"BREAKWATER_BENCH_ROUTES": "1", "BREAKWATER_LOG_LEVEL": "WARNING"})
    procs, urls = [], {}
    for worker_class, port in zip(CLASSES, free_ports(len(CLASSES)), strict=True):
        args = worker_class_args(
            Settings({"WEB_WORKER_CLASS": worker_class, "WEB_THREADS": "4", "WEB_GEVENT_CONNECTIONS": "50"})
        )
        log = open(logs / f"{worker_class}.log", "wb")  # noqa: SIM115
        procs.append(subprocess.Popen(
            [GUNICORN, "--bind", f"127.0.0.1:{port}", "--workers", "1", *args, "--no-control-socket",
             "breakwater_tools.bench.wsgi:app"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        ))  # fmt: skip
        urls[worker_class] = f"http://127.0.0.1:{port}"
    try:
        for worker_class, url in urls.items():
            deadline = time.monotonic() + 90
            while True:
                try:
                    if requests.get(f"{url}/healthz", timeout=20).status_code == 200:
                        break
                except requests.RequestException:  # not listening yet, or a first answer slow on a busy machine
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"gunicorn {worker_class} did not answer: {(logs / f'{worker_class}.log').read_text()}")
                time.sleep(0.2)
        yield urls
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(20)


@pytest.mark.parametrize("worker_class", CLASSES)
def test_app_runs_under_worker_class(gunicorns, worker_class):
    url = gunicorns[worker_class]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: requests.get(f"{url}/_bench/workers/probe", timeout=30), range(8)))
    assert all(a.status_code == 200 for a in answers), [a.text[:200] for a in answers]
    probes = [a.json() for a in answers]
    assert all(p["mariadb_sleep"] == 0 and p["redis_ping"] == [True, True] for p in probes), probes
    assert len({p["pid"] for p in probes}) == 1  # one worker process served all eight
    threads = {p["native_thread_id"] for p in probes}
    overlap = max(p["max_inflight"] for p in probes)
    models = {p["model"] for p in probes} | {a.headers["X-Bench-Model"] for a in answers}
    if worker_class == "sync":
        assert models == {"process"} and overlap == 1 and len(threads) == 1, probes
    elif worker_class == "gthread":
        assert models == {"thread"} and overlap > 1 and len(threads) > 1, probes
    else:
        assert models == {"gevent"} and overlap > 1 and len(threads) == 1, probes
        assert all(p["socket_patched"] for p in probes)
    # The process's background threads run (greenlets under gevent) and the cache tracker got Redis's
    # CLIENT TRACKING going (it reports healthy once subscribed).
    deadline, probe = time.monotonic() + 15, probes[0]
    while not probe["cache_tracking"] and time.monotonic() < deadline:
        time.sleep(0.2)
        probe = requests.get(f"{url}/_bench/workers/probe", timeout=30).json()
    assert {"replication-monitor", "cache-invalidation", "flash-soldout"} <= set(probe["background"]), probe
    assert probe["cache_tracking"], probe
    health = requests.get(f"{url}/healthz", timeout=10)
    assert health.status_code == 200, health.text
    home = requests.get(f"{url}/api/home", timeout=10)
    assert home.status_code == 200 and home.headers["X-Cache"] in ("hit", "miss", "stale"), home.headers
