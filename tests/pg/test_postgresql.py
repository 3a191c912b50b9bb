"""PostgreSQL as the site's database (issue 14): install, login, backup -> destroy everything -> restore
equality, a restore drill and the refusal of a dump of the other database, on the Moodle STAND-IN (not
Moodle) deployed with ``moodle_db_type: pgsql`` (tests/pg/conftest.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from conftest import (
    CRON,
    DB,
    ENGINE_CONFIG,
    FIGURES,
    PROJECT,
    WEB,
    WEB_URL,
    engine,
    moodledata_hashes,
    playbook,
    psql,
    table_dumps,
)
from stacktest import container_running, destroy_everything, http_status, login, run

pytestmark = pytest.mark.usefixtures("seeded")
SECRETS = Path.home() / ".moodle-platform" / "pgci-test" / "secrets" / f"localhost-{PROJECT}"
STATE = {}


def _inspect(name, template):
    return run(["docker", "inspect", "--format", template, name]).stdout.decode().strip()


def test_site_installed_on_postgresql_and_login_works():
    assert "/postgresql:" in container_running(DB)["image"]
    assert psql("SHOW server_version")[0][0].startswith("17.")
    # installed by moodle_site through the stand-in's install_database.php, as the site's user
    owners = {r[0] for r in psql("SELECT tableowner FROM pg_tables WHERE schemaname = 'public'")}
    assert owners == {"moodle"}
    assert psql("SELECT value FROM mdl_config WHERE name = 'release'")[0][0]
    config_php = run(["docker", "exec", WEB, "cat", "/var/www/moodle/config.php"]).stdout.decode()
    assert "$CFG->dbtype    = 'pgsql';" in config_php and "dbcollation" not in config_php
    status, page = login(WEB_URL, (SECRETS / "moodle_admin_password").read_text().strip())
    assert status == 303 and "logged in as admin" in page
    # a wrong password is refused (the check can fail)
    assert login(WEB_URL, "wrong")[0] == 200
    # passwords reach the containers as secret files only
    for name in (WEB, DB):
        env = _inspect(name, "{{json .Config.Env}}")
        for secret in ("db_password", "db_root_password"):
            assert (SECRETS / secret).read_text().strip() not in env
    # Starts as root with the capabilities privileges.yml lists; the entry point drops to postgres itself.
    assert _inspect(DB, "{{.Config.User}}") == "0"
    server_user = run(["docker", "exec", DB, "stat", "-c", "%U", "/proc/1"]).stdout.decode().strip()
    assert server_user == "postgres", "the PostgreSQL server must not run as root"


def test_backup_destroy_everything_restore_is_identical():
    run(["docker", "stop", CRON], check=False)  # cron bookkeeping would change rows between the snapshots
    before_tables, before_files = table_dumps(), moodledata_hashes()
    assert "mdl_pg_course" in before_tables and len(before_files) >= 40

    started = time.time()
    playbook("backup.yml")
    STATE["backup_seconds"] = time.time() - started
    manifest = engine("show", "latest")
    assert manifest["database"]["engine"] == "postgresql"
    assert manifest["database"]["server_version"].startswith("17.")
    assert manifest["database"]["tables"]["mdl_pg_course"] == 300
    assert manifest["database"]["tables"]["mdl_user"] == int(psql("SELECT COUNT(*) FROM mdl_user")[0][0])
    assert set(manifest["database"]["tables"]) == set(before_tables)
    STATE["backup_id"] = manifest["backup_id"]

    destroy_everything(PROJECT)

    started = time.time()
    playbook("restore.yml", f"restore_backup_id={manifest['backup_id']}", "restore_start_cron=false")
    STATE["restore_seconds"] = time.time() - started
    assert table_dumps() == before_tables
    assert moodledata_hashes() == before_files
    assert {r[0] for r in psql("SELECT tableowner FROM pg_tables WHERE schemaname = 'public'")} == {"moodle"}
    # sequences come back too: a new row gets the next id, not a duplicate
    psql("SET ROLE moodle; INSERT INTO mdl_pg_course (fullname) VALUES ('after restore')")
    assert psql("SELECT MAX(id) FROM mdl_pg_course")[0][0] == "301"
    assert http_status(WEB_URL + "/login/index.php") == "200"
    FIGURES.append(f"postgresql stand-in: backup {STATE['backup_seconds']:.1f}s "
                   f"(dump {manifest['database']['size_bytes']} bytes, {manifest['database']['table_count']} tables, "
                   f"{manifest['moodledata']['file_count']} files), restore onto an empty host "
                   f"{STATE['restore_seconds']:.1f}s")


def test_restore_drill_passes():
    started = time.time()
    playbook("restore_drill.yml")
    report = json.loads(Path(f"/var/lib/moodle-platform/backup/{PROJECT}/drills/last.json").read_text())
    assert report["success"] is True, report
    names = {c["check"] for c in report["checks"]}
    assert {"table count equals the manifest", "moodledata sample present with recorded hashes"} <= names
    assert any(c["check"] == "row count of mdl_user" and c["ok"] for c in report["checks"])
    assert any(c["check"].startswith("web answers 200") and c["ok"] for c in report["checks"])
    leftovers = run(["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={PROJECT}-drill"])
    assert leftovers.stdout.decode().strip() == ""
    FIGURES.append(f"postgresql stand-in: restore drill {time.time() - started:.1f}s")


def test_dump_of_the_other_database_is_refused_before_anything_changes(tmp_path):
    """The engine of a MariaDB site is given this PostgreSQL backup: verify and restore-db refuse it."""
    config = json.loads(ENGINE_CONFIG.read_text())
    config.update(db_type="mariadb", state_dir=str(tmp_path / "state"))
    mariadb_config = tmp_path / "config.json"
    mariadb_config.write_text(json.dumps(config))
    before = table_dumps()
    result = engine("verify", "latest", config=mariadb_config, check=False)
    assert result["ok"] is False
    assert [p["code"] for p in result["problems"]] == ["database_type"]
    assert "PostgreSQL dump but this site runs MariaDB" in result["problems"][0]["message"]
    refused = engine("restore-db", "latest", "--db-container", DB, config=mariadb_config, check=False)
    assert "PostgreSQL dump but this site runs MariaDB" in json.dumps(refused)
    assert table_dumps() == before, "nothing may change"


def test_unknown_database_type_is_refused_before_any_change():
    code, out = playbook("compose.yml", "moodle_db_type=oracle", check=False, timeout=300)
    assert code != 0 and "moodle_db_type must be mariadb" in out and "oracle" in out
    assert "TASK [moodle.platform.moodle_image" not in out, "refused before the first image build"


def test_scheduler_container_backs_up_postgresql_over_the_network():
    """backup_scheduler=container on a PostgreSQL site (a host without systemd, the `auto` choice here): the
    scheduler container holds the backup image's pg_dump (postgresql-client 17) and the same direct-mode config
    its daily loop uses; a backup started in it now dumps over the backend network as the site's user."""
    scheduler = f"{PROJECT}-backup-scheduler"
    before = {b["backup_id"] for b in engine("list")["backups"]}
    playbook("backup.yml", "backup_scheduler=container", "backup_run_now=false")
    try:
        assert container_running(scheduler)["running"]
        config = json.loads(run(["docker", "exec", scheduler, "cat", "/etc/moodle-backup/config.json"]).stdout)
        assert (config["db_type"], config["db_port"], config["access"]) == ("pgsql", 5432, "direct")
        started = time.time()
        run(["docker", "exec", scheduler, "moodle-backup", "--config", "/etc/moodle-backup/config.json", "backup"])
        new = sorted({b["backup_id"] for b in engine("list")["backups"]} - before)
        assert len(new) == 1, new
        manifest = engine("show", new[0])
        assert manifest["database"]["engine"] == "postgresql" and manifest["platform"] == "compose"
        assert manifest["database"]["tables"]["mdl_user"] == int(psql("SELECT COUNT(*) FROM mdl_user")[0][0])
        assert engine("verify", new[0])["ok"] is True
        FIGURES.append(f"postgresql stand-in: backup in the scheduler container {time.time() - started:.1f}s")
    finally:
        playbook("backup.yml", "backup_scheduler=none", "backup_run_now=false")
    assert run(["docker", "inspect", scheduler], check=False).returncode != 0, "scheduler removed with scheduler=none"
