# Copyright: moodle.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Migration of an existing site (PRD 12): its old SQL dump, old moodledata, old config.php.

The dump is of the database the target site runs: mysqldump/mariadb-dump SQL into a MariaDB site, pg_dump's
plain SQL or custom archive (``-Fc``) into a PostgreSQL site.  Which one a dump is, and for PostgreSQL which
pg_dump and server wrote it, is read from its header before anything changes.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
import tempfile
import zlib
from pathlib import Path

from ansible_collections.moodle.platform.plugins.module_utils._backup.common import CHUNK, EngineError, log, sql_ident, tail
from ansible_collections.moodle.platform.plugins.module_utils._backup.manifest import ENGINE_NAMES
from ansible_collections.moodle.platform.plugins.module_utils._backup.restore import clean_leftovers, swap_in
from ansible_collections.moodle.platform.plugins.module_utils._backup.sites import (
    ComposeSite,
    db_engine,
    pg_exec_argv,
    pg_server_major,
    volume_mountpoint,
)
from ansible_collections.moodle.platform.plugins.module_utils._backup.stream import DumpScanner, PgDumpScanner

CONFIG_ASSIGN_RE = re.compile(r"""\$CFG->(\w+)\s*=\s*(['"])(.*?)\2\s*;""")


def parse_config_php(text):
    """Plain string settings of an old config.php ($CFG->prefix, wwwroot, dataroot, dbname, ...)."""
    values = {}
    for name, _quote, value in CONFIG_ASSIGN_RE.findall(text):
        values.setdefault(name, value)
    return values


def inspect_source(source, config_php=None):
    """What a migration source holds: layout (bitnami|plain|archive), dataroot dir, config.php values."""
    src = Path(source)
    info = {"source": str(src), "layout": None, "dataroot": None, "config_php": None, "config": {}}
    if not src.exists():
        raise EngineError(f"migration source {src} does not exist")
    if src.is_file():
        if not re.search(r"\.(tar|tar\.gz|tgz|tar\.zst)$", src.name):
            raise EngineError(f"{src} is neither a directory nor a .tar/.tar.gz/.tgz archive of moodledata")
        info["layout"] = "archive"
    elif (src / "moodledata").is_dir() and (src / "moodle" / "config.php").is_file():
        # Bitnami's Moodle image keeps /bitnami/moodle (code + config.php) and /bitnami/moodledata.
        info.update(layout="bitnami", dataroot=str(src / "moodledata"), config_php=str(src / "moodle" / "config.php"))
    elif (src / "filedir").is_dir():
        info.update(layout="plain", dataroot=str(src))
    else:
        raise EngineError(f"{src} does not look like a moodledata directory (no filedir/) nor a Bitnami volume "
                          "(moodle/config.php + moodledata/)")
    if config_php:
        info["config_php"] = config_php
    if info["config_php"]:
        try:
            info["config"] = parse_config_php(Path(info["config_php"]).read_text(encoding="utf-8", errors="replace"))
        except OSError as exc:
            raise EngineError(f"cannot read {info['config_php']}: {exc.strerror}") from exc
    return info


# ---------------------------------------------------------------------------------------------
# the old site's database dump: which database wrote it, and which PostgreSQL
HEAD_BYTES = 64 * 1024
PG_CUSTOM_MAGIC = b"PGDMP"
PG_PLAIN_MARK = b"-- PostgreSQL database dump"
MYSQL_MARK_RE = re.compile(rb"^-- (MySQL|MariaDB) dump|^CREATE TABLE `|^INSERT INTO `", re.MULTILINE)
PG_FROM_RE = re.compile(rb"^-- Dumped from database version (.+)$", re.MULTILINE)
PG_BY_RE = re.compile(rb"^-- Dumped by pg_dump version (.+)$", re.MULTILINE)


def _dump_head(path, compressed):
    """The first bytes of the dump, decompressed (a truncated gzip stream is fine here)."""
    with open(path, "rb") as handle:
        raw = handle.read(HEAD_BYTES if not compressed else 4 * HEAD_BYTES)
    if not compressed:
        return raw
    try:
        return zlib.decompressobj(wbits=31).decompress(raw, HEAD_BYTES)
    except zlib.error as exc:
        raise EngineError(f"{path} starts like gzip but cannot be decompressed: {exc}") from exc


def pg_archive_versions(head):
    """(server version, pg_dump version) from the header of a pg_dump custom-format archive (``-Fc``).

    The header (pg_backup_archiver.c ReadHead): ``PGDMP``, format version (major, minor, revision), int and
    offset sizes, format; the compression (a byte from 1.15, an int before); the creation time (7 ints)
    and database name; from 1.10 the server's and pg_dump's version strings.  An int is a sign byte and
    ``int size`` little-endian bytes; a string is an int length (-1: none) and the bytes."""
    if not head.startswith(PG_CUSTOM_MAGIC) or len(head) < 11:
        raise EngineError("not a pg_dump custom-format archive (no PGDMP header)")
    vmaj, vmin, vrev, int_size, _off_size, _fmt = head[5:11]
    version = (vmaj, vmin, vrev)
    pos = 11

    def read_int():
        nonlocal pos
        if pos + 1 + int_size > len(head):
            raise EngineError("the pg_dump archive header is truncated")
        value = int.from_bytes(head[pos + 1:pos + 1 + int_size], "little")
        value = -value if head[pos] else value
        pos += 1 + int_size
        return value

    def read_str():
        nonlocal pos
        length = read_int()
        if length < 0:
            return None
        text = head[pos:pos + length].decode("utf-8", errors="replace")
        pos += length
        return text

    if version < (1, 10):
        return None, None  # PostgreSQL 8.x archives record no versions
    if version >= (1, 15):
        pos += 1  # compression algorithm
    else:
        read_int()  # compression level
    for _field in range(7):  # creation time
        read_int()
    read_str()  # database name
    return read_str(), read_str()


def describe_dump(path):
    """What wrote the dump at ``path``: engine (mariadb|postgresql), format (plain|custom), and for
    PostgreSQL the server and pg_dump versions its header records."""
    dump = Path(path)
    if not dump.is_file():
        raise EngineError(f"database dump {dump} does not exist")
    with open(dump, "rb") as handle:
        compressed = handle.read(2) == b"\x1f\x8b"
    head = _dump_head(dump, compressed)
    info = {"path": str(dump), "compressed": compressed, "size_bytes": dump.stat().st_size,
            "server_version": None, "pg_dump_version": None}
    if head.startswith(PG_CUSTOM_MAGIC):
        server, dumper = pg_archive_versions(head)
        info.update(engine="postgresql", format="custom", writer="pg_dump -Fc", server_version=server,
                    pg_dump_version=dumper)
    elif PG_PLAIN_MARK in head[:4096]:
        found_from, found_by = PG_FROM_RE.search(head), PG_BY_RE.search(head)
        info.update(engine="postgresql", format="plain", writer="pg_dump",
                    server_version=found_from.group(1).decode(errors="replace").strip() if found_from else None,
                    pg_dump_version=found_by.group(1).decode(errors="replace").strip() if found_by else None)
    elif MYSQL_MARK_RE.search(head):
        info.update(engine="mariadb", format="plain", writer="mysqldump/mariadb-dump")
    else:
        raise EngineError(f"cannot tell what wrote {dump}: it is neither a mysqldump/mariadb-dump SQL file nor a "
                          "pg_dump plain SQL file or custom-format archive (-Fc), gzip-compressed or not")
    return info


def _version_major(text):
    match = re.match(r"\s*(\d+)", text or "")
    return int(match.group(1)) if match else None


def check_dump_fits(dump, engine, server_major=None):
    """Refuse, before anything changes, a dump of the other database and a PostgreSQL dump written by a
    newer pg_dump (or taken from a newer server) than the target server's major version."""
    if dump["engine"] != engine:
        raise EngineError(
            f"{dump['path']} is a {ENGINE_NAMES[dump['engine']]} dump ({dump['writer']}) but the target site runs "
            f"{ENGINE_NAMES[engine]}: a dump of one database cannot be imported into the other (convert the old site "
            f"first, e.g. with Moodle's admin/tool/dbtransfer, or deploy the target with the old site's database). "
            "Nothing was changed.")
    if engine != "postgresql" or server_major is None:
        return
    newer = [major for major in (_version_major(dump["pg_dump_version"]), _version_major(dump["server_version"]))
             if major is not None and major > server_major]
    if newer:
        raise EngineError(
            f"{dump['path']} was written by pg_dump {dump['pg_dump_version'] or '(unknown)'} from a PostgreSQL "
            f"{dump['server_version'] or '(unknown)'} server, newer than the target server's PostgreSQL {server_major}: "
            f"a dump only loads into the same or a newer major version (deploy the target with PostgreSQL "
            f">= {max(newer)}, service_images_postgresql_version, or dump the old site with pg_dump {server_major}). "
            "Nothing was changed.")


def target_server_major(config, db_container):
    """The PostgreSQL major version of the target's running database container."""
    site = ComposeSite(config)
    site.db = db_container
    return pg_server_major(site)


def cmd_inspect_migration(config, args):
    info = inspect_source(args.source, args.config_php)
    engine = db_engine(config)
    dump = describe_dump(args.dump)
    server_major = None
    if engine == "postgresql":
        server_major = target_server_major(config, args.db_container) if args.db_container else args.target_pg_major
    check_dump_fits(dump, engine, server_major)
    info.update(dump=dump, target={"engine": engine, "server_major": server_major},
                prefix=info["config"].get("prefix", "mdl_"))
    return info


# ---------------------------------------------------------------------------------------------
# loading it
OWNER_PRIVILEGE_RE = re.compile(rb"^(ALTER [A-Z ]+ .+ OWNER TO .+|GRANT .+|REVOKE .+|ALTER DEFAULT PRIVILEGES .+);$")


class PgOwnerFilter:
    """A plain pg_dump stream without the old server's owners and privileges - single-line statements
    ``ALTER ... OWNER TO``, ``GRANT``, ``REVOKE``, ``ALTER DEFAULT PRIVILEGES`` outside COPY data - as
    ``pg_restore --no-owner --no-privileges`` does for archives: the old site's roles do not exist here,
    and every object is created by, and belongs to, the site's user."""

    def __init__(self):
        self._rest = b""
        self._in_copy = False
        self.dropped = 0

    def feed(self, block):
        lines = (self._rest + block).split(b"\n")
        self._rest = lines.pop()
        return b"".join(line + b"\n" for line in lines if self._keep(line))

    def close(self):
        rest, self._rest = self._rest, b""
        return rest if rest and self._keep(rest) else b""

    def _keep(self, line):
        if self._in_copy:
            self._in_copy = line != b"\\."
            return True
        if line.startswith(b"COPY ") and line.endswith(b"FROM stdin;"):
            self._in_copy = True
            return True
        if OWNER_PRIVILEGE_RE.match(line):
            self.dropped += 1
            return False
        return True


def _run_load(argv, dump, transform=None, scanner=None):
    """Stream the (decompressed) dump into ``argv``; EngineError with the loader's output on failure."""
    opener = gzip.open if dump["compressed"] else open
    with tempfile.TemporaryFile() as sink_log:
        sink = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=sink_log,  # pylint: disable=consider-using-with
                                stderr=sink_log)
        size = 0
        try:
            with opener(dump["path"], "rb") as source:
                for block in iter(lambda: source.read(CHUNK), b""):
                    size += len(block)
                    out = transform.feed(block) if transform else block
                    if scanner:
                        scanner.feed(out)
                    sink.stdin.write(out)
                if transform:
                    out = transform.close()
                    if scanner:
                        scanner.feed(out)
                    sink.stdin.write(out)
            if scanner:
                scanner.close()
        except BrokenPipeError:
            pass  # the loader stopped at an error: its output says which
        finally:
            try:
                sink.stdin.close()
            except BrokenPipeError:
                pass
        if sink.wait() != 0:
            sink_log.seek(0)
            raise EngineError(f"importing the dump failed: {tail(sink_log.read())}")
    return size


def cmd_import_db(config, args):
    engine = db_engine(config)
    dump = describe_dump(args.dump)
    site = ComposeSite(config)
    site.db = args.db_container
    check_dump_fits(dump, engine, target_server_major(config, args.db_container) if engine == "postgresql" else None)
    name = sql_ident(args.database)
    log(f"importing {dump['path']} ({dump['writer']}) into database {name} of container {args.db_container[:12]}")
    site.recreate_database(name)
    result = {"database": name, "format": dump["format"]}
    if engine == "mariadb":
        scanner = DumpScanner()
        result["bytes"] = _run_load(site.load_argv(name), dump, scanner=scanner)
        result.update(tables=len(scanner.rows), rows=sum(scanner.rows.values()))
        return result
    owner = sql_ident(config.get("db_user") or "moodle")
    if dump["format"] == "custom":
        argv = pg_exec_argv(site.db, "pg_restore", "--no-owner", "--no-privileges", f"--role={owner}",
                            "--exit-on-error", "--single-transaction", f"--dbname={name}", interactive=True)
        result["bytes"] = _run_load(argv, dump)
    else:
        scanner, owners = PgDumpScanner(), PgOwnerFilter()
        result["bytes"] = _run_load(site.load_argv(name), dump, transform=owners, scanner=scanner)
        result.update(rows=sum(scanner.rows.values()), owner_privilege_statements_skipped=owners.dropped)
    tables = site.query("SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'", name)
    result.update(tables=len(tables), table_owners=sorted({row[1] for row in tables}))
    log(f"imported {len(tables)} tables, owned by {', '.join(result['table_owners']) or '(none)'}")
    return result


def cmd_import_files(config, args):
    info = inspect_source(args.source)
    mountpoint = Path(volume_mountpoint(args.volume))
    staging, replaced = clean_leftovers(mountpoint)
    staging.mkdir()
    skip = set(config["excludes"])
    if info["layout"] == "archive":
        log(f"unpacking {args.source} into volume {args.volume}")
        proc = subprocess.run(["tar", "-xf", args.source, "-C", str(staging), "--numeric-owner"],
                              capture_output=True, check=False)
        if proc.returncode != 0:
            raise EngineError(f"unpacking {args.source} failed: {tail(proc.stderr)}")
        inner = list(staging.iterdir())
        # accept archives of the directory itself (moodledata/...) as well as of its content
        if len(inner) == 1 and inner[0].is_dir() and (inner[0] / "filedir").is_dir():
            for entry in inner[0].iterdir():
                entry.rename(staging / entry.name)
            inner[0].rmdir()
        if not (staging / "filedir").is_dir():
            raise EngineError(f"{args.source} holds no filedir/: not a moodledata archive")
        for name in skip:
            if (staging / name).exists():
                shutil.rmtree(staging / name)
    else:
        log(f"copying {info['dataroot']} ({info['layout']} layout) into volume {args.volume}")
        source = Path(info["dataroot"])
        for entry in source.iterdir():
            if entry.name in skip:
                continue
            if entry.is_dir():
                shutil.copytree(entry, staging / entry.name, symlinks=True)
            else:
                shutil.copy2(entry, staging / entry.name)
    # the web server user of the image owns the dataroot (Debian www-data = 33)
    for root, dirs, files in os.walk(staging):
        for name in dirs + files:
            os.lchown(os.path.join(root, name), args.uid, args.uid)
    swap_in(mountpoint, staging, replaced)
    count = sum(len(files) for _root, _dirs, files in os.walk(mountpoint))
    return {"volume": args.volume, "layout": info["layout"], "files": count}
