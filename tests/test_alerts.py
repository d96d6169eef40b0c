"""The alert rules (site/breakwater_tools/stack/templates/alerts.yml): promtool checks them and runs their unit tests
(alerts_tests/<group>.yml, one per rule group, with input series); every app metric they name exists."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from breakwater_tools.stack.monitoring import RULES
from breakwater_tools.stack.programs import which

TESTS = RULES.parent / "alerts_tests"


def promtool() -> str:
    path = which("promtool")
    if not path:
        pytest.fail("promtool is missing: `make deps` installs it (Debian's package prometheus).")
    return path


def test_the_rules_pass_promtools_check():
    result = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_rule_group_has_unit_tests_and_they_pass():
    groups = [g["name"] for g in yaml.safe_load(RULES.read_text())["groups"]]
    files = sorted(TESTS.glob("*.yml"))
    assert {f.stem for f in files} == set(groups)
    result = subprocess.run(
        [promtool(), "test", "rules", *[f.name for f in files]], cwd=TESTS, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_runbook_and_is_tested():
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    tested = {
        t["alertname"]
        for f in TESTS.glob("*.yml")
        for case in yaml.safe_load(f.read_text())["tests"]
        for t in case.get("alert_rule_test", [])
        if t.get("exp_alerts")
    }
    for rule in rules:
        assert rule["annotations"].get("runbook"), rule["alert"]
        assert rule["alert"] in tested, f"{rule['alert']} never fires in a unit test"


def test_every_app_metric_the_rules_name_exists():
    from prometheus_client import REGISTRY

    import breakwater.observability.cache_metrics
    import breakwater.observability.db_metrics
    import breakwater.observability.metrics
    import breakwater.queues.metrics  # noqa: F401

    known = {s.name for m in REGISTRY.collect() for s in m.samples} | {m.name for m in REGISTRY.collect()}
    used = set(re.findall(r"\b(breakwater_[a-z_]+)", RULES.read_text()))
    assert used, "the rules name no app metric"
    missing = {name for name in used if name not in known and re.sub(r"_(bucket|total)$", "", name) not in known}
    assert not missing, f"no such app metric: {missing}"


def test_prometheus_loads_the_rules_in_the_rendered_configuration(tmp_path):
    from breakwater.settings import Settings
    from breakwater_tools.stack.layout import Layout
    from breakwater_tools.stack.monitoring import scrape_config

    config = scrape_config(Layout(Settings.load({"BREAKWATER_STATE_DIR": str(tmp_path)})))
    assert config["rule_files"] == [str(RULES)]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [promtool(), "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    compose = Path(RULES.parent / "prometheus-compose.yml")
    assert yaml.safe_load(compose.read_text())["rule_files"] == ["/etc/prometheus/alerts.yml"]


def test_the_task_signals_count_outcomes_and_runtimes_and_the_drift_checks_findings_become_gauges():
    """The worker side (queues/metrics.py) on an eager Celery app: the same signals a worker sends."""
    import uuid

    from celery import Celery
    from prometheus_client import REGISTRY

    from breakwater.queues import metrics as task_metrics

    task_metrics.connect()
    app = Celery(f"t{uuid.uuid4().hex[:6]}")
    app.conf.task_always_eager = True
    name = f"breakwater.test.t{uuid.uuid4().hex[:6]}"

    @app.task(name=name)
    def ok() -> int:
        return 1

    @app.task(name=name + "_bad")
    def bad() -> None:
        raise ValueError("for good")

    @app.task(name=task_metrics.RECONCILE_TASK)
    def reconcile() -> dict:
        return {43: {"stock_repaired": {"was": 10, "now": 7}, "users_repaired": 2, "settled": 0, "requeued": 0}}

    @app.task(name=task_metrics.DRIFT_TASK)
    def drift_check() -> dict:
        return {42: {"loaded": True, "stock_drift": 3, "buyers_off": {5: [1, 0], 6: [2, 1]}, "pending": 4}}

    def value(metric: str, **labels) -> float | None:
        return REGISTRY.get_sample_value(metric, labels)

    ok.delay(), ok.delay(), bad.delay(), reconcile.delay(), drift_check.delay()
    assert value("breakwater_tasks_total", task=name, queue="default", outcome="succeeded") == 2
    assert value("breakwater_tasks_total", task=name + "_bad", queue="default", outcome="failed") == 1
    assert value("breakwater_task_runtime_seconds_count", task=name, queue="default") == 2
    assert value("breakwater_flash_gate_drift", sale="42", kind="stock") == 3
    assert value("breakwater_flash_gate_drift", sale="42", kind="buyers") == 2
    assert value("breakwater_flash_drift_check_timestamp_seconds", sale="42") > 0
    assert value("breakwater_flash_reconcile_timestamp_seconds", sale="43") > 0
    assert value("breakwater_flash_gate_drift", sale="43", kind="stock") is None  # a repair is no measurement
    task_metrics.record_outbox(3, 12.5)
    assert value("breakwater_outbox_backlog_rows") == 3 and value("breakwater_outbox_oldest_seconds") == 12.5


_PROCESS = """
import sys, time
from breakwater.observability import db_metrics as m
if sys.argv[1] == "monitor":  # a process whose replication monitor ran: its view of the replicas
    m.IN_ROTATION.labels("replica1").set(float(sys.argv[2]))
    m.LAG_SECONDS.labels("replica1").set(float(sys.argv[3]))
print("ready", flush=True)
if sys.argv[-1] == "stay":
    time.sleep(60)
"""


def test_the_database_gauges_come_only_from_live_processes_that_measured_them(tmp_path, monkeypatch):
    """The multi-process files as a stack leaves them: a Celery worker that only imports the metrics, a process
    that saw replica1 out of rotation and 20 s behind and then exited, and a live one that sees it in and 0 s
    behind. /metrics reports the live view only: no 0 from a process that never measured (the semi-sync gauge's
    false SemiSyncFellBackToAsync), no last word of a dead process (a replica out of rotation for ever)."""
    import sys

    from breakwater.observability.metrics import render_metrics

    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}

    def run(*args: str) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-c", _PROCESS, *args], env=env, stdout=subprocess.PIPE, text=True
        )  # fmt: skip
        assert proc.stdout.readline().strip() == "ready"
        return proc

    importer, exited = run("import", "stay"), run("monitor", "0", "20", "exit")
    exited.wait(timeout=30)
    live = run("monitor", "1", "0", "stay")
    try:
        monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
        body = render_metrics()[0].decode()
    finally:
        for proc in (importer, live):
            proc.kill()
            proc.wait(timeout=10)
    gauges = ("breakwater_db_replica_", "breakwater_db_semisync_")  # the monitor's, every process's own view
    samples = {line.split(" ")[0]: float(line.split(" ")[1]) for line in body.splitlines() if line.startswith(gauges)}
    assert samples == {
        'breakwater_db_replica_in_rotation{node="replica1"}': 1.0,
        'breakwater_db_replica_lag_seconds{node="replica1"}': 0.0,
    }, body


def test_a_replica_promoted_since_is_no_replica_out_of_rotation_in_the_monitors_gauges():
    """The process watched replica2 out of rotation (promoted: writable, not replicating); once its monitor
    adopted it as the primary, the series it left behind no longer says a replica is out (ReplicaOutOfRotation
    would fire for as long as the process lives)."""
    from types import SimpleNamespace

    from prometheus_client import REGISTRY

    from breakwater.observability import db_metrics

    def node(name: str, in_rotation: bool):
        return SimpleNamespace(name=name, in_rotation=in_rotation, lag_seconds=None, lag_transactions=None)

    def in_rotation(name: str) -> float | None:
        return REGISTRY.get_sample_value("breakwater_db_replica_in_rotation", {"node": name})

    before = SimpleNamespace(primary_name="promo-primary", replicas=[node("promo-r1", True), node("promo-r2", False)])
    db_metrics.record_monitor(before)
    assert (in_rotation("promo-r1"), in_rotation("promo-r2")) == (1, 0)
    after = SimpleNamespace(primary_name="promo-r2", replicas=[node("promo-r1", True), node("promo-primary", False)])
    db_metrics.record_monitor(after)
    assert (in_rotation("promo-r1"), in_rotation("promo-r2"), in_rotation("promo-primary")) == (1, 1, 0)
