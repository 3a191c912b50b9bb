"""Shared helpers of the day-2 tests (backup, restore, drill, upgrade, migration) on Docker Compose.

The site under test runs the Moodle STAND-IN (tests/fixtures/moodle-standin, not Moodle) in the
Compose project ``day2`` on its own ports (inventory: tests/day2/inventory), deployed by the same
playbook users run (playbooks/compose.yml).  Every check reads real state: table dumps from
MariaDB, file hashes from the moodledata volume, restic's repository, HTTP from Apache.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

import stacktest
from stacktest import ANSIBLE_PLAYBOOK, ENGINE, ENGINE_ENV, ROOT, container_running, http_status, run  # noqa: F401 - used by the day-2 modules

INVENTORY = ROOT / "tests" / "day2" / "inventory"
# A second stand-in site of the same shape, for a module that needs a stack of its own (the MariaDB upgrade
# test: `make db-upgrade-test`): DAY2_PROJECT names it, DAY2_INVENTORY_OVERLAY adds an inventory whose
# group_vars override this one's (project, ports, paths, database version).
PROJECT = os.environ.get("DAY2_PROJECT", "day2")
INVENTORY_OVERLAY = os.environ.get("DAY2_INVENTORY_OVERLAY", "")
WEB_PORT = int(os.environ.get("DAY2_WEB_PORT", "8180"))
# The day-2 stack runs on the default MariaDB; the upgrade module needs the dbup stack, never this one.
collect_ignore = ["test_database_upgrade.py"] if PROJECT == "day2" else []
PROJECT_DIR = Path("/opt/moodle-platform") / PROJECT
ENGINE_CONFIG = Path("/var/lib/moodle-platform/backup") / PROJECT / "config.json"
TEXTFILE_DIR = Path("/var/lib/moodle-platform/backup/day2-textfile")
WEB, DB, CRON = f"{PROJECT}-web-1", f"{PROJECT}-db-1", f"{PROJECT}-cron-1"
INVENTORIES = [INVENTORY, *([ROOT / INVENTORY_OVERLAY] if INVENTORY_OVERLAY else [])]
# Cron bookkeeping the stand-in's cron writes while the site runs (not restored data).
CRON_TABLE = "mdl_standin_cron_runs"
CRON_CONFIG = ("lastcronstart", "lastcroninterval")


def playbook(name, *extra, check=True, env_extra=None, timeout=1800):
    return stacktest.playbook(INVENTORIES, name, *extra, check=check, env_extra=env_extra, timeout=timeout)


def engine(*args, config=ENGINE_CONFIG, check=True):
    return stacktest.engine(config, *args, check=check)


def sql(query, database="moodle"):
    argv = ["docker", "exec", "--user", "0", DB, "sh", "-c",
            'MYSQL_PWD="$(cat /run/secrets/db_root_password)" exec mariadb -uroot --batch --skip-column-names '
            f'{database} -e "$0"', query]
    return [line.split("\t") for line in run(argv).stdout.decode().splitlines()]


def table_dumps(normalise_cron=False):
    """{table: sha256 of its rows}, from mariadb-dump with one ordered INSERT per row (any server series)."""
    tables = [r[0] for r in sql("SHOW TABLES")]
    result = {}
    for table in tables:
        argv = ["docker", "exec", "--user", "0", DB, "sh", "-c",
                'MYSQL_PWD="$(cat /run/secrets/db_root_password)" exec mariadb-dump -uroot --skip-dump-date '
                '--skip-extended-insert --order-by-primary --no-create-info --compact --hex-blob moodle "$0"', table]
        # only the rows: 11.x's dump also wraps them in SET AUTOCOMMIT ... COMMIT lines, 10.11's does not
        rows = [line for line in run(argv).stdout.decode().splitlines() if line.startswith("INSERT INTO ")]
        if normalise_cron and table == CRON_TABLE:
            rows = []
        if normalise_cron and table == "mdl_config_plugins":
            rows = [r for r in rows if not any(f"'{name}'" in r for name in CRON_CONFIG)]
        result[table] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
    return result


def moodledata_hashes():
    return stacktest.moodledata_hashes(WEB)


def stop_cron():
    run(["docker", "stop", CRON], check=False)


def destroy_stack():
    stacktest.destroy_project(PROJECT)


def deploy_stack():
    stacktest.deploy_standin(INVENTORIES)


@pytest.fixture(scope="session")
def stack():
    """A freshly deployed stand-in site in project day2 or DAY2_PROJECT (removed with its volumes afterwards).

    DAY2_REUSE_STACK=1 keeps a running day2 stack (for working on the tests)."""
    # a fresh restic repository and engine state: the tests reason about what the repository holds
    yield from stacktest.fresh_stack(
        PROJECT, INVENTORIES,
        (f"/var/backups/moodle-platform/{PROJECT}-test", f"/var/lib/moodle-platform/backup/{PROJECT}",
         f"/var/tmp/moodle-platform-{PROJECT}-test"),  # noqa: S108 - the test-only path the scenario uses
        reuse=os.environ.get("DAY2_REUSE_STACK") == "1", keep=os.environ.get("DAY2_KEEP_STACK") == "1")


@pytest.fixture(scope="session")
def seeded(stack):
    """Data that must survive: rows with quotes, newlines, unicode and binary; files in filedir."""
    if [r[0] for r in sql("SHOW TABLES LIKE 'mdl_day2_course'")]:
        return True
    sql("CREATE TABLE IF NOT EXISTS mdl_day2_course (id BIGINT AUTO_INCREMENT PRIMARY KEY, fullname VARCHAR(255), "
        "summary LONGTEXT, blobdata LONGBLOB) CHARSET utf8mb4")
    values = []
    for i in range(1, 301):
        values.append(f"('Course {i} \\'quoted\\' (paren), comma', 'Line one\\nline two ñ 漢字 {i}', "
                      f"UNHEX(SHA2('{i}', 256)))")
    students = ",".join(f"('student{i}', 'x', 's{i}@example.com')" for i in range(1, 51))
    sql("INSERT INTO mdl_day2_course (fullname, summary, blobdata) VALUES " + ",".join(values))  # noqa: S608 - fixed test data
    sql("INSERT INTO mdl_user (username, password, email) VALUES " + students)  # noqa: S608 - fixed test data
    stacktest.seed_moodledata(WEB)
    return True
