#!/usr/bin/env python3
"""Benchmark (not a test): the backup engine on PostgreSQL vs MariaDB, for the SAME stand-in data, in one run.

``make bench-db-backup`` deploys the Moodle STAND-IN (tests/fixtures/moodle-standin, not Moodle) twice with the
normal playbooks - Compose project ``dbbench-pg`` (``moodle_db_type: pgsql``) and ``dbbench-mdb`` (MariaDB, the
default) - fills both with identical rows (``BENCH_DB_ROWS`` rows of ~1 KB text + 32 bytes of binary each, 1,000
users) and the same 40 moodledata files, takes one backup with ``backup.yml`` (which also writes the engine's
config), then alternates the engine's own steps on the two sites ``BENCH_DB_ROUNDS`` times: ``backup``,
``restore-db`` and ``restore-files``.  Each restore is checked (row count and total text length equal what was
seeded).  Prints the median seconds of each step per database, the ratio PostgreSQL / MariaDB, the dump sizes and
the load average before and after (this machine is shared: the ratio from one run is the figure, not the
seconds).  ``BENCH_KEEP=1`` leaves both stacks running.

What it does not measure: real Moodle data (the stand-in's few tables plus one large table), databases beyond
a few hundred MB, the playbooks' own overhead (maintenance mode, stopping web/cron: see the day-2 figures).
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import yaml

import stacktest
from stacktest import ROOT, run

ROWS = int(os.environ.get("BENCH_DB_ROWS", "50000"))
ROUNDS = int(os.environ.get("BENCH_DB_ROUNDS", "3"))
KEEP = os.environ.get("BENCH_KEEP") == "1"
WORK = ROOT / "build" / "bench-db"
HOME = Path.home() / ".moodle-platform"

SITES = {
    "postgresql": {"project": "dbbench-pg", "db_type": "pgsql", "port": 8594},
    "mariadb": {"project": "dbbench-mdb", "db_type": "mariadb", "port": 8598},
}

PG_SEED = """
SET ROLE moodle;
CREATE TABLE mdl_bench_course (id BIGSERIAL PRIMARY KEY, fullname VARCHAR(255), summary TEXT, blobdata BYTEA);
INSERT INTO mdl_bench_course (fullname, summary, blobdata)
  SELECT 'Course ' || i || ' ''quoted''', repeat(md5(i::text), 32), sha256(i::text::bytea)
  FROM generate_series(1, ROWS) AS i;
INSERT INTO mdl_user (username, password, email)
  SELECT 'bench' || i, 'x', 'b' || i || '@example.com' FROM generate_series(1, 1000) AS i;
"""

MARIADB_SEED = """
CREATE TABLE mdl_bench_course (id BIGINT AUTO_INCREMENT PRIMARY KEY, fullname VARCHAR(255), summary LONGTEXT,
  blobdata VARBINARY(32)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
INSERT INTO mdl_bench_course (fullname, summary, blobdata)
  SELECT CONCAT('Course ', seq, ' ''quoted'''), REPEAT(MD5(seq), 32), UNHEX(SHA2(seq, 256)) FROM seq_1_to_ROWS;
INSERT INTO mdl_user (username, password, email)
  SELECT CONCAT('bench', seq), 'x', CONCAT('b', seq, '@example.com') FROM seq_1_to_1000;
"""

CHECK_SQL = "SELECT COUNT(*), SUM(LENGTH(summary)) FROM mdl_bench_course"


def _inventory(name: str, site: dict) -> Path:
    """tests/pg's inventory with this site's project, ports, secrets, repository, state and caches."""
    base = yaml.safe_load((ROOT / "tests/pg/inventory/group_vars/all/main.yml").read_text())
    project, port = site["project"], site["port"]
    state = f"/var/lib/moodle-platform/backup/{project}"
    base.update({
        "moodle_db_type": site["db_type"], "compose_stack_project_name": project,
        "compose_stack_web_port": port, "compose_stack_dev_adminer_port": port + 1,
        "compose_stack_https_port": port + 2, "compose_stack_dev_mailpit_port": port + 3,
        "compose_stack_wwwroot": f"http://127.0.0.1:{port}",
        "compose_stack_secrets_local_dir": str(HOME / f"{project}-bench" / "secrets"),
        "moodle_site_shortname": project, "moodle_site_fullname": f"Backup benchmark on {name} (stand-in)",
        "backup_project": project, "restore_project": project, "upgrade_project": project,
        "backup_repository": f"/var/backups/moodle-platform/{project}/restic",
        "backup_state_dir": state, "backup_textfile_dir": f"{state}-textfile",
        "backup_password_local_dir": str(HOME / f"{project}-bench"),
        "moodle_image_cache_dir": "/var/cache/moodle-platform/dbbench/moodle_image",
        "service_images_cache_dir": "/var/cache/moodle-platform/dbbench/service_images",
    })
    if site["db_type"] != "pgsql":
        del base["compose_stack_postgresql_settings"]
    for key in [k for k in base if k.startswith("monitoring_")]:  # pg-test's overlay: not part of this benchmark
        del base[key]
    inventory = WORK / name
    (inventory / "group_vars" / "all").mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "tests/pg/inventory/hosts.yml", inventory / "hosts.yml")
    (inventory / "group_vars" / "all" / "main.yml").write_text(yaml.safe_dump(base, sort_keys=False))
    return inventory


def _sql(name: str, site: dict, query: str) -> list[list[str]]:
    db = f"{site['project']}-db-1"
    if site["db_type"] == "pgsql":
        argv = ["docker", "exec", "--user", "postgres", db, "psql", "-X", "-q", "--no-align", "--tuples-only",
                "--field-separator=\t", "-v", "ON_ERROR_STOP=1", "--dbname=moodle", "-c", query]
    else:
        argv = ["docker", "exec", db, "mariadb", "--batch", "--skip-column-names", "moodle", "-e", query]
    return [line.split("\t") for line in run(argv).stdout.decode().splitlines()]


def _timed(fn, *args) -> float:
    started = time.monotonic()
    fn(*args)
    return time.monotonic() - started


def main() -> int:
    print(f"load average before: {os.getloadavg()}")
    inventories, configs, expected = {}, {}, {}
    for name, site in SITES.items():
        project = site["project"]
        inventories[name] = _inventory(name, site)
        stacktest.destroy_project(project)
        for path in (f"/var/backups/moodle-platform/{project}", f"/var/lib/moodle-platform/backup/{project}",
                     f"/var/lib/moodle-platform/backup/{project}-textfile"):
            shutil.rmtree(path, ignore_errors=True)
        started = time.monotonic()
        stacktest.deploy_standin([inventories[name]])
        print(f"{name}: deployed in {time.monotonic() - started:.0f} s")
        seed = PG_SEED if site["db_type"] == "pgsql" else MARIADB_SEED
        _sql(name, site, seed.replace("ROWS", str(ROWS)))
        stacktest.seed_moodledata(f"{project}-web-1")
        expected[name] = _sql(name, site, CHECK_SQL)
        run(["docker", "stop", f"{project}-cron-1"], check=False)  # nothing changes rows between the steps
        stacktest.playbook([inventories[name]], "backup.yml")
        configs[name] = Path(f"/var/lib/moodle-platform/backup/{project}/config.json")
    if expected["postgresql"] != expected["mariadb"]:
        raise SystemExit(f"the two sites hold different data: {expected}")

    times = {name: {"backup": [], "restore-db": [], "restore-files": []} for name in SITES}
    sizes = {}
    for round_no in range(1, ROUNDS + 1):
        order = list(SITES) if round_no % 2 else list(reversed(SITES))
        for name in order:
            site, config = SITES[name], configs[name]
            project = site["project"]
            times[name]["backup"].append(_timed(stacktest.engine, config, "backup"))
            manifest = stacktest.engine(config, "show", "latest")
            sizes[name] = manifest["database"]["size_bytes"]
            backup_id = manifest["backup_id"]
            _sql(name, site, "DELETE FROM mdl_bench_course WHERE id % 2 = 0")  # the restore must bring them back
            times[name]["restore-db"].append(_timed(stacktest.engine, config, "restore-db", backup_id,
                                                    "--db-container", f"{project}-db-1"))
            times[name]["restore-files"].append(_timed(stacktest.engine, config, "restore-files", backup_id,
                                                       "--volume", f"{project}_moodledata"))
            if _sql(name, site, CHECK_SQL) != expected[name]:
                raise SystemExit(f"{name}: the restored table differs from what was seeded")
        print(f"round {round_no} done")

    print(f"\nBackup engine, same stand-in data ({ROWS} rows of ~1 KB + 1,000 users + 40 files), "
          f"median of {ROUNDS} alternating rounds:")
    print(f"{'step':<15}{'PostgreSQL s':>14}{'MariaDB s':>12}{'PG / MariaDB':>14}")
    for step in ("backup", "restore-db", "restore-files"):
        pg, mdb = (statistics.median(times[n][step]) for n in ("postgresql", "mariadb"))
        print(f"{step:<15}{pg:>14.2f}{mdb:>12.2f}{pg / mdb:>14.2f}")
    print(f"{'dump bytes':<15}{sizes['postgresql']:>14}{sizes['mariadb']:>12}"
          f"{sizes['postgresql'] / sizes['mariadb']:>14.2f}")
    print(f"load average after: {os.getloadavg()}")
    if not KEEP:
        for site in SITES.values():
            stacktest.destroy_project(site["project"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
