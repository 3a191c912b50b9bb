# Copyright: moodle.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Migration of an existing site (PRD 12): its old SQL dump, old moodledata, old config.php."""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from ansible_collections.moodle.platform.plugins.module_utils._backup.common import EngineError, log, sql_ident, tail
from ansible_collections.moodle.platform.plugins.module_utils._backup.restore import clean_leftovers, swap_in
from ansible_collections.moodle.platform.plugins.module_utils._backup.sites import db_exec_argv, db_query, volume_mountpoint
from ansible_collections.moodle.platform.plugins.module_utils._backup.stream import DumpScanner, pipe_through

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


def cmd_inspect_migration(config, args):  # pylint: disable=unused-argument
    info = inspect_source(args.source, args.config_php)
    dump = Path(args.dump)
    if not dump.is_file():
        raise EngineError(f"database dump {dump} does not exist")
    with open(dump, "rb") as handle:
        head = handle.read(2)
    info["dump"] = {"path": str(dump), "compressed": head == b"\x1f\x8b", "size_bytes": dump.stat().st_size}
    info["prefix"] = info["config"].get("prefix", "mdl_")
    return info


def cmd_import_db(config, args):
    dump = Path(args.dump)
    name = sql_ident(args.database)
    with open(dump, "rb") as handle:
        compressed = handle.read(2) == b"\x1f\x8b"
    log(f"importing {dump} into database {name} of container {args.db_container[:12]}")
    db_query(config, args.db_container, f"DROP DATABASE IF EXISTS `{name}`; CREATE DATABASE `{name}` "
             "DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    with tempfile.TemporaryFile() as sink_log:
        sink = subprocess.Popen(db_exec_argv(config, args.db_container, "mariadb",  # pylint: disable=consider-using-with
                                             f"--user={config['db_admin_user']}", "--default-character-set=utf8mb4",
                                             name, interactive=True),
                                stdin=subprocess.PIPE, stdout=sink_log, stderr=sink_log)
        opener = gzip.open if compressed else open
        scanner = DumpScanner()
        try:
            with opener(dump, "rb") as source:
                pipe_through(source, sink.stdin, scanner)
        finally:
            sink.stdin.close()
        if sink.wait() != 0:
            sink_log.seek(0)
            raise EngineError(f"importing the dump failed: {tail(sink_log.read())}")
    return {"database": name, "bytes": scanner.size, "tables": len(scanner.rows),
            "rows": sum(scanner.rows.values())}


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
