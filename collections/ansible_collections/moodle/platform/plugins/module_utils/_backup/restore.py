# Copyright: moodle.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restores.  On a Docker host the playbooks put the site into maintenance and stop web/cron around
``restore-db`` and ``restore-files``; direct mode's ``restore`` does the whole sequence itself."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from ansible_collections.moodle.platform.plugins.module_utils._backup import manifest as bm
from ansible_collections.moodle.platform.plugins.module_utils._backup.common import (
    EngineError,
    log,
    run_lock,
    sql_ident,
    tail,
    write_atomic,
)
from ansible_collections.moodle.platform.plugins.module_utils._backup.restic import Restic
from ansible_collections.moodle.platform.plugins.module_utils._backup.sites import pg_server_major, site_for
from ansible_collections.moodle.platform.plugins.module_utils._backup.stream import pipe_through, scanner_for
from ansible_collections.moodle.platform.plugins.module_utils._backup.verify import local_snapshot, verify

MAINTENANCE_FILE = "climaintenance.html"  # what admin/cli/maintenance.php --enable writes
MAINTENANCE_PAGE = ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Maintenance</title></head>"
                    "<body><h1>This site is being restored from a backup</h1>"
                    "<p>Please come back in a few minutes.</p></body></html>\n")
STAGING_DIR = ".moodle-platform-restore"
REPLACED_DIR = ".moodle-platform-replaced"


def _verified(config, restic, backup_id):
    manifest, problems = verify(config, restic, backup_id, force=True)
    if problems:
        raise EngineError("refusing to restore: " + "; ".join(p["message"] for p in problems))
    return manifest


def cmd_restore_db(config, args):
    restic = Restic(config)
    return restore_db(config, restic, _verified(config, restic, args.backup_id), getattr(args, "db_container", None))


def restore_db(config, restic, manifest, db_container=None):
    site = site_for(config)
    if db_container:
        site.db = db_container
    # the dump is loaded into the database the site uses (Kubernetes may name it differently)
    name = sql_ident(config["db_name"] if config.get("access") == "direct" else manifest["database"]["name"])
    other = manifest.get("project") != config.get("project")  # a migration: another site's (or platform's) backup
    if site.engine == "postgresql" and manifest["database"]["engine"] == "postgresql":
        # checked here too (the drill and restore-db load into a server verify did not look at)
        problems = bm.db_server_problems(manifest, pg_server_major(site))
        if problems:
            raise EngineError("refusing to restore (nothing was changed): " + problems[0].message)
    log(f"restoring database {name} from {manifest['backup_id']} ({config['platform']})"
        + (f", a backup of site {manifest['project']} ({manifest['platform']})" if other else ""))
    site.recreate_database(name)
    with tempfile.TemporaryFile() as src_log, tempfile.TemporaryFile() as sink_log:
        source = restic.popen("dump", local_snapshot(restic, manifest, "database"), "/" + bm.DB_DUMP_FILENAME,
                              stdout=subprocess.PIPE, stderr=src_log)
        sink = subprocess.Popen(site.load_argv(name), stdin=subprocess.PIPE, stdout=sink_log,  # pylint: disable=consider-using-with
                                stderr=sink_log)
        scanner = scanner_for(manifest["database"]["engine"])
        try:
            pipe_through(source.stdout, sink.stdin, scanner)
        finally:
            sink.stdin.close()
        src_rc, sink_rc = source.wait(), sink.wait()
        src_log.seek(0)
        sink_log.seek(0)
        src_err, sink_err = src_log.read(), sink_log.read()
    if src_rc != 0 or sink_rc != 0:
        raise EngineError(f"database restore failed: restic {tail(src_err)}; {site.engine} {tail(sink_err)}")
    if scanner.sha.hexdigest() != manifest["database"]["sha256"]:
        raise EngineError("the dump read during the restore does not match the manifest checksum")
    return {"backup_id": manifest["backup_id"], "database": name, "bytes": scanner.size,
            "tables": len(manifest["database"]["tables"])}


def cmd_restore_files(config, args):
    restic = Restic(config)
    return restore_files(config, restic, _verified(config, restic, args.backup_id), getattr(args, "volume", None))


def swap_in(mountpoint, staging, replaced):
    """Replace the content of ``mountpoint`` with ``staging`` by renames on one filesystem: the old
    content is removed only after the new one is in place."""
    replaced.mkdir()
    for entry in mountpoint.iterdir():
        if entry not in (staging, replaced):
            entry.rename(replaced / entry.name)
    for entry in staging.iterdir():
        entry.rename(mountpoint / entry.name)
    staging.rmdir()
    shutil.rmtree(replaced)


def clean_leftovers(mountpoint):
    """(staging, replaced) directories in ``mountpoint``, emptied of an interrupted earlier run."""
    staging, replaced = mountpoint / STAGING_DIR, mountpoint / REPLACED_DIR
    for leftover in (staging, replaced):
        if leftover.exists():
            shutil.rmtree(leftover)
    return staging, replaced


def keep_environment(mountpoint, staging, manifest, config):
    """Moodle's cache (MUC) configuration in the dataroot - ``muc/`` and the ``muc-<name>.php`` files of
    ``$CFG->altcacheconfigpath`` - names this environment's cache stores (Redis host, password), not content.
    The target's own is kept; the backup's is used only when the target has none and the backup is this
    site's on this platform (a new host).  Otherwise it is dropped: Moodle starts with its default (file)
    stores until the environment's are configured again (moodle_site on Compose).  Returns what was done."""
    same = manifest.get("project") == config.get("project") and manifest.get("platform") == config.get("platform")
    names = {p.name for root in (mountpoint, staging) for p in [root / "muc", *root.glob("muc-*.php")] if p.exists()}
    done = []
    for name in sorted(names):
        current, restored = mountpoint / name, staging / name
        if current.exists():
            if restored.is_dir() and not restored.is_symlink():
                shutil.rmtree(restored)
            elif restored.exists() or restored.is_symlink():
                restored.unlink()
            current.rename(restored)  # a rename keeps its owner (the web server's user)
            done.append(f"kept this site's {name}")
        elif not same:
            if restored.is_dir() and not restored.is_symlink():
                shutil.rmtree(restored)
            else:
                restored.unlink()
            done.append(f"dropped the backup's {name} (site {manifest.get('project')} on {manifest.get('platform')})")
    for line in done:
        log(f"cache configuration: {line}")
    return done


def restore_files(config, restic, manifest, volume=None):
    site = site_for(config)
    volume = volume or config.get("moodledata_volume") or config.get("dataroot")
    mountpoint = Path(site.dataroot(volume))
    staging, replaced = clean_leftovers(mountpoint)
    log(f"restoring moodledata of {manifest['backup_id']} into {volume}")
    restic.run("restore", local_snapshot(restic, manifest, "moodledata"), "--target", str(staging))
    # Moodle's CLI maintenance mode is this file in the dataroot: a site in maintenance stays in it.
    if (mountpoint / MAINTENANCE_FILE).is_file() and not (staging / MAINTENANCE_FILE).exists():
        shutil.copy2(mountpoint / MAINTENANCE_FILE, staging / MAINTENANCE_FILE)
    cache_configuration = keep_environment(mountpoint, staging, manifest, config)
    swap_in(mountpoint, staging, replaced)
    return {"backup_id": manifest["backup_id"], "volume": volume,
            "file_count": manifest["moodledata"]["file_count"], "cache_configuration": cache_configuration}


def cmd_restore(config, args):
    """Direct mode's one-step restore (a Kubernetes Job, the scheduler container): verify against the
    code's version.php, maintenance on, database, moodledata, maintenance off if asked."""
    if config.get("access") != "direct":
        raise EngineError("`restore` is the one-step restore of direct mode (Kubernetes Job, scheduler container); "
                          "on a Docker host run playbooks/restore.yml")
    started = time.time()
    restic = Restic(config)
    with run_lock(config["state_dir"]):
        site = site_for(config)
        target = site.moodle_version() if config.get("version_php") or config.get("version_json") else None
        db_server_major = pg_server_major(site) if site.engine == "postgresql" else None
        manifest, problems = verify(config, restic, args.backup_id, target=target, force=args.force,
                                    db_server_major=db_server_major)
        if problems:  # nothing was touched
            raise EngineError("refusing to restore: " + "; ".join(p["message"] for p in problems))
        dataroot = Path(site.dataroot())
        write_atomic(dataroot / MAINTENANCE_FILE, MAINTENANCE_PAGE, 0o644)
        database = restore_db(config, restic, manifest)
        files = restore_files(config, restic, manifest)
        if args.maintenance_off:
            (dataroot / MAINTENANCE_FILE).unlink(missing_ok=True)
        else:
            write_atomic(dataroot / MAINTENANCE_FILE, MAINTENANCE_PAGE, 0o644)
    return {"backup_id": manifest["backup_id"], "restored": True, "database": database["database"],
            "database_bytes": database["bytes"], "file_count": files["file_count"],
            "cache_configuration": files["cache_configuration"],
            "moodle_release": manifest["moodle"]["release"], "moodle_version": manifest["moodle"]["version"],
            "maintenance": "off" if args.maintenance_off else "on",
            "duration_seconds": round(time.time() - started, 3)}
