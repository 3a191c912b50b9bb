"""The chart ships the monitoring role's alert rules: one rule source for Compose and Kubernetes.

* charts/moodle/files/rules/moodle.yml is a byte-identical copy of roles/monitoring/files/rules/moodle.yml
  (`make k8s-chart-rules` refreshes it; this test fails on drift);
* the rendered PrometheusRule's `spec.groups` equal that file's groups, `{{ $labels.* }}` untouched;
* `promtool check rules` passes on the rendered spec, and promtool unit tests fire and silence the
  chart's Kubernetes-only group (rules_kubernetes_test.yml);
* the ServiceMonitor and Probe give their series the monitoring contract's job names;
* the PrometheusRule, ServiceMonitor and Probe are accepted by the API server under the upstream
  prometheus-operator CRDs (from its Go module, `make k8s-monitoring-crds`; not written by hand here).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from .harness import REAL, ROOT, wait_for
from .test_chart import CHART, docs, template, validate

RULES_SRC = ROOT / "collections/ansible_collections/moodle/platform/roles/monitoring/files/rules/moodle.yml"
RULES_CHART = CHART / "files" / "rules" / "moodle.yml"
UNIT_TESTS = Path(__file__).with_name("rules_kubernetes_test.yml")
DEFAULT = ["-f", str(CHART / "ci" / "default-values.yaml")]
HA = ["-f", str(CHART / "ci" / "ha-values.yaml")]  # every monitoring object and option on
MONITORING_KINDS = ("PrometheusRule", "ServiceMonitor", "Probe")


def promtool() -> str:
    path = os.environ.get("PROMTOOL") or shutil.which("promtool")
    if not path:
        pytest.fail("promtool not found: set PROMTOOL (make k8s-test installs it via monitoring-tools)")
    return path


def source_groups() -> list[dict]:
    return yaml.safe_load(RULES_SRC.read_text())["groups"]


def rendered(helm, args: list[str], release: str = "site") -> list[dict]:
    proc = template(helm, CHART, args, release=release)
    assert proc.returncode == 0, proc.stderr
    return docs(proc.stdout)


def prometheus_rule(helm, args: list[str], release: str = "site") -> dict:
    rules = [d for d in rendered(helm, args, release) if d["kind"] == "PrometheusRule"]
    assert len(rules) == 1, rules
    return rules[0]


def contract_job_names() -> set[str]:
    line = next(x for x in (ROOT / "docs" / "contracts.md").read_text().splitlines() if "Prometheus job names" in x)
    return set(re.findall(r"`([a-z_]+)`", line))


def assert_subset(sent, stored, path="spec"):
    if isinstance(sent, dict):
        assert isinstance(stored, dict), path
        for key, value in sent.items():
            assert key in stored, f"{path}.{key} was dropped by the API server"
            assert_subset(value, stored[key], f"{path}.{key}")
    elif isinstance(sent, list):
        assert isinstance(stored, list) and len(sent) == len(stored), path
        for i, (a, b) in enumerate(zip(sent, stored, strict=True)):
            assert_subset(a, b, f"{path}[{i}]")
    else:
        assert sent == stored, path


def test_chart_copy_of_the_rules_is_identical_to_the_monitoring_role():
    assert RULES_CHART.is_file() and not RULES_CHART.is_symlink(), f"{RULES_CHART} missing: run make k8s-chart-rules"
    assert RULES_CHART.read_bytes() == RULES_SRC.read_bytes(), (
        f"{RULES_CHART} differs from {RULES_SRC}: run `make k8s-chart-rules` and commit the copy")


def test_rendered_groups_are_the_monitoring_rule_file_unchanged(helm):
    args = [*DEFAULT, "--set", "metrics.prometheusRule.enabled=true",
            "--set", "metrics.prometheusRule.kubernetes.kubeStateMetrics=false"]
    rule = prometheus_rule(helm, args)
    assert rule["spec"] == {"groups": source_groups()}
    # Helm did not template Prometheus' own template language inside the annotations.
    annotations = [r["annotations"] for g in rule["spec"]["groups"] for r in g["rules"] if "annotations" in r]
    assert any("{{ $labels.instance }}" in a.get("summary", "") for a in annotations)
    assert any("{{ $value | humanizePercentage }}" in a.get("description", "") for a in annotations)


@pytest.mark.parametrize(("args", "expected"), [
    ([], ["MoodleWebUnavailable", "MoodleCronNotRunning"]),
    (["--set", "cron.enabled=false"], ["MoodleWebUnavailable"]),
    (["--set", "metrics.prometheusRule.kubernetes.kubeStateMetrics=false",
      "--set", "metrics.prometheusRule.kubernetes.operatorBackups=true"],
     ["record:moodle_backup_last_success_timestamp_seconds"]),
    (["--set", "metrics.prometheusRule.kubernetes.operatorBackups=true"],
     ["MoodleWebUnavailable", "MoodleCronNotRunning", "record:moodle_backup_last_success_timestamp_seconds"]),
    (["--set", "metrics.prometheusRule.kubernetes.kubeStateMetrics=false"], None),
], ids=["defaults", "no-cron", "operator-backups-only", "all", "none"])
def test_kubernetes_group_is_appended_only_when_its_values_are_on(helm, args, expected):
    rule = prometheus_rule(helm, [*DEFAULT, "--set", "metrics.prometheusRule.enabled=true", *args])
    groups = rule["spec"]["groups"]
    if expected is None:
        assert groups == source_groups()
        return
    assert groups[:-1] == source_groups()
    extra = groups[-1]
    assert extra["name"] == "moodle.kubernetes"
    assert [r.get("alert") or f"record:{r['record']}" for r in extra["rules"]] == expected
    for r in extra["rules"]:  # scoped to this release's namespace and objects
        assert 'namespace="moodle"' in r["expr"] and ('"site-' in r["expr"] or 'site="site"' in r["expr"]), r


def test_promtool_check_rules_passes_on_the_rendered_spec(helm, tmp_path):
    spec = prometheus_rule(helm, HA)["spec"]
    path = tmp_path / "rendered-rules.yml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    proc = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    count = sum(len(g["rules"]) for g in spec["groups"])
    assert count == sum(len(g["rules"]) for g in source_groups()) + 3
    assert f"SUCCESS: {count} rules found" in proc.stdout, proc.stdout


def _unit_test(helm, tmp_path: Path, release: str) -> subprocess.CompletedProcess:
    spec = prometheus_rule(helm, HA, release=release)["spec"]
    (tmp_path / "rendered-rules.yml").write_text(yaml.safe_dump(spec, sort_keys=False))
    shutil.copy(UNIT_TESTS, tmp_path / UNIT_TESTS.name)
    return subprocess.run([promtool(), "test", "rules", UNIT_TESTS.name], cwd=tmp_path,
                          capture_output=True, text=True, check=False)


def test_promtool_unit_tests_fire_and_silence_the_kubernetes_group(helm, tmp_path):
    proc = _unit_test(helm, tmp_path, release="site")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_the_unit_tests_fail_against_rules_rendered_for_another_release(helm, tmp_path):
    """The release scoping is what the unit tests check: rules for `campus` must not pass them."""
    proc = _unit_test(helm, tmp_path, release="campus")
    assert proc.returncode != 0, proc.stdout
    for alert in ("MoodleWebUnavailable", "MoodleCronNotRunning", "MoodleBackupTooOld"):
        assert alert in proc.stdout + proc.stderr


def test_scrape_objects_use_the_monitoring_contract_job_names(helm):
    objs = {d["kind"]: d for d in rendered(helm, HA) if d["kind"] in MONITORING_KINDS}
    assert set(objs) == set(MONITORING_KINDS)
    for doc in objs.values():
        validate(doc)  # the shape check test_chart.py applies to CRD kinds
    contract = contract_job_names()
    assert {"moodle_http", "mysqld", "redis", "apache", "moodle", "node"} <= contract
    for endpoint in objs["ServiceMonitor"]["spec"]["endpoints"]:
        jobs = [r["replacement"] for r in endpoint.get("relabelings", []) if r.get("targetLabel") == "job"]
        assert jobs == ["apache"], endpoint  # the Service name ("site") would be the job otherwise
        assert endpoint["port"] == "metrics"
    probe = objs["Probe"]["spec"]
    assert probe["jobName"] == "moodle_http" and probe["jobName"] in contract
    assert probe["targets"]["staticConfig"]["static"] == ["https://moodle.example.org/login/index.php"]
    site_down = next(r for g in source_groups() for r in g["rules"] if r.get("alert") == "MoodleSiteDown")
    assert 'job="moodle_http"' in site_down["expr"]


@pytest.fixture(scope="module")
def monitoring_crds(cluster):
    """The upstream monitoring.coreos.com CRDs (prometheus-operator Go module), installed for this module."""
    crd_dir = Path(os.environ.get("MOODLE_K8S_MONITORING_CRDS", "/nonexistent"))
    files = [crd_dir / f"monitoring.coreos.com_{k}.yaml" for k in ("prometheusrules", "servicemonitors", "probes")]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        pytest.fail(f"upstream CRDs missing ({', '.join(missing)}): run make k8s-monitoring-crds and set "
                    "MOODLE_K8S_MONITORING_CRDS (make k8s-test does both)")
    crd_api = "apiextensions.k8s.io/v1"
    installed = []
    for path in files:
        crd = yaml.safe_load(path.read_text())
        name = crd["metadata"]["name"]
        if REAL and cluster.get(crd_api, "CustomResourceDefinition", name):
            continue  # never replace a real cluster's prometheus-operator CRDs
        cluster.apply(crd)
        installed.append(name)
        wait_for(lambda n=name: any(c["type"] == "Established" and c["status"] == "True" for c in
                                    (cluster.get(crd_api, "CustomResourceDefinition", n) or {})
                                    .get("status", {}).get("conditions") or []), what=f"CRD {name} established")
    cluster.dyn = DynamicClient(cluster.client)
    yield
    if not REAL:  # leave the API server as the other modules expect it
        for name in installed:
            cluster.res(crd_api, "CustomResourceDefinition").delete(name=name)
        cluster.dyn = DynamicClient(cluster.client)


def test_monitoring_objects_are_accepted_under_the_upstream_crds(helm, cluster, monitoring_crds):
    ns = cluster.namespace("chart-monitoring")
    objs = [d for d in rendered(helm, HA) if d["kind"] in MONITORING_KINDS]
    assert sorted(d["kind"] for d in objs) == sorted(MONITORING_KINDS)
    for doc in objs:
        cluster.apply(doc, namespace=ns)
        stored = cluster.get(doc["apiVersion"], doc["kind"], doc["metadata"]["name"], namespace=ns)
        assert stored is not None
        if doc["kind"] == "PrometheusRule":
            # The stored rule set (after the CRD's schema and pruning) is still the monitoring file's.
            assert stored["spec"]["groups"][:-1] == source_groups()
            assert stored["spec"]["groups"] == doc["spec"]["groups"]
        else:
            assert_subset(doc["spec"], stored["spec"])  # kept as sent; the server may only add defaults


def test_the_upstream_crd_rejects_a_broken_rule(helm, cluster, monitoring_crds):
    """The CRD schema is really enforced: a rule without `expr` is refused by the API server."""
    ns = cluster.namespace("chart-monitoring")
    doc = prometheus_rule(helm, HA)
    doc["metadata"]["name"] = "broken"
    del doc["spec"]["groups"][0]["rules"][0]["expr"]
    with pytest.raises(ApiException) as err:
        cluster.res(doc["apiVersion"], doc["kind"]).server_side_apply(
            body=doc, namespace=ns, field_manager="chart-test", dry_run="All")
    assert err.value.status == 422 and "expr" in err.value.body, err.value.body


def test_the_packaged_chart_carries_the_rules(helm, tmp_path):
    """`helm package` (how the chart is released) keeps files/rules/moodle.yml; the .tgz renders the same rules."""
    proc = subprocess.run([helm, "package", str(CHART), "--destination", str(tmp_path)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (archive,) = tmp_path.glob("moodle-*.tgz")
    proc = template(helm, archive, [*DEFAULT, "--set", "metrics.prometheusRule.enabled=true",
                                    "--set", "metrics.prometheusRule.kubernetes.kubeStateMetrics=false"])
    assert proc.returncode == 0, proc.stderr
    (rule,) = [d for d in docs(proc.stdout) if d["kind"] == "PrometheusRule"]
    assert rule["spec"] == {"groups": source_groups()}
