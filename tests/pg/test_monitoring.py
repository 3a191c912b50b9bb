"""The monitoring overlay on the PostgreSQL stand-in site (issue 14): postgres exporter with a pg_monitor role,
Moodle metrics on PostgreSQL, the PostgreSQL alert rules and dashboard, checked through Prometheus' HTTP API.

The pgci site is deployed with the overlay from the start (tests/pg/inventory: ``monitoring_enabled``, Prometheus
on 127.0.0.1:8584, nothing else published), so these tests run first, on the one deployment the suite shares; the
restore onto an empty host in test_postgresql.py brings the stack back without the overlay.  The site is the
Moodle STAND-IN (not Moodle): it has no task tables and no ``user.lastaccess``, so those Moodle metrics are
reported as failed queries here (the MariaDB Molecule scenario `monitoring` adds the tables and checks them).
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from ansible_collections.moodle.platform.plugins.module_utils import _privileges

from conftest import DB, FIGURES, PROJECT, playbook, psql
from stacktest import ROOT, run

sys.path.insert(0, str(ROOT / "tests" / "monitoring"))
from dashboard_queries import expressions

pytestmark = pytest.mark.usefixtures("seeded")
PROMETHEUS = "http://127.0.0.1:8584"
SECRETS = Path.home() / ".moodle-platform" / "pgci-test" / "secrets" / f"localhost-{PROJECT}"
EXPORTER, METRICS = f"{PROJECT}-postgres-exporter-1", f"{PROJECT}-moodle-metrics-1"


def prom(path, **params):
    url = f"{PROMETHEUS}/api/v1/{path}" + ("?" + urllib.parse.urlencode(params) if params else "")
    with urllib.request.urlopen(url, timeout=30) as resp:  # noqa: S310 - loopback Prometheus of the test
        body = json.loads(resp.read())
    assert body["status"] == "success", body
    return body["data"]


def value(expr):
    """The single sample of ``expr`` as a float, None when it returns nothing."""
    result = prom("query", query=expr)["result"]
    assert len(result) <= 1, result
    return float(result[0]["value"][1]) if result else None


def wait_for(what, check, timeout=150, interval=5):
    deadline = time.time() + timeout
    while True:
        last = check()
        if last:
            return last
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(interval)


def test_every_service_matches_the_privilege_table():
    """Least privilege (issue 14) on the PostgreSQL site with the monitoring overlay: every running service of
    pgci against its row of roles/compose_stack/files/privileges.yml (docker inspect + PID 1's /proc status)."""
    seen, problems = _privileges.project_drift(PROJECT, "pgsql")
    assert {"web", "cron", "db", "redis", "prometheus", "alertmanager", "node-exporter", "postgres-exporter",
            "redis-exporter", "apache-exporter", "blackbox-exporter", "mtail", "cgroup-exporter",
            "moodle-metrics"} <= set(seen), sorted(seen)
    assert problems == {}, "\n".join(f"{name}: {p}" for name, found in problems.items() for p in found)


def test_postgres_exporter_is_scraped_and_the_database_is_up():
    targets = prom("targets", state="active")["activeTargets"]
    jobs = {t["labels"]["job"]: t for t in targets}
    assert "mysqld" not in jobs
    assert jobs["postgres"]["scrapeUrl"] == "http://postgres-exporter:9187/metrics"
    assert [t["labels"]["job"] for t in targets if t["health"] != "up"] == []
    assert wait_for("pg_up == 1", lambda: value('pg_up{job="postgres"}') == 1)
    # it reads server statistics (pg_monitor): the connections of the Moodle database and max_connections
    assert value('pg_settings_max_connections{job="postgres"}') == 50  # compose_stack_postgresql_settings
    assert value('sum(pg_stat_database_numbackends{job="postgres",datname="moodle"})') >= 1


def test_exporter_roles_are_least_privilege():
    exporter, metrics = "postgres_exporter", "moodle_metrics"
    rows = psql("SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, rolconnlimit, "
                "(SELECT string_agg(g.rolname, ',' ORDER BY g.rolname) FROM pg_auth_members m "
                "JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid) "
                "FROM pg_roles r WHERE rolname IN ('postgres_exporter', 'moodle_metrics') ORDER BY 1")
    assert rows == [[metrics, "f", "f", "f", "f", "f", "3", ""], [exporter, "f", "f", "f", "f", "f", "3", "pg_monitor"]]
    columns = {tuple(r) for r in psql("SELECT table_name, column_name FROM information_schema.column_privileges "
                                      "WHERE grantee = 'moodle_metrics' AND privilege_type = 'SELECT'")}
    assert {("mdl_config", "name"), ("mdl_config", "value"), ("mdl_config_plugins", "value"), ("mdl_user", "id")} <= columns
    assert ("mdl_user", "password") not in columns and ("mdl_user", "username") not in columns

    def refused(role, query):
        proc = run(["docker", "exec", "--user", "postgres", DB, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1",
                    "--dbname=moodle", "-c", f"SET ROLE {role}; {query}"], check=False)
        return proc.returncode != 0 and "permission denied" in proc.stderr.decode()

    assert refused(exporter, "SELECT count(*) FROM mdl_config")
    assert refused(metrics, "SELECT password FROM mdl_user")
    assert not refused(metrics, "SELECT value FROM mdl_config WHERE name = 'version'"), "the check can fail"


def test_moodle_metrics_are_read_from_postgresql():
    assert wait_for("the moodle job", lambda: value('moodle_metrics_db_up{job="moodle"}') == 1, timeout=120)
    success = {r["metric"]["query"]: r["value"][1] for r in
               prom("query", query='moodle_metrics_query_success{job="moodle"}')["result"]}
    # tables the stand-in has are read; the task tables and user.lastaccess it lacks are reported as failed
    assert {k: success[k] for k in ("cron", "maintenance", "db_version")} == {"cron": "1", "maintenance": "1",
                                                                              "db_version": "1"}
    assert success["tasks_adhoc"] == "0" and success["users_online"] == "0"
    # the site's cron service records its first run within a minute of the deployment (scraped every 60 s)
    assert wait_for("a cron run", lambda: (value('moodle_cron_last_run_timestamp_seconds{job="moodle"}') or 0)
                    > 1_700_000_000, timeout=180)
    db_version = psql("SELECT value FROM mdl_config WHERE name = 'version'")[0][0]
    assert value('moodle_db_version{job="moodle"}') == pytest.approx(float(db_version))
    assert value('moodle_upgrade_pending{job="moodle"}') == 0


def test_postgresql_rules_and_dashboard_panels_have_data():
    alerts = {r["name"]: r for g in prom("rules", type="alert")["groups"] for r in g["rules"]}
    assert len(alerts) == 14
    assert 'pg_up{job="postgres"}' in alerts["MoodleDatabaseDown"]["query"]
    assert "pg_settings_max_connections" in alerts["MoodleDatabaseConnectionsNearLimit"]["query"]
    assert alerts["MoodleDatabaseConnectionsNearLimit"]["state"] == "inactive"  # 50 connections allowed, few used
    # every panel of the PostgreSQL dashboard and the overview's database panel return data on this stack
    exprs = [(n, t, e) for n, t, e in expressions(db_type="pgsql")
             if n == "postgresql.json" or (n == "moodle-overview.json" and t == "Database")]
    assert len(exprs) >= 8

    def empty():
        return [(n, t, e) for n, t, e in exprs if not prom("query", query=e)["result"]]

    # rate() panels need two scrapes of the exporter inside their window: a stack deployed a minute ago may
    # not have them yet (a CI run failed here right after the deployment); wait, then name what stays empty.
    with contextlib.suppress(AssertionError):
        wait_for("every panel to return data", lambda: not empty(), timeout=180)
    assert empty() == []


def test_exporter_passwords_are_files_not_environment_or_logs():
    secrets = {name: (SECRETS / name).read_text().strip()
               for name in ("monitoring_postgres_exporter_db_password", "monitoring_moodle_metrics_db_password")}
    assert all(len(s) == 32 for s in secrets.values())
    env = json.loads(run(["docker", "inspect", "--format", "{{json .Config.Env}}", EXPORTER]).stdout)
    assert "DATA_SOURCE_PASS_FILE=/run/monitoring-secrets/monitoring_postgres_exporter_db_password" in env
    for container in (EXPORTER, METRICS, DB):
        inspect = run(["docker", "inspect", container]).stdout.decode()
        proc = run(["docker", "logs", container])
        logs = proc.stdout.decode() + proc.stderr.decode()
        for name, secret in secrets.items():
            assert secret not in inspect, (container, name)
            assert secret not in logs, (container, name)
    # the entry point drops from root (to copy the secret) to the exporter's own user
    assert run(["docker", "exec", EXPORTER, "stat", "-c", "%U", "/proc/1"]).stdout.decode().strip() == "prometheus"


def test_post_deploy_is_idempotent_and_repairs_a_changed_password():
    _, out = playbook("../tests/pg/monitoring_post_deploy.yml", timeout=600)
    assert "changed=0" in out.split("PLAY RECAP")[-1], out[-2000:]
    psql("ALTER ROLE postgres_exporter PASSWORD 'changed-behind-our-back'")
    _, out = playbook("../tests/pg/monitoring_post_deploy.yml", timeout=600)
    assert "changed=1" in out.split("PLAY RECAP")[-1], out[-2000:]
    secret = (SECRETS / "monitoring_postgres_exporter_db_password").read_text().strip()
    assert secret not in out, "the password must not be in the Ansible output"
    # the repaired password is the one the exporter uses: a fresh connection (after a restart) works
    run(["docker", "restart", EXPORTER])
    assert wait_for("pg_up == 1 after the restart", lambda: value('pg_up{job="postgres"}') == 1, timeout=90)


def test_database_down_raises_the_alert_and_it_clears():
    started = time.time()
    run(["docker", "stop", DB])
    try:
        def pending_or_firing():
            return [a for a in prom("alerts")["alerts"] if a["labels"]["alertname"] == "MoodleDatabaseDown"
                    and a["state"] in ("pending", "firing")]
        alert = wait_for("MoodleDatabaseDown", pending_or_firing, timeout=120)
        assert alert[0]["labels"]["instance"] == "postgres-exporter:9187"
        # With the db container gone its name no longer resolves and the exporter's scrape times out (up == 0);
        # a server that refuses connections gives pg_up == 0 instead.  Either branch raises the alert.
        assert 0 in (value('max(up{job="postgres"})'), value('max(pg_up{job="postgres"})'))
    finally:
        run(["docker", "start", DB])
    assert wait_for("pg_up == 1 again", lambda: value('pg_up{job="postgres"}') == 1, timeout=120)
    wait_for("the alert to clear", lambda: not [a for a in prom("alerts")["alerts"]
                                                 if a["labels"]["alertname"] == "MoodleDatabaseDown"], timeout=90)
    FIGURES.append(f"postgresql stand-in: db stopped -> MoodleDatabaseDown pending -> cleared {time.time() - started:.1f}s")
