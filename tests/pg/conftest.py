"""The PostgreSQL stand-in site: ``moodle_db_type: pgsql`` through the normal playbooks.

The site runs the Moodle STAND-IN (tests/fixtures/moodle-standin, not Moodle) on PostgreSQL in the
Compose project ``pgci`` on its own ports (inventory: tests/pg/inventory), deployed by playbooks/compose.yml.
Checks read real state: table contents from PostgreSQL (``COPY ... TO STDOUT``), file hashes from the
moodledata volume, the restic repository, HTTP from Apache.  Shared helpers: tests/stacktest.py.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

import stacktest
from stacktest import ROOT, run

INVENTORY = ROOT / "tests" / "pg" / "inventory"
PROJECT = "pgci"
WEB_URL = "http://127.0.0.1:8580"
ENGINE_CONFIG = Path("/var/lib/moodle-platform/backup") / PROJECT / "config.json"
STATE_PATHS = ("/var/backups/moodle-platform/pgci-test", "/var/lib/moodle-platform/backup/pgci",
               "/var/lib/moodle-platform/backup/pgci-textfile")
WEB, DB, CRON = f"{PROJECT}-web-1", f"{PROJECT}-db-1", f"{PROJECT}-cron-1"
FIGURES: list[str] = []  # measured figures, printed at the end of the run


def pytest_terminal_summary(terminalreporter):
    for line in FIGURES:
        terminalreporter.write_line(f"FIGURE {line}")


def playbook(name, *extra, check=True, timeout=1800):
    return stacktest.playbook([INVENTORY], name, *extra, check=check, timeout=timeout)


def engine(*args, config=ENGINE_CONFIG, check=True):
    return stacktest.engine(config, *args, check=check)


def psql(query, database="moodle"):
    """Rows of ``query``, as the postgres superuser over the container's socket (no password)."""
    argv = ["docker", "exec", "--user", "postgres", DB, "psql", "-X", "-q", "--no-align", "--tuples-only",
            "--field-separator=\t", "-v", "ON_ERROR_STOP=1", f"--dbname={database}", "-c", query]
    return [line.split("\t") for line in run(argv).stdout.decode().splitlines()]


def table_dumps():
    """{table: sha256 of its rows}, each table copied out in primary-key order (COPY text format)."""
    tables = [r[0] for r in psql("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")]
    result = {}
    for table in tables:
        out = run(["docker", "exec", "--user", "postgres", DB, "psql", "-X", "-q", "--dbname=moodle", "-c",
                   f'COPY (SELECT * FROM "{table}" ORDER BY 1) TO STDOUT']).stdout  # noqa: S608 - names from pg_tables
        result[table] = hashlib.sha256(out).hexdigest()
    return result


def moodledata_hashes():
    return stacktest.moodledata_hashes(WEB)


def destroy_stack():
    stacktest.destroy_project(PROJECT)


@pytest.fixture(scope="session")
def stack():
    """A freshly deployed PostgreSQL stand-in site in project pgci (removed with its volumes afterwards).

    PG_REUSE_STACK=1 keeps a running pgci stack (for working on the tests)."""
    yield from stacktest.fresh_stack(PROJECT, [INVENTORY], STATE_PATHS, reuse=os.environ.get("PG_REUSE_STACK") == "1",
                                     keep=os.environ.get("PG_KEEP_STACK") == "1")


@pytest.fixture(scope="session")
def seeded(stack):
    """Data that must survive: rows with quotes, newlines, tabs, backslashes, unicode and binary; files."""
    if psql("SELECT 1 FROM pg_tables WHERE tablename = 'mdl_pg_course'"):
        return True
    # Created by the site's user (as Moodle's tables are), so the restore must give it back to that user.
    psql("SET ROLE moodle; CREATE TABLE mdl_pg_course (id BIGSERIAL PRIMARY KEY, fullname VARCHAR(255), "
         "summary TEXT, blobdata BYTEA); "
         "INSERT INTO mdl_pg_course (fullname, summary, blobdata) SELECT "
         "'Course ' || i || ' ''quoted'' (paren), comma', E'Line one\\nline two\\ttab \\\\ ñ 漢字 ' || i, "
         "sha256(i::text::bytea) FROM generate_series(1, 300) AS i; "
         "INSERT INTO mdl_user (username, password, email) SELECT 'student' || i, 'x', 's' || i || '@example.com' "
         "FROM generate_series(1, 50) AS i")
    stacktest.seed_moodledata(WEB)
    return True
