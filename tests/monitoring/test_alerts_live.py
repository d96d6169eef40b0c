"""The alert rules against real faults (issue 23, point 2): one test per family of fault the suite injects, each
showing the alert firing within a minute of the fault and clearing once the stack recovers. A replica killed
is tests/monitoring/test_prometheus.py's; here:

* first, the stack as it starts, healthy: no alert of severity page, pending or firing, once it has settled;
* semi-sync falling back to asynchronous (both replicas stop receiving, a commit waits out
  DB_SEMISYNC_TIMEOUT_MS): SemiSyncFellBackToAsync on the primary, cleared once they receive again;
* the cache Redis hung (SIGSTOP): RedisDown for redis-cache, and CacheBreakerOpen while pages are asked for;
* the orders worker killed with a backlog: QueueWithoutConsumers and QueueBacklog on the orders queue;
* the origin hung behind the edge (Nginx SIGSTOPped): EdgeOriginSick;
* the flash gate's stock off from the database's: FlashGateDrift once the scheduled drift check has measured it
  for the rule's ``for``, cleared once `breakwater flash reconcile` repaired it.

The stack is the whole monitoring session's: each test puts back what it broke (in a ``finally``) and waits for
the alerts to clear and the stack to be healthy before the next one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing

import pytest
import requests

from breakwater_tools.stack.lifecycle import Stack
from breakwater_tools.stack.mariadb import admin
from flash_helpers import BREAKWATER, buy, cli_env, make_buyers, make_sale, wait_written
from visitors import visitor

FIRE_WITHIN = 60  # seconds from the fault to the alert firing (issue 23)
CLEAR_WITHIN = 60


def firing(prometheus: str, alert: str, **labels: str) -> list[dict]:
    alerts = requests.get(f"{prometheus}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    return [
        a
        for a in alerts
        if a["labels"]["alertname"] == alert
        and a["state"] == "firing"
        and all(a["labels"].get(k) == v for k, v in labels.items())
    ]


def query(prometheus: str, expr: str) -> list:
    return requests.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=5).json()["data"]["result"]


def wait(predicate, timeout: float, what: str) -> float:
    """Seconds until ``predicate()`` held; fails after ``timeout``."""
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, f"{what}: not within {timeout:.0f} s"
        time.sleep(1)
    return time.monotonic() - started


@contextlib.contextmanager
def hung(stack: Stack, program: str) -> Iterator[int]:
    """The program's process group SIGSTOPped (it accepts connections and answers nothing), SIGCONTed after."""
    pid = stack.supervisor.rpc().getProcessInfo(program)["pid"]
    assert pid and os.getpgid(pid) == pid, f"{program} leads no process group of its own"  # never signal another
    os.killpg(pid, signal.SIGSTOP)
    try:
        yield pid
    finally:
        os.killpg(pid, signal.SIGCONT)


@pytest.fixture()
def calm(monitored, prometheus):
    """Prometheus scraping the app before the test, and the stack healthy after it."""
    wait(lambda: query(prometheus, 'up{job="app"} == 1'), 60, "Prometheus scraping the app")
    yield
    monitored.wait_healthy(timeout=60)


def test_a_healthy_stack_pages_nobody_once_it_has_settled(monitored, prometheus, calm):
    """The session's stack as it started: every target up, and 30 s after Prometheus's start (the rules' ``for``
    is at most 15 s for a page) no alert of severity page is pending or firing, over three evaluations."""
    wait(lambda: not query(prometheus, "up == 0") and query(prometheus, "up == 1"), 60, "every target up")
    own = 'process_start_time_seconds{job="prometheus"}'
    wait(lambda: query(prometheus, own), 30, "Prometheus's own first scrape")  # other targets may come first
    started = float(query(prometheus, own)[0]["value"][1])
    time.sleep(max(0.0, started + 30 - time.time()))
    for _ in range(3):
        alerts = requests.get(f"{prometheus}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
        paging = [(a["labels"]["alertname"], a["labels"].get("instance"), a["state"]) for a in alerts
                  if a["labels"].get("severity") == "page"]  # fmt: skip
        assert not paging, f"a healthy stack pages: {paging}"
        time.sleep(5)


def test_semi_sync_falling_back_to_async_fires_and_clears_once_a_replica_acknowledges_again(
    monitored, prometheus, calm
):
    """Both replicas stop receiving (their IO threads stopped: up, readable, acknowledging nothing); the next
    commit on the primary waits DB_SEMISYNC_TIMEOUT_MS for an acknowledgement, then the primary goes on
    asynchronously. Receiving again, a replica catches up and the primary is semi-synchronous again."""
    layout = monitored.layout
    primary = layout.primary.name

    def sql(node, *statements: str) -> list:
        with closing(admin(node)) as conn, conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
            return list(cur.fetchall())

    def status() -> str:
        return sql(layout.primary, "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_status'")[0][1]

    assert status() == "ON"
    wait(lambda: not firing(prometheus, "SemiSyncFellBackToAsync"), CLEAR_WITHIN, "earlier alerts to clear")
    started = time.monotonic()
    try:
        for node in layout.replicas:
            sql(node, "STOP SLAVE IO_THREAD")
        sql(layout.primary, "CREATE DATABASE IF NOT EXISTS semisync_probe",  # a commit no replica acknowledges
            "CREATE TABLE IF NOT EXISTS semisync_probe.t (id INT AUTO_INCREMENT PRIMARY KEY)",
            "INSERT INTO semisync_probe.t VALUES ()")  # fmt: skip
        assert status() == "OFF"
        fired = wait(lambda: firing(prometheus, "SemiSyncFellBackToAsync", instance=primary), FIRE_WITHIN, "the alert")
    finally:
        for node in layout.replicas:
            sql(node, "START SLAVE IO_THREAD")
    back = time.monotonic()
    wait(lambda: status() == "ON", 30, "semi-sync back on the primary")
    wait(lambda: not firing(prometheus, "SemiSyncFellBackToAsync"), CLEAR_WITHIN, "the alert to clear")
    cleared = time.monotonic() - back
    sql(layout.primary, "DROP DATABASE semisync_probe")
    print(
        f"SemiSyncFellBackToAsync fired {fired:.0f} s after the replicas stopped receiving, cleared {cleared:.0f} s "
        f"after they received again; {time.monotonic() - started:.0f} s in all"
    )


def test_the_cache_redis_hung_fires_redis_down_and_the_breaker_alert_and_they_clear(
    monitored, prometheus, origin, calm
):
    wait(lambda: not firing(prometheus, "RedisDown", instance="redis-cache"), CLEAR_WITHIN, "earlier alerts to clear")
    wait(lambda: not firing(prometheus, "CacheBreakerOpen"), CLEAR_WITHIN, "earlier alerts to clear")
    stop = threading.Event()
    answers: list[str] = []

    def ask() -> None:  # pages that go through the cache: their lookups open the breaker, then bypass it
        with visitor() as client:
            while not stop.is_set():
                with contextlib.suppress(requests.RequestException):
                    answers.append(client.get(f"{origin}/api/home", timeout=10).headers.get("X-Cache", ""))
                time.sleep(0.2)

    started = time.monotonic()
    reader = threading.Thread(target=ask, daemon=True)
    with hung(monitored, "redis-cache"):
        reader.start()
        try:
            down = wait(lambda: firing(prometheus, "RedisDown", instance="redis-cache"), FIRE_WITHIN, "RedisDown")
            breaker = wait(lambda: firing(prometheus, "CacheBreakerOpen"), FIRE_WITHIN - down, "CacheBreakerOpen")
        finally:
            stop.set()
            reader.join(timeout=15)
    assert "bypass" in answers, answers[-20:]
    resumed = time.monotonic()
    wait(lambda: not firing(prometheus, "RedisDown", instance="redis-cache"), CLEAR_WITHIN, "RedisDown to clear")
    wait(lambda: not firing(prometheus, "CacheBreakerOpen"), CLEAR_WITHIN, "CacheBreakerOpen to clear")
    print(
        f"RedisDown fired after {down:.0f} s, CacheBreakerOpen {down + breaker:.0f} s; both cleared "
        f"{time.monotonic() - resumed:.0f} s after SIGCONT; {time.monotonic() - started:.0f} s in all"
    )


def test_the_orders_worker_killed_with_a_backlog_fires_the_queue_alerts_and_they_clear(
    monitored, prometheus, app, origin, calm
):
    backlog = 130  # over QueueBacklog's 100
    with cli_env(monitored):
        sale_id = make_sale(stock=backlog + 20)
    buyers = make_buyers(app, backlog)
    wait(lambda: not firing(prometheus, "QueueBacklog", queue="orders"), CLEAR_WITHIN, "earlier alerts to clear")
    started = time.monotonic()
    monitored.supervisor.take_down("worker-orders")
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(lambda b: buy(origin, b[1], sale_id).status_code, buyers))
        assert statuses.count(202) == backlog, {s: statuses.count(s) for s in set(statuses)}
        idle = wait(
            lambda: firing(prometheus, "QueueWithoutConsumers", queue="orders"), FIRE_WITHIN, "QueueWithoutConsumers"
        )
        deep = wait(
            lambda: firing(prometheus, "QueueBacklog", queue="orders"),
            FIRE_WITHIN - (time.monotonic() - started),
            "QueueBacklog",
        )
    finally:
        monitored.supervisor.bring_back("worker-orders")
    fired = time.monotonic() - started
    back = time.monotonic()
    wait(lambda: not firing(prometheus, "QueueWithoutConsumers", queue="orders"), CLEAR_WITHIN, "the alert to clear")
    wait(lambda: not firing(prometheus, "QueueBacklog", queue="orders"), CLEAR_WITHIN, "QueueBacklog to clear")
    cleared = time.monotonic() - back
    wait_written(app, sale_id, timeout=60)  # the backlog is written: nothing left behind for the next test
    written = 'breakwater_tasks_total{task="breakwater.flash.write_order",queue="orders",outcome="succeeded"}'
    wait(lambda: query(prometheus, f"{written} >= {backlog}"), 20, "the orders worker's task counts in Prometheus")
    print(
        f"QueueWithoutConsumers fired {idle:.0f} s after the purchases, QueueBacklog {fired:.0f} s after the kill "
        f"({deep:.0f} s later); both cleared {cleared:.0f} s after the worker came back; "
        f"{time.monotonic() - started:.0f} s in all"
    )


def test_the_origin_hung_behind_the_edge_fires_edge_origin_sick_and_it_clears(monitored, prometheus, edge, calm):
    wait(lambda: not firing(prometheus, "EdgeOriginSick"), CLEAR_WITHIN, "earlier alerts to clear")
    started = time.monotonic()
    with hung(monitored, "nginx"):
        fired = wait(lambda: firing(prometheus, "EdgeOriginSick"), FIRE_WITHIN, "EdgeOriginSick")
    cleared = wait(lambda: not firing(prometheus, "EdgeOriginSick"), CLEAR_WITHIN, "EdgeOriginSick to clear")
    assert requests.get(f"{edge}/_edge/health", timeout=5).json()["origin"] == "healthy"
    print(
        f"EdgeOriginSick fired {fired:.0f} s after SIGSTOP, cleared {cleared:.0f} s after SIGCONT; "
        f"{time.monotonic() - started:.0f} s in all"
    )


def test_the_workers_metrics_reach_prometheus_through_the_apps_endpoint(monitored, prometheus, app, calm):
    """The Celery workers write into the stack's PROMETHEUS_MULTIPROC_DIR; the app's /metrics carries them: task
    outcomes and runtimes, every task's failed-for-good series (at 0), the outbox relay's gauges, fresh."""
    app.extensions["celery"].send_task("breakwater.outbox.relay")  # beat sends it every second here anyway

    def present() -> bool:
        return all(
            query(prometheus, expr)
            for expr in (
                'breakwater_tasks_total{task="breakwater.outbox.relay",queue="default",outcome="succeeded"} > 0',
                'breakwater_task_runtime_seconds_count{task="breakwater.outbox.relay"} > 0',
                'breakwater_tasks_failed_for_good_total{task="breakwater.flash.write_order",queue="orders"}',
                "time() - breakwater_outbox_relay_timestamp_seconds < 30",
                "breakwater_outbox_oldest_seconds < 60",
            )
        )

    wait(present, 30, "the workers' series in Prometheus")
    assert not firing(prometheus, "OutboxRelayNotRunning") and not firing(prometheus, "OutboxNotDraining")


def test_a_gate_off_from_the_database_fires_flash_gate_drift_from_the_schedule_and_it_clears_once_repaired(
    monitored, prometheus, app, origin, calm
):
    """Nothing is sent by hand: beat's drift check (every FLASH_DRIFT_CHECK_SECONDS) measures the sale, first in
    line, then with the gate believing in 3 units too many; the alert fires once that persisted (``for``), and
    clears once `breakwater flash reconcile` repaired the gate and the next check measured it."""
    with cli_env(monitored):
        sale_id = make_sale(stock=20)
    ((_uid, cookie),) = make_buyers(app, 1)
    assert buy(origin, cookie, sale_id).status_code == 202  # the gate loads the sale at its first purchase
    wait_written(app, sale_id, timeout=30)
    drift = f'breakwater_flash_gate_drift{{sale="{sale_id}",kind="stock"}}'
    checked = f'time() - breakwater_flash_drift_check_timestamp_seconds{{sale="{sale_id}"}} < 20'
    wait(lambda: query(prometheus, f"{drift} == 0") and query(prometheus, checked), 45, "a first check of the sale")
    started = time.monotonic()
    app.extensions["breakwater.flash.gate"].add_stock(sale_id, 3)  # the gate believes in 3 units too many
    try:
        fired = wait(
            lambda: firing(prometheus, "FlashGateDrift", sale=str(sale_id), kind="stock"), FIRE_WITHIN, "FlashGateDrift"
        )
        assert query(prometheus, f"{drift} == 3")
    finally:
        with cli_env(monitored):
            result = subprocess.run(
                [BREAKWATER, "flash", "reconcile", "--sale", str(sale_id)], capture_output=True, text=True, timeout=60
            )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
    cleared = wait(lambda: not firing(prometheus, "FlashGateDrift", sale=str(sale_id)), CLEAR_WITHIN, "it to clear")
    assert query(prometheus, f"{drift} == 0")
    print(
        f"FlashGateDrift fired {fired:.0f} s after the gate went off (no task sent by hand), cleared "
        f"{cleared:.0f} s after `breakwater flash reconcile`; {time.monotonic() - started:.0f} s in all"
    )
