# Copyright: moodle.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Listing, showing and verifying backups: everything that makes a backup unusable, read-only."""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
from pathlib import Path

from ansible_collections.moodle.platform.plugins.module_utils._backup import manifest as bm
from ansible_collections.moodle.platform.plugins.module_utils._backup.common import CHUNK, EngineError, log, tail
from ansible_collections.moodle.platform.plugins.module_utils._backup.moodle_version import VersionError, parse_version_php
from ansible_collections.moodle.platform.plugins.module_utils._backup.restic import Restic
from ansible_collections.moodle.platform.plugins.module_utils._backup.sites import (
    ComposeSite,
    container_version,
    db_engine,
    image_version,
    pg_server_major,
)


def manifest_snapshots(restic):
    return sorted(restic.snapshots(bm.TAG_PLATFORM, bm.KIND_TAGS["manifest"]), key=lambda s: s["time"])


def backup_id_of(snapshot):
    for tag in snapshot.get("tags", []):
        if tag.startswith("backup:"):
            return tag[len("backup:"):]
    return None


def load_manifest(restic, backup_id):
    """The manifest of ``backup_id`` or 'latest'; EngineError when there is no such (complete) backup."""
    if backup_id in (None, "", "latest"):
        manifests = manifest_snapshots(restic)
        if not manifests:
            raise EngineError("the repository holds no complete backup of this site")
        chosen = manifests[-1]
    else:
        if not bm.valid_backup_id(backup_id):
            raise EngineError(f"'{backup_id}' is not a backup id (like 20261124T020000Z-moodle) or 'latest'")
        found = sorted(restic.snapshots(bm.TAG_PLATFORM, bm.KIND_TAGS["manifest"], f"backup:{backup_id}",
                                        any_host=True), key=lambda s: s["time"])
        if not found:
            raise EngineError(f"backup {backup_id} does not exist in the repository (or has no manifest: incomplete)")
        chosen = found[-1]
    proc = restic.run("dump", chosen["id"], "/" + bm.MANIFEST_FILENAME)
    return bm.loads(proc.stdout.decode())


def cmd_list(config, args):  # pylint: disable=unused-argument
    restic = Restic(config)
    result = []
    for snap in manifest_snapshots(restic):
        result.append({"backup_id": backup_id_of(snap), "time": snap["time"], "manifest_snapshot": snap["id"]})
    return {"backups": result}


def cmd_show(config, args):
    return load_manifest(Restic(config), args.backup_id)


def local_snapshot(restic, manifest, kind):
    """The id, in this repository, of the manifest's ``kind`` snapshot (itself, or its restic copy)."""
    wanted = manifest[kind]["snapshot_id"]
    for snap in restic.snapshots(f"backup:{manifest['backup_id']}", any_host=True):
        if wanted in (snap["id"], snap.get("original")):
            return snap["id"]
    return wanted


def _stream_sha(restic, snapshot, path):
    with tempfile.TemporaryFile() as errlog:
        proc = restic.popen("dump", snapshot, path, stdout=subprocess.PIPE, stderr=errlog)
        digest = hashlib.sha256()
        for block in iter(lambda: proc.stdout.read(CHUNK), b""):
            digest.update(block)
        rc = proc.wait()
        errlog.seek(0)
        err = errlog.read()
    if rc != 0:
        return None, f"restic could not read {path} of snapshot {snapshot[:8]}: {tail(err)}"
    return digest.hexdigest(), None


def verify(config, restic, backup_id, target=None, force=False, db_server_major=None):  # pylint: disable=unused-argument
    """(manifest or None, problems as dicts): everything that makes a backup unusable, read-only.
    ``db_server_major``: the target PostgreSQL server's major version (a dump of a newer one is refused)."""
    try:
        manifest = load_manifest(restic, backup_id)
    except (EngineError, bm.ManifestError) as exc:
        return None, [{"code": "incomplete" if "does not exist" in str(exc) or "no complete" in str(exc)
                       else "malformed", "message": str(exc), "forceable": False}]
    problems = bm.validate_manifest(manifest)
    if problems:
        return manifest, [p.as_dict() for p in problems]
    snapshots = restic.snapshots(any_host=True)  # a backup of another site (a migration) names its snapshots
    # `restic copy` gives copies new ids and records the source id in `original`.
    available = [s["id"] for s in snapshots] + [s["original"] for s in snapshots if s.get("original")]
    problems = bm.check_restorable(manifest, target=target, available_snapshots=available,
                                   allow_other_major=force, engine=db_engine(config),
                                   db_server_major=db_server_major)
    if not problems:
        log(f"verifying the database dump of {manifest['backup_id']} against its checksum")
        sha, err = _stream_sha(restic, local_snapshot(restic, manifest, "database"), "/" + bm.DB_DUMP_FILENAME)
        if err:
            problems.append(bm.Problem("incomplete", f"backup {manifest['backup_id']}: {err}"))
        else:
            problems = bm.check_restorable(manifest, dump_sha256=sha)
    return manifest, [p.as_dict() for p in problems]


def cmd_image_version(config, args):
    return image_version(config, args.image)


def cmd_verify(config, args):
    restic = Restic(config)
    target = None
    if args.target_version_php:
        try:
            target = parse_version_php(Path(args.target_version_php).read_text(encoding="utf-8"))
        except VersionError as exc:
            raise EngineError(f"{args.target_version_php}: {exc}") from exc
    elif args.target_image:
        target = image_version(config, args.target_image)
    elif args.target_container:
        target = container_version(config, args.target_container)
    db_server_major = None
    if getattr(args, "target_db_container", None) and db_engine(config) == "postgresql":
        site = ComposeSite(config)
        site.db = args.target_db_container
        db_server_major = pg_server_major(site)
    manifest, problems = verify(config, restic, args.backup_id, target=target, force=args.force,
                                db_server_major=db_server_major)
    if args.read_data and not problems:
        proc = restic.run("check", "--read-data", check=False)
        if proc.returncode != 0:
            problems.append({"code": "repository", "message": f"restic check --read-data failed: {tail(proc.stderr)}",
                             "forceable": False})
    return {"backup_id": manifest["backup_id"] if manifest else args.backup_id, "ok": not problems,
            "problems": problems, "manifest": manifest}
