"""Unit tests of the migration's dump handling (plugins/module_utils/_backup/migrate.py): which database wrote a
dump, the refusals before anything changes, the owner/privilege filter of plain pg_dump SQL; and the restore's
refusal of a PostgreSQL dump from a newer major version (manifest.db_server_problems).

The headers below are written by hand after what pg_dump 17 and mariadb-dump 11 write; tests/pg
(test_postgresql_day2.py) loads real pg_dump output of the stand-in site."""

import gzip

import pytest
from ansible_collections.moodle.platform.plugins.module_utils._backup.common import EngineError
from ansible_collections.moodle.platform.plugins.module_utils._backup.manifest import db_server_problems
from ansible_collections.moodle.platform.plugins.module_utils._backup.migrate import (
    PgOwnerFilter,
    check_dump_fits,
    describe_dump,
    pg_archive_versions,
)

PG_PLAIN = b"""--
-- PostgreSQL database dump
--

\\restrict abc123

-- Dumped from database version 17.6 (Debian 17.6-1.pgdg13+1)
-- Dumped by pg_dump version 17.6 (Debian 17.6-1.pgdg13+1)

SET statement_timeout = 0;
CREATE TABLE public.mdl_user (
    id bigint NOT NULL,
    username character varying(100)
);
ALTER TABLE public.mdl_user OWNER TO bn_moodle;
COPY public.mdl_user (id, username) FROM stdin;
1\tadmin
2\tGRANT ALL ON x TO y;
3\tALTER TABLE public.mdl_user OWNER TO nobody;
\\.
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT ALL ON SCHEMA public TO bn_moodle;
ALTER DEFAULT PRIVILEGES FOR ROLE bn_moodle IN SCHEMA public GRANT ALL ON TABLES TO bn_moodle;
ALTER SEQUENCE public.mdl_user_id_seq OWNED BY public.mdl_user.id;
"""
MARIADB = b"""/*M!999999\\- enable the sandbox mode */
-- MariaDB dump 10.19-11.8.3-MariaDB, for debian-linux-gnu (x86_64)
CREATE TABLE `mdl_user` (`id` bigint(10) NOT NULL);
INSERT INTO `mdl_user` VALUES (1);
"""


def _int(value, size=4):
    return bytes([1 if value < 0 else 0]) + abs(value).to_bytes(size, "little")


def _str(text):
    return _int(-1) if text is None else _int(len(text.encode())) + text.encode()


def custom_archive(version=(1, 16, 0), server="17.6 (Debian 17.6-1.pgdg13+1)", dumper="17.6 (Debian 17.6-1.pgdg13+1)"):
    """The header of a pg_dump -Fc archive (pg_backup_archiver.c WriteHead), followed by junk."""
    head = b"PGDMP" + bytes([*version, 4, 8, 1])
    head += b"\x01" if version >= (1, 15) else _int(-1)  # compression: algorithm byte / level int
    for field in (0, 30, 2, 5, 11, 126, 0):  # creation time
        head += _int(field)
    return head + _str("moodle") + _str(server) + _str(dumper) + b"\x00" * 64


@pytest.mark.parametrize("compressed", [False, True])
def test_describe_dump_reads_a_plain_pg_dump_header(tmp_path, compressed):
    path = tmp_path / ("moodle.sql.gz" if compressed else "moodle.sql")
    path.write_bytes(gzip.compress(PG_PLAIN) if compressed else PG_PLAIN)
    info = describe_dump(path)
    assert (info["engine"], info["format"], info["compressed"]) == ("postgresql", "plain", compressed)
    assert info["server_version"].startswith("17.6 ") and info["pg_dump_version"].startswith("17.6 ")


@pytest.mark.parametrize("version", [(1, 14, 0), (1, 15, 0), (1, 16, 0)])
def test_describe_dump_reads_a_custom_archive_header(tmp_path, version):
    path = tmp_path / "moodle.dump"
    path.write_bytes(custom_archive(version, server="15.8", dumper="16.4"))
    info = describe_dump(path)
    assert (info["engine"], info["format"]) == ("postgresql", "custom")
    assert (info["server_version"], info["pg_dump_version"]) == ("15.8", "16.4")


def test_pg_archive_versions_refuses_a_truncated_header():
    with pytest.raises(EngineError, match="truncated"):
        pg_archive_versions(custom_archive()[:30])


def test_describe_dump_recognises_mariadb_and_refuses_unknown_files(tmp_path):
    (tmp_path / "m.sql").write_bytes(MARIADB)
    assert describe_dump(tmp_path / "m.sql")["engine"] == "mariadb"
    (tmp_path / "x.sql").write_bytes(b"hello\n")
    with pytest.raises(EngineError, match="cannot tell what wrote"):
        describe_dump(tmp_path / "x.sql")
    with pytest.raises(EngineError, match="does not exist"):
        describe_dump(tmp_path / "missing.sql")


def test_a_dump_of_the_other_database_is_refused_both_ways(tmp_path):
    (tmp_path / "pg.sql").write_bytes(PG_PLAIN)
    (tmp_path / "m.sql").write_bytes(MARIADB)
    with pytest.raises(EngineError, match=r"is a PostgreSQL dump \(pg_dump\) but the target site runs MariaDB"):
        check_dump_fits(describe_dump(tmp_path / "pg.sql"), "mariadb")
    with pytest.raises(EngineError, match=r"is a MariaDB dump .* but the target site runs PostgreSQL"):
        check_dump_fits(describe_dump(tmp_path / "m.sql"), "postgresql", 17)


def test_a_dump_from_a_newer_postgresql_major_is_refused(tmp_path):
    (tmp_path / "pg.sql").write_bytes(PG_PLAIN)
    dump = describe_dump(tmp_path / "pg.sql")
    check_dump_fits(dump, "postgresql", 17)
    check_dump_fits(dump, "postgresql", 18)
    with pytest.raises(EngineError, match=r"pg_dump 17\.6 .* PostgreSQL 17\.6 .* newer than the target server's "
                                          r"PostgreSQL 15.*Nothing was changed"):
        check_dump_fits(dump, "postgresql", 15)
    # a pg_dump 17 of a PostgreSQL 15 server: pg_dump 17 writes SQL only 17 understands
    (tmp_path / "c.dump").write_bytes(custom_archive(server="15.8", dumper="17.2"))
    with pytest.raises(EngineError, match=r"pg_dump 17\.2 from a PostgreSQL 15\.8 server"):
        check_dump_fits(describe_dump(tmp_path / "c.dump"), "postgresql", 15)


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_owner_filter_drops_owner_and_privilege_statements_outside_copy_data(chunk):
    owners = PgOwnerFilter()
    out = b"".join(owners.feed(PG_PLAIN[i:i + chunk]) for i in range(0, len(PG_PLAIN), chunk)) + owners.close()
    assert owners.dropped == 4
    assert b"OWNER TO bn_moodle" not in out and b"GRANT ALL ON SCHEMA" not in out and b"REVOKE" not in out
    assert b"ALTER DEFAULT PRIVILEGES" not in out
    # COPY data that looks like such a statement is data; OWNED BY is not an owner statement
    assert b"2\tGRANT ALL ON x TO y;\n" in out and b"3\tALTER TABLE public.mdl_user OWNER TO nobody;\n" in out
    assert b"ALTER SEQUENCE public.mdl_user_id_seq OWNED BY public.mdl_user.id;\n" in out
    assert out.count(b"\n") == PG_PLAIN.count(b"\n") - 4


def test_restore_refuses_a_postgresql_dump_of_a_newer_major():
    manifest = {"backup_id": "20261205T020000Z-pgci",
                "database": {"engine": "postgresql", "server_version": "17.6 (Debian 17.6-1.pgdg13+1)"}}
    assert db_server_problems(manifest, 17) == [] and db_server_problems(manifest, None) == []
    problems = db_server_problems(manifest, 15)
    assert [p.code for p in problems] == ["database_version"] and not problems[0].forceable
    assert "dumped from PostgreSQL 17.6 (Debian 17.6-1.pgdg13+1) but the target server runs PostgreSQL 15" in \
        problems[0].message
    manifest["database"].update(engine="mariadb", server_version="11.8.3-MariaDB")
    assert db_server_problems(manifest, 10) == []
