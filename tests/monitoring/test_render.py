"""Render the role (no Docker) and check what it renders with promtool and `docker compose config`."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from conftest import DASHBOARDS, REPO, TESTS

sys.path.insert(0, str(TESTS))
from dashboard_queries import expressions

ANSIBLE_PLAYBOOK = str(REPO / ".venv/bin/ansible-playbook")


def _render(out, *extra):
    return subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", "localhost,", "-c", "local", str(TESTS / "render.yml"),
         "-e", f"render_dir={out}", "-e", f"ansible_python_interpreter={sys.executable}",
         "--tags", "monitoring_preflight,monitoring_configure", *extra],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")},
        check=False)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("render")
    res = _render(out)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return out / "project"


@pytest.fixture(scope="module")
def rendered_pgsql(tmp_path_factory):
    """The same role for a PostgreSQL site (moodle_db_type pgsql)."""
    out = tmp_path_factory.mktemp("render-pgsql")
    res = _render(out, "-e", "moodle_db_type=pgsql")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return out / "project"


def test_promtool_check_config(promtool, rendered):
    res = subprocess.run([promtool, "check", "config", str(rendered / "monitoring/prometheus/prometheus.yml")],
                         capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "1 rule files found" in res.stdout + res.stderr


def test_every_rule_job_is_scraped(rendered):
    config = yaml.safe_load((rendered / "monitoring/prometheus/prometheus.yml").read_text())
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    rules = (rendered / "monitoring/prometheus/rules/moodle.yml").read_text()
    for job in ("moodle_http", "mysqld", "redis", "apache_log", "moodle", "node", "containers"):
        assert f'job="{job}"' in rules and job in jobs, job


def test_no_exporter_port_published_and_secrets_are_files(rendered):
    compose = yaml.safe_load((rendered / "compose.monitoring.yml").read_text())
    published = {name: svc["ports"] for name, svc in compose["services"].items() if svc.get("ports")}
    assert published == {"prometheus": ["127.0.0.1:9090:9090"]}
    for name, svc in compose["services"].items():
        for value in (svc.get("environment") or {}).values():
            assert "password" not in str(value).lower() or str(value).startswith("/run/"), (name, value)
    for secret in (rendered / "secrets").iterdir():
        # moodle-metrics runs as uid 33 without capabilities: its password file is group 33, 0440.
        want = "0o440" if secret.name == "monitoring_moodle_metrics_db_password" else "0o600"
        assert oct(secret.stat().st_mode & 0o777) == want, secret


@pytest.mark.skipif(shutil.which("docker") is None, reason="docker CLI not installed (make host installs it)")
def test_overlay_merges_with_a_stack(rendered):
    """The overlay needs only what compose_stack's compose.yml defines (web, networks, volumes, redis secret)."""
    (rendered / "secrets/redis_password").write_text("x")
    (rendered / "compose.yml").write_text(yaml.safe_dump({
        "name": "render-test",
        "services": {"web": {"image": "moodle-platform/moodle:latest", "networks": ["frontend", "backend"]}},
        "networks": {"frontend": {}, "backend": {"internal": True}},
        "volumes": {"moodledata": {}, "db_data": {}},
        "secrets": {"redis_password": {"file": "./secrets/redis_password"}},
    }))
    res = subprocess.run(["docker", "compose", "-f", "compose.yml", "-f", "compose.monitoring.yml", "config",
                          "--format", "json"], cwd=rendered, capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    merged = json.loads(res.stdout)
    targets = {v["target"] for v in merged["services"]["web"]["volumes"]}
    assert "/etc/apache2/conf-enabled/zz-moodle-platform-monitoring.conf" in targets
    assert merged["services"]["mysqld-exporter"]["networks"].keys() == {"backend"}


def test_dashboard_expressions_are_valid_promql(promtool, tmp_path):
    """Syntax only (promtool parses each expression); data is checked against the live stack in molecule."""
    exprs = expressions(DASHBOARDS)
    assert len(exprs) > 20
    rules = [{"record": f"dashboard:expr{i}", "expr": expr} for i, (_, _, expr) in enumerate(exprs)]
    path = tmp_path / "dashboards_as_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    res = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr


def test_postgresql_site_gets_the_postgres_exporter_instead_of_mysqld(promtool, rendered, rendered_pgsql):
    jobs = {}
    for name, project in (("mariadb", rendered), ("pgsql", rendered_pgsql)):
        config = yaml.safe_load((project / "monitoring/prometheus/prometheus.yml").read_text())
        jobs[name] = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
        res = subprocess.run([promtool, "check", "config", str(project / "monitoring/prometheus/prometheus.yml")],
                             capture_output=True, text=True, check=False)
        assert res.returncode == 0, res.stdout + res.stderr
    assert jobs["pgsql"]["postgres"] == ["postgres-exporter:9187"] and "mysqld" not in jobs["pgsql"]
    assert jobs["mariadb"]["mysqld"] == ["mysqld-exporter:9104"] and "postgres" not in jobs["mariadb"]
    assert set(jobs["pgsql"]) - {"postgres"} == set(jobs["mariadb"]) - {"mysqld"}

    compose = yaml.safe_load((rendered_pgsql / "compose.monitoring.yml").read_text())
    assert "mysqld-exporter" not in compose["services"]
    exporter = compose["services"]["postgres-exporter"]
    assert exporter["networks"] == ["backend"] and "ports" not in exporter
    assert exporter["entrypoint"] == ["/usr/local/bin/exporter-entrypoint", "prometheus-postgres-exporter"]
    # the password reaches the exporter as a file it reads itself, never as an environment value
    assert exporter["environment"] == {
        "DATA_SOURCE_URI": "db:5432/moodle?sslmode=disable", "DATA_SOURCE_USER": "postgres_exporter",
        "DATA_SOURCE_PASS_FILE": "/run/monitoring-secrets/monitoring_postgres_exporter_db_password"}
    assert exporter["secrets"] == ["monitoring_postgres_exporter_db_password"]
    assert set(compose["secrets"]) == {"monitoring_postgres_exporter_db_password", "monitoring_moodle_metrics_db_password"}
    assert compose["services"]["moodle-metrics"]["environment"]["MOODLE_METRICS_DB_TYPE"] == "pgsql"
    password = (rendered_pgsql / "secrets/monitoring_postgres_exporter_db_password").read_text()
    assert len(password) == 32 and password.isalnum()
    assert password not in (rendered_pgsql / "compose.monitoring.yml").read_text()
    assert not (rendered_pgsql / "secrets/monitoring_mysqld_exporter_cnf").exists()


def test_unknown_database_type_is_refused_before_rendering(tmp_path):
    res = _render(tmp_path, "-e", "moodle_db_type=oracle")
    assert res.returncode != 0
    assert "monitoring_db_type" in res.stdout + res.stderr and "mariadb, pgsql" in res.stdout + res.stderr
    assert not (tmp_path / "project").exists(), "nothing may be rendered"
