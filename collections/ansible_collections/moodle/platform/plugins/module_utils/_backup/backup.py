# Copyright: moodle.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A backup: database dump, moodledata, manifest (written last), status file, off-site copy.

* database: ``mariadb-dump --single-transaction`` or ``pg_dump`` (one snapshot) streamed through this
  process (sha256 + per-table row counts) into ``restic backup --stdin`` (restic compresses + dedups);
* moodledata: ``restic backup`` of the volume, Moodle's rebuildable caches excluded;
* manifest (docs/backup-manifest.md) written last, as its own snapshot;
* a Prometheus textfile status after every run.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

from ansible_collections.moodle.platform.plugins.module_utils._backup import manifest as bm
from ansible_collections.moodle.platform.plugins.module_utils._backup.common import (
    EngineError,
    log,
    redact,
    run_lock,
    tail,
    write_atomic,
)
from ansible_collections.moodle.platform.plugins.module_utils._backup.metrics import parse_textfile, render_backup_textfile
from ansible_collections.moodle.platform.plugins.module_utils._backup.restic import Restic
from ansible_collections.moodle.platform.plugins.module_utils._backup.retention import forget
from ansible_collections.moodle.platform.plugins.module_utils._backup.sites import site_for
from ansible_collections.moodle.platform.plugins.module_utils._backup.stream import pipe_through, scanner_for
from ansible_collections.moodle.platform.plugins.module_utils._backup.verify import verify


def cmd_init(config, args):  # pylint: disable=unused-argument
    return {"initialised": Restic(config).ensure_repository()}


def cmd_backup(config, args):
    restic = Restic(config)
    project = config["project"]
    with run_lock(config["state_dir"]):
        started = bm.utcnow()
        try:
            manifest, added = _backup(config, restic, started)
        except Exception:
            write_status(config, success=False)
            raise
        offsite = None
        if config.get("offsite_repository"):
            try:
                offsite = _copy_offsite(config, manifest["backup_id"])
            except EngineError as exc:
                write_status(config, success=False)
                raise EngineError(f"backup {manifest['backup_id']} is complete locally, but the off-site copy "
                                  f"failed: {exc}") from exc
        write_status(config, success=True, manifest=manifest, added=added)
        if args.forget:
            forget(config, restic, dry_run=False)
            if offsite:
                forget(config, Restic(config, offsite=True), dry_run=False)
        if config.get("drill_after_backup"):
            problems = verify(config, restic, manifest["backup_id"], force=True)[1]
            if problems:
                raise EngineError("post-backup verification failed: " + "; ".join(p["message"] for p in problems))
    log(f"backup {manifest['backup_id']} of {project} complete in {manifest['duration_seconds']}s")
    return manifest


def _backup(config, restic, started):
    project = config["project"]
    backup_id = bm.new_backup_id(started, project)
    when = started.strftime("%Y-%m-%d %H:%M:%S")
    base_tags = [bm.TAG_PLATFORM, f"backup:{backup_id}"]
    restic.ensure_repository()

    site = site_for(config)
    described = site.describe()  # first: "the site does not run" is the clearest error
    mountpoint = site.dataroot()
    moodle, stack, config_php = described["moodle"], described["stack"], described["config_php"]
    moodle.pop("major", None)
    image_ref, image_id = described["image"]["reference"], described["image"]["id"]
    engine = site.engine
    server_version = site.server_version()
    log(f"backup {backup_id} ({config['platform']}): Moodle {moodle['release']} ({moodle['version']}), image {image_ref}")

    # 1. database: mariadb-dump / pg_dump -> (sha256, row counts) -> restic --stdin
    dumper = "pg_dump" if engine == "postgresql" else "mariadb-dump"
    log(f"dumping the database ({dumper}, one consistent snapshot) into restic")
    dump_argv = site.dump_argv()
    # restic's and mariadb-dump's own output go to files: a full pipe must never stall the stream.
    with tempfile.TemporaryFile() as store_log, tempfile.TemporaryFile() as dump_log:
        dump = subprocess.Popen(dump_argv, stdout=subprocess.PIPE, stderr=dump_log)  # pylint: disable=consider-using-with
        store = restic.popen("backup", "--quiet", "--host", project, "--time", when, "--stdin", "--stdin-filename",
                             bm.DB_DUMP_FILENAME, "--tag", ",".join([*base_tags, bm.KIND_TAGS["database"]]),
                             stdin=subprocess.PIPE, stdout=store_log, stderr=store_log)
        scanner = scanner_for(engine)
        try:
            pipe_through(dump.stdout, store.stdin, scanner)
        finally:
            store.stdin.close()
        dump_rc = dump.wait()
        store.wait()
        dump_log.seek(0)
        store_log.seek(0)
        dump_err, store_err = dump_log.read(), store_log.read()
    if dump_rc != 0 or store.returncode != 0:
        restic.forget_ids(restic.snapshot_ids(backup_id))
        raise EngineError(f"database dump failed ({dumper} exit {dump_rc}: {tail(dump_err)}; "
                          f"restic exit {store.returncode}: {tail(store_err)}); nothing was recorded")
    if scanner.size == 0 or not scanner.rows:
        restic.forget_ids(restic.snapshot_ids(backup_id))
        raise EngineError("the database dump is empty; is Moodle installed?")
    prefix = config["db_prefix"]
    tables = {name: count for name, count in sorted(scanner.rows.items()) if name.startswith(prefix)}
    log(f"database: {scanner.size} bytes, {len(tables)} tables, sha256 {scanner.sha.hexdigest()[:16]}")

    # 2. moodledata
    log(f"backing up moodledata ({mountpoint}) with restic")
    excludes = []
    for name in config["excludes"]:
        excludes += ["--exclude", f"{mountpoint}/{name}"]
    files = restic.run("backup", "--json", "--host", project, "--time", when, "--tag",
                       ",".join([*base_tags, bm.KIND_TAGS["moodledata"]]), *excludes, ".", cwd=mountpoint)
    summary = [json.loads(line) for line in files.stdout.decode().splitlines() if '"summary"' in line][-1]

    snaps = restic.snapshots(f"backup:{backup_id}")
    db_snap = _kind_snapshot(snaps, "database")
    files_snap = _kind_snapshot(snaps, "moodledata")
    sample = _sample(restic, files_snap, mountpoint, config["sample_size"])
    completed = bm.utcnow()
    wwwroot = re.search(r"""\$CFG->wwwroot\s*=\s*(.+?);""", config_php or "")
    manifest = bm.build_manifest(
        backup_id=backup_id, project=project, platform=config["platform"], started=started, completed=completed,
        host=config.get("host_name") or os.uname().nodename, tool={"name": "moodle-backup", "restic": restic.version()},
        moodle=moodle,
        image={"reference": image_ref, "id": image_id},
        database={"engine": engine, "server_version": server_version, "name": config["db_name"],
                  "prefix": prefix, "dump_file": bm.DB_DUMP_FILENAME, "sha256": scanner.sha.hexdigest(),
                  "size_bytes": scanner.size, "snapshot_id": db_snap, "table_count": len(tables), "tables": tables},
        moodledata={"snapshot_id": files_snap, "file_count": int(summary.get("total_files_processed", 0)),
                    "size_bytes": int(summary.get("total_bytes_processed", 0)),
                    "added_bytes": int(summary.get("data_added", 0)), "excludes": list(config["excludes"]),
                    "sample": sample},
        stack=stack,
        config={"wwwroot_expression": wwwroot.group(1).strip() if wwwroot else "", "dbprefix": prefix,
                "config_php_sha256": hashlib.sha256(config_php.encode()).hexdigest() if config_php else ""},
    )
    # 3. the manifest, last: a backup without one does not exist
    restic.run("backup", "--host", project, "--time", when, "--stdin", "--stdin-filename", bm.MANIFEST_FILENAME,
               "--tag", ",".join([*base_tags, bm.KIND_TAGS["manifest"]]), stdin=bm.dumps(manifest).encode())
    write_atomic(Path(config["state_dir"]) / "manifests" / f"{backup_id}.json", bm.dumps(manifest), 0o600)
    return manifest, int(summary.get("data_added", 0))


def _copy_offsite(config, backup_id):
    local = Restic(config)
    remote = Restic(config, offsite=True)
    remote.ensure_repository()
    ids = local.snapshot_ids(backup_id)
    log(f"copying {len(ids)} snapshots of {backup_id} to {redact(remote.repository)}")
    # RESTIC_PASSWORD_FILE is the same for both repositories; the source password file is passed
    # as a file too.
    remote.run("copy", "--from-repo", config["repository"], "--from-password-file", config["password_file"], *ids)
    copied = remote.snapshots(f"backup:{backup_id}")
    if len(copied) < len(ids):
        raise EngineError(f"only {len(copied)} of {len(ids)} snapshots arrived in the off-site repository")
    return {"repository": redact(remote.repository), "snapshots": len(copied)}


def _kind_snapshot(snaps, kind):
    for snap in snaps:
        if bm.KIND_TAGS[kind] in snap.get("tags", []):
            return snap["id"]
    raise EngineError(f"restic did not record the {kind} snapshot")


def _sample(restic, snapshot, mountpoint, count):
    listing = restic.run("ls", "--json", snapshot).stdout.decode().splitlines()
    files = []
    for line in listing:
        node = json.loads(line)
        if node.get("struct_type") == "node" and node.get("type") == "file" and node["path"].startswith("/filedir/"):
            files.append((node["path"].lstrip("/"), int(node.get("size", 0))))
    files.sort()
    if not files or count <= 0:
        return []
    step = max(1, len(files) // count)
    sample = []
    for rel, size in files[::step][:count]:
        path = Path(mountpoint) / rel
        if path.is_file():  # filedir is content-addressed: a file that still exists is unchanged
            sample.append({"path": rel, "sha256": bm.sha256_file(path), "size_bytes": size})
    return sample


def write_status(config, success, manifest=None, added=0):
    if not config.get("textfile_dir"):
        return
    path = Path(config["textfile_dir"]) / f"moodle_backup_{config['project']}.prom"
    previous = parse_textfile(path.read_text(encoding="utf-8")) if path.exists() else {}
    text = render_backup_textfile(config["project"], last_run=int(time.time()), success=success,
                                  previous=previous, manifest=manifest, added_bytes=added)
    try:
        write_atomic(path, text, 0o644)
    except OSError as exc:
        log(f"could not write the status file {path}: {exc}")
