"""The alert rules (site/breakwater_tools/stack/templates/alerts.yml): promtool checks them and runs their unit tests
(alerts_tests/<group>.yml, one per rule group, with input series); every app metric they name exists."""

from __future__ import annotations

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
    import breakwater.observability.metrics  # noqa: F401

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
