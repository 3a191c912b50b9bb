"""promtool checks of the alert rules, and proof that the rule unit tests can fail.

`promtool test rules tests/monitoring/rules_test.yml` is the real test of the alerts.  This module
runs it, checks that every alert has a case where it fires and one where it stays silent, and
then mutates each alert (never fires / always fires) to show that the unit tests catch it.
"""

import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import RULES, TESTS

RULE_FILE = RULES / "moodle.yml"
TEST_FILES = sorted(TESTS.glob("rules*_test.yml"))


def _alerts() -> dict[str, dict]:
    doc = yaml.safe_load(RULE_FILE.read_text())
    return {r["alert"]: r for g in doc["groups"] for r in g["rules"] if "alert" in r}


def _run(promtool: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([promtool, *args], capture_output=True, text=True, cwd=cwd, check=False)


def test_check_rules(promtool):
    res = _run(promtool, "check", "rules", str(RULE_FILE))
    assert res.returncode == 0, res.stdout + res.stderr


def test_rule_file_is_prometheusrule_spec():
    doc = yaml.safe_load(RULE_FILE.read_text())
    assert list(doc) == ["groups"], "the file must be usable as PrometheusRule .spec unchanged"
    for alert in _alerts().values():
        assert alert["labels"]["severity"] in {"critical", "warning"}
        assert alert["annotations"]["summary"]


def _cases(path: Path) -> list[dict]:
    return yaml.safe_load(path.read_text())["tests"]


def test_unit_tests_pass(promtool):
    res = _run(promtool, "test", "rules", *(f.name for f in TEST_FILES), cwd=TESTS)
    assert res.returncode == 0, res.stdout + res.stderr


def test_every_alert_has_a_firing_and_a_silent_case():
    fired, silent = set(), set()
    for case in (c for f in TEST_FILES for c in _cases(f)):
        for check in case.get("alert_rule_test", []):
            (fired if check.get("exp_alerts") else silent).add(check["alertname"])
    alerts = set(_alerts())
    assert alerts - fired == set(), "alerts without a firing test"
    assert alerts - silent == set(), "alerts without a silent test"


@pytest.mark.parametrize("alert", sorted(_alerts()))
@pytest.mark.parametrize("mutant", ["vector(1)", "vector(1) == 2"], ids=["always", "never"])
def test_unit_tests_catch_a_broken_alert(promtool, tmp_path, alert, mutant):
    """Replace one alert's expression; the unit tests must then fail."""
    doc = yaml.safe_load(RULE_FILE.read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == alert:
                rule["expr"] = mutant
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / RULE_FILE.name).write_text(yaml.safe_dump(doc))
    # Only the test files that exercise this alert (keeps the 2 x N promtool runs fast).
    names = []
    for test_file in TEST_FILES:
        if not any(c["alertname"] == alert for case in _cases(test_file) for c in case.get("alert_rule_test", [])):
            continue
        tests = yaml.safe_load(test_file.read_text())
        tests["rule_files"] = [str(rules_dir / RULE_FILE.name)]
        (tmp_path / test_file.name).write_text(yaml.safe_dump(tests))
        names.append(test_file.name)
    res = _run(promtool, "test", "rules", *names, cwd=tmp_path)
    assert res.returncode != 0, f"unit tests still pass with {alert} replaced by {mutant!r}"
    assert alert in res.stdout + res.stderr
