"""Day-2 operations on the PostgreSQL stand-in site (issue 14), on the one pgci deployment of tests/pg (after
test_postgresql.py): the Moodle upgrade A -> B with an injected failure (automatic rollback: the safety
pg_dump restored, every table's rows as before); the restore's refusal of a dump from a newer PostgreSQL major;
the migration of an existing PostgreSQL site (pg_dump plain SQL in a Bitnami layout, and a pg_dump -Fc archive)
with the dump inspection its preflight and dry run show, and its refusals.  What is the same on both databases
(the successful upgrade, the playbooks' dry runs, upgrade.php after a migration) is tested on MariaDB in
tests/day2; here only the steps that touch PostgreSQL.

The site is the Moodle STAND-IN (tests/fixtures/moodle-standin), not Moodle: its upgrade.php writes the
version rows and the injected partial change, nothing of Moodle's real upgrade steps.  The "old site" is a
pg_dump of this very site taken while it runs variant A, its owner statements rewritten to a role that does
not exist here (bn_moodle, as on a Bitnami server) - real pg_dump 17 output, not a site of another host.
Doctored inputs are named as such where they are made: a dump header claiming pg_dump 99, a manifest claiming
a PostgreSQL 99 server, a MariaDB dump header.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import shutil
import sys
import time
from pathlib import Path

import pytest
from ansible_collections.moodle.platform.plugins.module_utils._backup import manifest as bm

from conftest import CRON, DB, ENGINE_CONFIG, FIGURES, INVENTORY, PROJECT, WEB, WEB_URL, engine, playbook, psql
from stacktest import ROOT, container_running, http_status, moodledata_hashes, run

pytestmark = pytest.mark.usefixtures("seeded")
SCRATCH = Path("/var/tmp/moodle-platform-pg-day2")  # noqa: S108 - fixed path, root-only test host
VERSION_A = "2024100700.00"  # the stand-in's variant A; B is 2024100706.00
CRON_TABLE, CRON_CONFIG = "mdl_standin_cron_runs", ("lastcronstart", "lastcroninterval")


def rows(table, where=""):
    """sha256 of a table's rows in primary-key order (COPY text format), read by the postgres superuser."""
    query = f'COPY (SELECT * FROM "{table}" {where} ORDER BY 1) TO STDOUT'  # noqa: S608 - names from pg_tables
    out = run(["docker", "exec", "--user", "postgres", DB, "psql", "-X", "-q", "--dbname=moodle", "-c", query]).stdout
    return hashlib.sha256(out).hexdigest()


def table_state(normalise_cron=False):
    """{table: sha256 of its rows}; with ``normalise_cron`` without what a cron run writes (its run log,
    lastcronstart/lastcroninterval): the rollback starts cron again, as the MariaDB day-2 test allows."""
    tables = [r[0] for r in psql("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")]
    state = {}
    for table in tables:
        if normalise_cron and table == CRON_TABLE:
            state[table] = "(cron runs)"
        elif normalise_cron and table == "mdl_config_plugins":
            names = ", ".join(f"'{name}'" for name in CRON_CONFIG)
            state[table] = rows(table, f"WHERE name NOT IN ({names})")
        else:
            state[table] = rows(table)
    return state


def stop_cron():
    run(["docker", "stop", CRON], check=False)


def site_version():
    return psql("SELECT value FROM mdl_config WHERE name = 'version'")[0][0]


@pytest.fixture(scope="module")
def old_site():
    """An existing PostgreSQL site to migrate, taken while pgci runs variant A: Bitnami layout
    (moodle/config.php + moodledata/), a plain pg_dump (gzip) whose objects belong to bn_moodle, a pg_dump -Fc
    archive, and the table state both dumps hold."""
    if SCRATCH.exists():
        shutil.rmtree(SCRATCH)
    bitnami = SCRATCH / "bitnami"
    (bitnami / "moodle").mkdir(parents=True)
    (bitnami / "moodle" / "config.php").write_text(
        "<?php\nunset($CFG);\nglobal $CFG;\n$CFG = new stdClass();\n$CFG->dbtype = 'pgsql';\n"
        "$CFG->dbname = 'bitnami_moodle';\n$CFG->dbuser = 'bn_moodle';\n$CFG->prefix = 'mdl_';\n"
        "$CFG->wwwroot = 'http://old-moodle.example.org';\n$CFG->dataroot = '/bitnami/moodledata';\n"
        "require_once(__DIR__ . '/lib/setup.php');\n")
    run(["docker", "cp", f"{WEB}:/var/www/moodledata", str(bitnami / "moodledata")])
    (bitnami / "moodledata" / "filedir" / "zz" / "zz").mkdir(parents=True)
    (bitnami / "moodledata" / "filedir" / "zz" / "zz" / "migrated-marker").write_text("from the old site\n")
    assert site_version() == VERSION_A
    stop_cron()
    psql("SET ROLE moodle; INSERT INTO mdl_user (username, password, email) "
         "VALUES ('migrated_user', 'x', 'm@example.com')")
    state = table_state()
    pg_dump = ["docker", "exec", "--user", "postgres", DB, "pg_dump"]
    plain = run([*pg_dump, "moodle"]).stdout
    custom = run([*pg_dump, "--format=custom", "moodle"]).stdout
    psql("DELETE FROM mdl_user WHERE username = 'migrated_user'")
    assert plain.count(b" OWNER TO moodle;\n") >= len(state), "the old site's dump names an owner for each table"
    plain = plain.replace(b" OWNER TO moodle;\n", b" OWNER TO bn_moodle;\n")  # a role this server does not have
    with gzip.open(SCRATCH / "moodle.sql.gz", "wb") as handle:
        handle.write(plain)
    (SCRATCH / "moodle.dump").write_bytes(custom)
    run(["chmod", "-R", "a+rX", str(SCRATCH)])
    return {"bitnami": bitnami, "plain": SCRATCH / "moodle.sql.gz", "custom": SCRATCH / "moodle.dump",
            "plain_bytes": plain, "state": state}


@pytest.fixture(scope="module")
def image_b():
    """The stand-in's variant B image for this site (config.php with dbtype pgsql), built by
    moodle.platform.moodle_image like any Moodle image."""
    out = SCRATCH / "image-b.json"
    started = time.time()
    run([str(Path(sys.executable).parent / "ansible-playbook"), str(ROOT / "tests/day2/build_standin_b.yml"),
         "-i", str(INVENTORY), "-e", f"day2_image_b_out={out}"], timeout=1800)
    FIGURES.append(f"postgresql day-2: stand-in image B built in {time.time() - started:.1f}s")
    return json.loads(out.read_text())["ref"]


def test_upgrade_with_injected_failure_rolls_back_every_row(old_site, image_b):
    assert old_site["state"]
    image_a = container_running(WEB)["image"]
    assert image_a != image_b
    stop_cron()
    before_tables, before_files = table_state(normalise_cron=True), moodledata_hashes(WEB)
    started = time.time()
    code, out = playbook("upgrade.yml", f"upgrade_image={image_b}",
                         {"upgrade_extra_env": {"MOODLE_STANDIN_UPGRADE_FAIL": "1"}}, check=False)
    seconds = time.time() - started
    assert code != 0
    assert "FAILED at step 'upgrade.php --non-interactive'" in out
    assert "Injected upgrade failure" in out and "Rolled back" in out
    assert container_running(WEB)["image"] == image_a
    assert site_version() == VERSION_A
    assert psql("SELECT COUNT(*) FROM mdl_config WHERE name = 'standin_upgrade_partial'")[0][0] == "0"
    stop_cron()
    assert table_state(normalise_cron=True) == before_tables
    assert moodledata_hashes(WEB) == before_files
    assert {r[0] for r in psql("SELECT tableowner FROM pg_tables WHERE schemaname = 'public'")} == {"moodle"}
    assert http_status(WEB_URL + "/login/index.php") == "200"
    FIGURES.append(f"postgresql day-2: upgrade A -> B with injected failure and rollback {seconds:.1f}s")


def _restic(config, *args, input_bytes=None):
    env = {"RESTIC_REPOSITORY": config["repository"], "RESTIC_PASSWORD_FILE": config["password_file"],
           "PATH": "/usr/bin:/bin"}
    return run(["restic", *args], env=env, input_bytes=input_bytes).stdout


def test_restore_refuses_a_dump_of_a_newer_postgresql_major_and_changes_nothing():
    """A copy of the repository gets a DOCTORED manifest: the latest backup as if dumped from PostgreSQL 99."""
    target = SCRATCH / "newer-major"
    config = json.loads(ENGINE_CONFIG.read_text())
    shutil.copytree(config["repository"], target / "repo")
    config.update(repository=str(target / "repo"), state_dir=str(target / "state"), offsite_repository="")
    config_path = target / "config.json"
    config_path.write_text(json.dumps(config))
    manifest = engine("show", "latest", config=config_path)
    when = bm.parse_time(manifest["started"]) + dt.timedelta(seconds=1)
    manifest.update(backup_id=bm.new_backup_id(when, PROJECT), started=bm.isoformat(when))
    manifest["database"]["server_version"] = "99.0 (doctored by the test)"
    _restic(config, "backup", "--host", PROJECT, "--time", when.strftime("%Y-%m-%d %H:%M:%S"), "--stdin",
            "--stdin-filename", bm.MANIFEST_FILENAME, "--tag",
            f"{bm.TAG_PLATFORM},backup:{manifest['backup_id']},{bm.KIND_TAGS['manifest']}",
            input_bytes=bm.dumps(manifest).encode())
    stop_cron()
    before_web, before_tables = container_running(WEB), table_state()
    code, out = playbook("restore.yml", f"restore_backup_id={manifest['backup_id']}",
                         f"restore_engine_config={config_path}", check=False)
    assert code != 0 and "nothing was changed" in out
    assert "dumped from PostgreSQL 99.0 (doctored by the test) but the target server runs PostgreSQL 17" in out
    # the engine's restore-db (what the drill runs) refuses it too, before it drops the database
    refused = engine("restore-db", manifest["backup_id"], "--db-container", DB, config=config_path, check=False)
    assert refused["failed"] and "but the target server runs PostgreSQL 17" in refused["msg"]
    assert container_running(WEB)["started"] == before_web["started"], "the web container was not touched"
    assert table_state() == before_tables


def test_migration_inspection_reads_the_postgresql_dump_and_changes_nothing(old_site):
    """The engine's inspect-migration - what migrate.yml's preflight runs and its dry run prints (the playbook's
    dry run itself is database-neutral and tested on MariaDB, tests/day2) - on the plain pg_dump in a Bitnami
    layout: writer, versions, the old site's settings; nothing changes."""
    stop_cron()
    before_web, before_tables = container_running(WEB), table_state()
    report = engine("inspect-migration", "--source", str(old_site["bitnami"]), "--dump", str(old_site["plain"]),
                    "--db-container", DB)
    assert not report.get("failed"), report
    assert report["layout"] == "bitnami" and report["config"]["wwwroot"] == "http://old-moodle.example.org"
    dump = report["dump"]
    assert (dump["engine"], dump["writer"], dump["compressed"]) == ("postgresql", "pg_dump", True), dump
    assert str(dump["server_version"]).startswith("17.") and str(dump["pg_dump_version"]).startswith("17."), dump
    assert str(report["target"]["server_major"]) == "17", report["target"]
    assert container_running(WEB)["started"] == before_web["started"]
    assert table_state() == before_tables


def test_migration_refuses_a_newer_pg_dump_and_a_dump_of_the_other_database(old_site, tmp_path):
    """The playbook with a dump whose header claims pg_dump 99 (DOCTORED: the site's plain dump); the engine's
    inspect-migration (what the preflight runs) with a MariaDB dump's first lines (DOCTORED), and with this
    PostgreSQL dump given to a MariaDB site's engine."""
    newer = tmp_path / "newer.sql"
    header, body = old_site["plain_bytes"].split(b"\nSET ", 1)
    header = header.replace(b"-- Dumped by pg_dump version 17.", b"-- Dumped by pg_dump version 99.")
    newer.write_bytes(header + b"\nSET " + body)
    mariadb = tmp_path / "mariadb.sql"
    mariadb.write_bytes(b"-- MariaDB dump 10.19-11.8.3-MariaDB, for debian-linux-gnu (x86_64)\n"
                        b"CREATE TABLE `mdl_user` (`id` bigint(10) NOT NULL);\n")
    run(["chmod", "a+rx", str(tmp_path)])
    run(["chmod", "a+r", str(newer), str(mariadb)])
    stop_cron()
    before_web, before_tables = container_running(WEB), table_state()
    code, out = playbook("migrate.yml", f"migrate_project={PROJECT}", f"migrate_db_dump={newer}",
                         f"migrate_moodledata={old_site['bitnami']}", "migrate_dry_run=false", "migrate_overwrite=true",
                         check=False)
    assert code != 0 and "was written by pg_dump 99." in out and "Nothing was changed" in out
    assert "newer than the target server's PostgreSQL 17" in out
    assert "TASK [moodle.platform.migrate : Safety backup" not in out, "refused in the preflight"
    source = ["--source", str(old_site["bitnami"])]
    refused = engine("inspect-migration", *source, "--dump", str(mariadb), "--db-container", DB, check=False)
    assert refused["failed"]
    assert "is a MariaDB dump (mysqldump/mariadb-dump) but the target site runs PostgreSQL" in refused["msg"]
    config = json.loads(ENGINE_CONFIG.read_text())
    config.update(db_type="mariadb", state_dir=str(tmp_path / "state"))
    (tmp_path / "mariadb-config.json").write_text(json.dumps(config))
    refused = engine("inspect-migration", *source, "--dump", str(old_site["plain"]),
                     config=tmp_path / "mariadb-config.json", check=False)
    assert refused["failed"] and "is a PostgreSQL dump (pg_dump) but the target site runs MariaDB" in refused["msg"]
    assert container_running(WEB)["started"] == before_web["started"]
    assert table_state() == before_tables


def test_migration_of_a_postgresql_bitnami_site(old_site):
    backups_before = len(engine("list")["backups"])
    started = time.time()
    playbook("migrate.yml", f"migrate_project={PROJECT}", f"migrate_db_dump={old_site['plain']}",
             f"migrate_moodledata={old_site['bitnami']}", "migrate_dry_run=false", "migrate_overwrite=true")
    seconds = time.time() - started
    assert len(engine("list")["backups"]) == backups_before + 1, "a safety backup of the replaced site"
    assert psql("SELECT COUNT(*) FROM mdl_user WHERE username = 'migrated_user'")[0][0] == "1"
    # the dump was taken on A and the site runs A (the upgrade to B was rolled back): no upgrade was pending
    assert site_version() == VERSION_A
    # the old server's owner (bn_moodle) is not carried over: everything belongs to the site's user
    assert {r[0] for r in psql("SELECT tableowner FROM pg_tables WHERE schemaname = 'public'")} == {"moodle"}
    assert psql("SELECT COUNT(*) FROM pg_roles WHERE rolname = 'bn_moodle'")[0][0] == "0"
    assert int(psql("SELECT COUNT(*) FROM mdl_pg_course")[0][0]) >= 300
    files = moodledata_hashes(WEB)
    assert any(p.endswith("filedir/zz/zz/migrated-marker") for p in files)
    owner = run(["docker", "exec", WEB, "stat", "-c", "%U", "/var/www/moodledata/filedir/zz/zz/migrated-marker"])
    assert owner.stdout.decode().strip() == "www-data"
    assert http_status(WEB_URL + "/login/index.php") == "200"
    FIGURES.append(f"postgresql day-2: migration of a Bitnami-layout site (plain pg_dump, "
                   f"{old_site['plain'].stat().st_size} bytes gzip) with safety backup {seconds:.1f}s")


def test_import_of_a_custom_format_archive_gives_back_every_row(old_site):
    """The engine's import-db (what the migrate role runs after its preflight) with the pg_dump -Fc archive:
    every table's rows equal those of the site the archive was taken from."""
    run(["docker", "stop", WEB, CRON])
    started = time.time()
    try:
        result = engine("import-db", "--dump", str(old_site["custom"]), "--db-container", DB)
        seconds = time.time() - started
        assert result["format"] == "custom" and result["tables"] == len(old_site["state"])
        assert result["table_owners"] == ["moodle"]
        assert table_state() == old_site["state"]
        assert {r[0] for r in psql("SELECT tableowner FROM pg_tables WHERE schemaname = 'public'")} == {"moodle"}
    finally:
        run(["docker", "start", WEB])
    FIGURES.append(f"postgresql day-2: import of a pg_dump -Fc archive ({old_site['custom'].stat().st_size} bytes) "
                   f"{seconds:.1f}s")
