"""Shared helpers of the day-2 tests (backup, restore, drill, upgrade, migration) on Docker Compose.

The site under test runs the Moodle STAND-IN (tests/fixtures/moodle-standin, not Moodle) in the
Compose project ``day2`` on its own ports (inventory: tests/day2/inventory), deployed by the same
playbook users run (playbooks/compose.yml).  Every check reads real state: table dumps from
MariaDB, file hashes from the moodledata volume, restic's repository, HTTP from Apache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
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
ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")
# The engine of this checkout, run by its name with the host's Python (standard library only), as
# the moodle-backup launcher runs it.
ENGINE = ["/usr/bin/python3", "-s", "-m", "ansible_collections.moodle.platform.plugins.module_utils._backup.cli"]
ENGINE_ENV = {**os.environ, "PYTHONPATH": str(ROOT / "collections")}
# Cron bookkeeping the stand-in's cron writes while the site runs (not restored data).
CRON_TABLE = "mdl_standin_cron_runs"
CRON_CONFIG = ("lastcronstart", "lastcroninterval")


def run(argv, check=True, env=None, timeout=1800, input_bytes=None):
    proc = subprocess.run(argv, capture_output=True, env=env, timeout=timeout, input=input_bytes, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{argv[:4]} failed ({proc.returncode}):\n{proc.stdout.decode()[-3000:]}\n"
                             f"{proc.stderr.decode()[-3000:]}")
    return proc


def playbook(name, *extra, check=True, env_extra=None, timeout=1800):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_FORCE_COLOR="false",
               PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    env.update(env_extra or {})
    args = [ANSIBLE_PLAYBOOK, str(ROOT / "playbooks" / name), "-i", str(INVENTORY)]
    if INVENTORY_OVERLAY:
        args += ["-i", str(ROOT / INVENTORY_OVERLAY)]
    for item in extra:
        args += ["-e", item if isinstance(item, str) else json.dumps(item)]
    proc = subprocess.run(args, capture_output=True, cwd=ROOT, env=env, timeout=timeout, check=False)
    out = proc.stdout.decode() + proc.stderr.decode()
    print(f"--- ansible-playbook {name} {extra} -> {proc.returncode}\n{out[-4000:]}")
    if check and proc.returncode != 0:
        raise AssertionError(f"playbook {name} failed:\n{out[-6000:]}")
    return proc.returncode, out


def engine(*args, config=ENGINE_CONFIG, check=True):
    proc = run([*ENGINE, "--config", str(config), *args], check=False, env=ENGINE_ENV)
    data = json.loads(proc.stdout.decode() or "null")
    if check and proc.returncode != 0:
        raise AssertionError(f"engine {args} failed: {proc.stdout.decode()} {proc.stderr.decode()[-2000:]}")
    return data


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
    """{path: sha256} of the dataroot, without what Moodle rebuilds (and the maintenance marker)."""
    script = ("cd /var/www/moodledata && find . -type f ! -path './cache/*' ! -path './localcache/*' "
              "! -path './temp/*' ! -path './sessions/*' ! -path './trashdir/*' ! -path './lock/*' "
              "! -name climaintenance.html -print0 | sort -z | xargs -0 -r sha256sum")
    out = run(["docker", "exec", WEB, "sh", "-c", script]).stdout.decode()
    return {line[66:]: line[:64] for line in out.splitlines()}


def container_running(name):
    proc = run(["docker", "inspect", "--format", "{{.State.Running}} {{.State.StartedAt}} {{.Config.Image}}", name],
               check=False)
    if proc.returncode != 0:
        return None
    running, started, image = proc.stdout.decode().split()
    return {"running": running == "true", "started": started, "image": image}


def http_status(url):
    proc = run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url], check=False)
    return proc.stdout.decode()


def stop_cron():
    run(["docker", "stop", CRON], check=False)


def destroy_stack():
    run(["docker", "compose", "-p", PROJECT, "down", "-v", "--remove-orphans"], check=False, timeout=300)


def deploy_stack():
    playbook("compose.yml", {"moodle_image_source_type": "local",
                             "moodle_image_source_path": str(ROOT / "build" / "moodle-standin")}, timeout=3600)


@pytest.fixture(scope="session")
def stack():
    """A freshly deployed stand-in site in project day2 or DAY2_PROJECT (removed with its volumes afterwards).

    DAY2_REUSE_STACK=1 keeps a running day2 stack (for working on the tests)."""
    web = container_running(WEB)
    if not (os.environ.get("DAY2_REUSE_STACK") == "1" and web and web["running"]):
        destroy_stack()
        # a fresh restic repository and engine state: the tests reason about what the repository holds
        for path in (f"/var/backups/moodle-platform/{PROJECT}-test", f"/var/lib/moodle-platform/backup/{PROJECT}",
                     f"/var/tmp/moodle-platform-{PROJECT}-test"):  # noqa: S108 - the test-only path the scenario uses
            shutil.rmtree(path, ignore_errors=True)
        deploy_stack()
    assert container_running(WEB)["running"]
    yield
    if os.environ.get("DAY2_KEEP_STACK") != "1":
        destroy_stack()


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
    script = ("set -e; cd /var/www/moodledata; for i in $(seq 1 40); do "
              "head -c $((i * 997)) /dev/urandom > /tmp/f; h=$(sha1sum /tmp/f | cut -c1-40); "
              "d=filedir/$(echo $h | cut -c1-2)/$(echo $h | cut -c3-4); mkdir -p $d; mv /tmp/f $d/$h; done; "
              "mkdir -p cache/junk localcache temp sessions && echo rebuilt > cache/junk/x && echo s > sessions/s1; "
              "chown -R www-data:www-data /var/www/moodledata")
    run(["docker", "exec", WEB, "sh", "-c", script])
    # The restore turns maintenance off, which records maintenance_enabled=0: start from that state.
    run(["docker", "exec", "--user", "www-data", WEB, "php", "/var/www/moodle/admin/cli/maintenance.php", "--disable"])
    return True
