"""Unit tests of the pure parts of the moodle-backup engine (plugins/module_utils/_backup/)."""

import datetime as dt
import gzip
import hashlib
import json
import tarfile
from pathlib import Path

import pytest
from ansible_collections.moodle.platform.plugins.module_utils._backup.cli import main, parser
from ansible_collections.moodle.platform.plugins.module_utils._backup.common import EngineError, redact
from ansible_collections.moodle.platform.plugins.module_utils._backup.config import direct_config, load_config
from ansible_collections.moodle.platform.plugins.module_utils._backup.migrate import inspect_source, parse_config_php
from ansible_collections.moodle.platform.plugins.module_utils._backup.restore import keep_environment, swap_in
from ansible_collections.moodle.platform.plugins.module_utils._backup.schedule import next_run
from ansible_collections.moodle.platform.plugins.module_utils._backup.sites import (
    ComposeSite,
    DirectSite,
    db_engine,
    pg_major,
)
from ansible_collections.moodle.platform.plugins.module_utils._backup.stream import DumpScanner, PgDumpScanner, scanner_for

# What `mariadb-dump` (MariaDB 10.11) writes: one row per line, strings with escaped quotes/newlines,
# parentheses and "),(" inside strings, hex blobs.
DUMP = b"""-- MariaDB dump 10.19
DROP TABLE IF EXISTS `mdl_course`;
CREATE TABLE `mdl_course` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB;
LOCK TABLES `mdl_course` WRITE;
INSERT INTO `mdl_course` VALUES
(1,'Site (front page)','a\\'b),(c'),
(2,'Line\\none; two','x'),
(3,'tricky \\\\',0x28292C28);
UNLOCK TABLES;
CREATE TABLE `mdl_empty` (
  `id` bigint(20) NOT NULL
);
INSERT INTO `mdl_user` VALUES (1,'admin'),(2,'a(b)c');
"""


def test_parse_config_php_reads_old_site_settings():
    text = """<?php unset($CFG); $CFG = new stdClass();
$CFG->dbtype    = 'mariadb';
$CFG->prefix    = "m_";
$CFG->wwwroot   = 'https://old.example.org/moodle';
$CFG->dataroot  = '/bitnami/moodledata';
"""
    assert parse_config_php(text) == {"dbtype": "mariadb", "prefix": "m_",
                                      "wwwroot": "https://old.example.org/moodle",
                                      "dataroot": "/bitnami/moodledata"}


def test_inspect_source_recognises_layouts(tmp_path):
    bitnami = tmp_path / "bitnami"
    (bitnami / "moodle").mkdir(parents=True)
    (bitnami / "moodledata" / "filedir").mkdir(parents=True)
    (bitnami / "moodle" / "config.php").write_text("<?php $CFG->prefix = 'mdl_';")
    info = inspect_source(str(bitnami))
    assert info["layout"] == "bitnami" and info["dataroot"].endswith("moodledata") and info["config"]["prefix"] == "mdl_"
    plain = tmp_path / "plain"
    (plain / "filedir").mkdir(parents=True)
    assert inspect_source(str(plain))["layout"] == "plain"
    archive = tmp_path / "data.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(plain, arcname="moodledata")
    assert inspect_source(str(archive))["layout"] == "archive"
    with pytest.raises(EngineError, match="does not look like a moodledata"):
        inspect_source(str(tmp_path))
    with pytest.raises(EngineError, match="does not exist"):
        inspect_source(str(tmp_path / "nope"))
    dump = tmp_path / "x.sql.gz"
    with gzip.open(dump, "wb") as handle:
        handle.write(b"SELECT 1;")
    assert dump.read_bytes()[:2] == b"\x1f\x8b"


def test_next_run_picks_the_next_daily_time():
    now = dt.datetime(2026, 11, 24, 13, 0, tzinfo=dt.UTC)
    assert next_run(now, ["02:15", "13:30"]) == now.replace(minute=30)
    assert next_run(now, ["02:15"]) == dt.datetime(2026, 11, 25, 2, 15, tzinfo=dt.UTC)
    assert next_run(now, ["13:00"], delay=0) == dt.datetime(2026, 11, 25, 13, 0, tzinfo=dt.UTC)


def test_redact_hides_credentials_in_urls():
    assert redact("s3:https://key:secret@s3.example.org/bucket") == "s3:https://***@s3.example.org/bucket"


def test_load_config_reports_missing_keys(tmp_path):
    path = tmp_path / "c.json"
    path.write_text('{"project": "x"}')
    with pytest.raises(EngineError, match="lacks repository, password_file, state_dir, moodledata_volume"):
        load_config(str(path))
    with pytest.raises(EngineError, match="does not exist"):
        load_config(str(tmp_path / "missing.json"))


def test_cli_reports_bad_input_as_json_and_exit_1(tmp_path, capsys, monkeypatch):
    for name in ("MOODLE_DB_HOST", "MOODLE_DB_PASSWORD_FILE", "RESTIC_REPOSITORY"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"project": "x", "repository": str(tmp_path / "repo"), "state_dir": str(tmp_path),
                                  "password_file": str(tmp_path / "missing"), "moodledata_volume": "v"}))
    assert main(["--config", str(config), "list"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out == {"failed": True, "msg": f"restic password file {tmp_path / 'missing'} does not exist"}
    assert main(["backup", "--project", "Bad Name", "--repository", "r", "--dataroot", "/d"]) == 1
    assert "direct mode needs MOODLE_DB_HOST" in json.loads(capsys.readouterr().out)["msg"]


def test_direct_mode_repository_commands_need_no_site_settings(tmp_path, monkeypatch):
    """list/show/verify/init/forget only touch the repository: no dataroot or database settings asked for;
    backup/restore still refuse without them (the command line a Kubernetes Job or an admin types)."""
    for name in ("MOODLE_DB_HOST", "MOODLE_DB_PASSWORD_FILE", "RESTIC_REPOSITORY"):
        monkeypatch.delenv(name, raising=False)
    for command in (["list"], ["show", "latest"], ["verify", "latest"], ["init"], ["forget", "--dry-run"]):
        args = parser().parse_args([*command, "--project", "site", "--repository", str(tmp_path / "repo")])
        config = direct_config(args)
        assert config["project"] == "site" and config["repository"] == str(tmp_path / "repo")
    for command in (["backup"], ["restore"]):
        args = parser().parse_args([*command, "--project", "site", "--repository", str(tmp_path / "repo")])
        with pytest.raises(EngineError, match="direct mode needs --dataroot, MOODLE_DB_HOST, MOODLE_DB_PASSWORD_FILE"):
            direct_config(args)
    args = parser().parse_args(["list", "--project", "site"])
    with pytest.raises(EngineError, match="direct mode needs --repository or RESTIC_REPOSITORY"):
        direct_config(args)


# What `pg_dump --format=plain` (PostgreSQL 17) writes: COPY blocks, one row per line, newlines and tabs in
# values escaped, a quoted (upper-case) table name, a table without rows, a function body with "COPY".
PG_DUMP = b"""--
-- PostgreSQL database dump
--
SET statement_timeout = 0;
SELECT pg_catalog.set_config('search_path', '', false);
CREATE FUNCTION public.f() RETURNS void
    LANGUAGE sql
    AS $$ SELECT 1 $$;
CREATE TABLE public.mdl_course (
    id bigint NOT NULL,
    fullname character varying(255)
);
CREATE TABLE public."mdl_Odd" (
    id bigint NOT NULL
);
CREATE TABLE public.mdl_empty (
    id bigint NOT NULL
);
COPY public.mdl_course (id, fullname) FROM stdin;
1\tSite (front page)
2\tLine\\none; two\\tand a tab
3\t\\\\.not the end
\\.


COPY public."mdl_Odd" (id) FROM stdin;
7
\\.


COPY public.mdl_empty (id) FROM stdin;
\\.


SELECT pg_catalog.setval('public.mdl_course_id_seq', 3, true);
"""


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 20])
@pytest.mark.parametrize("scanner_class, dump, rows", [
    (DumpScanner, DUMP, {"mdl_course": 3, "mdl_empty": 0, "mdl_user": 2}),
    (PgDumpScanner, PG_DUMP, {"mdl_course": 3, "mdl_Odd": 1, "mdl_empty": 0}),
], ids=["mariadb-dump", "pg_dump"])
def test_dump_scanners_count_rows_whatever_the_chunking(chunk, scanner_class, dump, rows):
    scanner = scanner_class()
    for i in range(0, len(dump), chunk):
        scanner.feed(dump[i:i + chunk])
    scanner.close()
    assert scanner.rows == rows
    assert scanner.size == len(dump)
    assert scanner.sha.hexdigest() == hashlib.sha256(dump).hexdigest()


def test_scanner_for_picks_the_engine_s_dump_format():
    assert isinstance(scanner_for("postgresql"), PgDumpScanner)
    assert not isinstance(scanner_for("mariadb"), PgDumpScanner)


def test_postgresql_site_dumps_loads_and_queries_without_a_password():
    site = ComposeSite({"project": "pgci", "db_type": "pgsql", "db_name": "moodle", "db_user": "moodle",
                        "db_service": "db"})
    site.db = "pgci-db-1"
    dump = site.dump_argv()
    assert dump[:5] == ["docker", "exec", "--user", "postgres", "pgci-db-1"]
    assert dump[5] == "pg_dump" and dump[-1] == "moodle" and "--no-owner" in dump
    load = site.load_argv("moodle")
    assert load[:6] == ["docker", "exec", "-i", "--user", "postgres", "pgci-db-1"]
    assert load[load.index("-c") + 1] == 'SET ROLE "moodle"' and load[-2:] == ["-f", "-"]
    assert not any("password" in arg.lower() for arg in dump + load)


def test_engine_refuses_an_unknown_db_type(tmp_path):
    with pytest.raises(EngineError, match="mariadb or pgsql"):
        db_engine({"db_type": "oracle"})
    password = tmp_path / "pw"
    password.write_text("x")
    with pytest.raises(EngineError, match="mariadb or pgsql"):
        DirectSite({"db_type": "mysqli", "db_host": "db", "dataroot": str(tmp_path), "db_password_file": str(password)})


def _dataroot(root, files):
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def _tree(root):
    return {p.relative_to(root).as_posix(): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(("target_muc", "manifest_site", "expected"), [
    # the target's own cache configuration wins (another environment's Redis host and password)
    ({"muc/config.php": "target redis", "muc-bench.php": "target bench"}, ("other", "compose"),
     {"muc/config.php": "target redis", "muc-bench.php": "target bench"}),
    # a new host of the same site: the backup's is all there is
    ({}, ("site", "kubernetes"), {"muc/config.php": "backup redis", "muc-bench.php": "backup bench"}),
    # another site's or platform's, and the target has none: dropped (Moodle's default file stores)
    ({}, ("other", "kubernetes"), {}),
    ({}, ("site", "compose"), {}),
])
def test_restore_keeps_the_target_cache_configuration(tmp_path, target_muc, manifest_site, expected):
    mount = _dataroot(tmp_path / "moodledata", {"filedir/aa/old": "old content", **target_muc})
    restored = {"filedir/bb/new": "restored content", "muc/config.php": "backup redis", "muc-bench.php": "backup bench"}
    staging = _dataroot(mount / ".staging", restored)
    manifest = {"project": manifest_site[0], "platform": manifest_site[1]}
    done = keep_environment(mount, staging, manifest, {"project": "site", "platform": "kubernetes"})
    swap_in(mount, staging, mount / ".replaced")
    tree = _tree(mount)
    assert tree.pop("filedir/bb/new") == "restored content" and "filedir/aa/old" not in tree
    assert tree == expected
    assert len(done) == (2 if target_muc or manifest_site != ("site", "kubernetes") else 0), done


def test_direct_postgresql_reaches_the_server_with_a_password_file_only(tmp_path):
    password = tmp_path / "pw"
    password.write_text("se:cr\\et'\n")
    site = DirectSite({"db_type": "pgsql", "db_host": "db.example", "db_port": "5433", "db_name": "moodle",
                       "db_user": "moodle", "dataroot": str(tmp_path), "db_password_file": str(password)})
    try:
        load = site.load_argv("moodle")
        assert load[0] == "psql" and load[-2:] == ["-f", "-"]
        conninfo = load[1].removeprefix("--dbname=")
        assert "host='db.example'" in conninfo and "port='5433'" in conninfo and "dbname='moodle'" in conninfo
        assert "se:cr" not in " ".join(load)
        passfile = Path(site.secret_file())
        assert f"passfile='{passfile}'" in conninfo
        # libpq's format: host:port:database:user:password with ':' and '\\' escaped; 0600 or libpq ignores it
        assert passfile.read_text() == "*:*:*:*:se\\:cr\\\\et'\n"
        assert passfile.stat().st_mode & 0o077 == 0
    finally:
        site.close()
    assert not passfile.exists()


@pytest.mark.parametrize("text, major", [("170006", 17), ("150018", 15), ("90624", 9),
                                         ("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n", 15)])
def test_pg_major_reads_server_and_client_versions(text, major):
    assert pg_major(text) == major


def test_pg_major_refuses_what_it_cannot_read():
    with pytest.raises(EngineError, match="major version"):
        pg_major("17.6")
