# Copyright: moodle.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The moodle.platform backup manifest: one format for Compose and Kubernetes backups.

Specified in ``docs/backup-manifest.md``; keep the two in step (bump ``FORMAT_VERSION`` on any
incompatible change).  Used by the engine and by moodle-operator (summaries, backup ids).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re

from ansible_collections.moodle.platform.plugins.module_utils._backup.moodle_version import (
    VersionError,
    branch_to_major,
    compare_versions,
)

FORMAT = "moodle.platform/backup-manifest"
FORMAT_VERSION = 1

# restic tags that mark what a snapshot holds; every snapshot of one backup also carries the
# ``backup:<backup_id>`` tag.  Retention groups by host + kind tag (see docs), never by backup id.
TAG_PLATFORM = "moodle-platform"
KIND_TAGS = {"database": "kind:database", "moodledata": "kind:moodledata", "manifest": "kind:manifest"}
MANIFEST_FILENAME = "manifest.json"
DB_DUMP_FILENAME = "database.sql"

# Moodle rebuilds these; they are never backed up (relative to the dataroot).
MOODLEDATA_EXCLUDES = ("cache", "localcache", "temp", "sessions", "trashdir", "lock")

REQUIRED = {
    "format": str,
    "format_version": int,
    "backup_id": str,
    "status": str,
    "project": str,
    "platform": str,
    "started": str,
    "completed": str,
    "duration_seconds": (int, float),
    "moodle": dict,
    "image": dict,
    "database": dict,
    "moodledata": dict,
}
REQUIRED_MOODLE = {"version": str, "release": str, "branch": str}
REQUIRED_DATABASE = {
    "engine": str,
    "name": str,
    "prefix": str,
    "dump_file": str,
    "sha256": str,
    "size_bytes": int,
    "snapshot_id": str,
    "tables": dict,
}
REQUIRED_MOODLEDATA = {"snapshot_id": str, "file_count": int, "size_bytes": int, "sample": list}
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
BACKUP_ID_RE = re.compile(r"^[0-9]{8}T[0-9]{6}Z(-[a-z0-9][a-z0-9_.-]{0,62})?$")


class ManifestError(ValueError):
    """A manifest is malformed or a backup cannot be used; the message says why."""


class Problem:
    """One reason a backup must not be restored (code is stable, message is for people)."""

    __slots__ = ("code", "forceable", "message")

    def __init__(self, code, message, forceable=False):
        self.code = code
        self.message = message
        self.forceable = forceable

    def as_dict(self):
        return {"code": self.code, "message": self.message, "forceable": self.forceable}

    def __repr__(self):  # pragma: no cover - debugging aid
        return f"Problem({self.code!r}, {self.message!r})"


# ---------------------------------------------------------------------------------------------
# time and identifiers
def utcnow():
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0)


def isoformat(when):
    return when.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text):
    try:
        return _dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=_dt.UTC)
    except (TypeError, ValueError) as exc:
        raise ManifestError(f"not a UTC timestamp of the form 2026-01-31T02:00:00Z: {text!r}") from exc


def new_backup_id(when, project):
    """``20260131T020000Z-moodle``: sortable, unique per project per second."""
    return "{}-{}".format(when.astimezone(_dt.UTC).strftime("%Y%m%dT%H%M%SZ"), project)


def valid_backup_id(text):
    return bool(isinstance(text, str) and BACKUP_ID_RE.match(text))


# ---------------------------------------------------------------------------------------------
# building, serialising, validating
def sha256_file(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def build_manifest(*, backup_id, project, platform, started, completed, moodle, image, database,
                   moodledata, config=None, host=None, tool=None, stack=None):
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "backup_id": backup_id,
        "status": "complete",
        "project": project,
        "platform": platform,
        "host": host or "",
        "tool": tool or {},
        "started": isoformat(started),
        "completed": isoformat(completed),
        "duration_seconds": round((completed - started).total_seconds(), 3),
        "moodle": dict(moodle),
        "image": dict(image),
        "database": dict(database),
        "moodledata": dict(moodledata),
        "config": dict(config or {}),
        "stack": dict(stack or {}),
    }
    problems = validate_manifest(manifest)
    if problems:
        raise ManifestError("refusing to write an invalid manifest: " + "; ".join(p.message for p in problems))
    return manifest


SUMMARY_FIELDS = ("backup_id", "database_snapshot", "moodledata_snapshot", "database_sha256",
                  "database_size_bytes", "moodledata_size_bytes", "duration_seconds", "moodle_release",
                  "moodle_version", "image")


def summarize_manifest(manifest):
    """The short summary of a backup (<= 4 KiB; a Kubernetes Job's termination message). The full
    manifest stays in the repository."""
    problems = validate_manifest(manifest)
    if problems:
        raise ManifestError("; ".join(p.message for p in problems))
    return {
        "backup_id": manifest["backup_id"],
        "database_snapshot": manifest["database"]["snapshot_id"],
        "moodledata_snapshot": manifest["moodledata"]["snapshot_id"],
        "database_sha256": manifest["database"]["sha256"],
        "database_size_bytes": manifest["database"]["size_bytes"],
        "moodledata_size_bytes": manifest["moodledata"]["size_bytes"],
        "duration_seconds": manifest["duration_seconds"],
        "moodle_release": manifest["moodle"]["release"],
        "moodle_version": manifest["moodle"]["version"],
        "image": manifest["image"].get("reference", ""),
    }


def dumps(manifest):
    """Canonical JSON (sorted keys, UTF-8, trailing newline) so checksums of manifests are stable."""
    return json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def loads(text):
    try:
        data = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise ManifestError(f"manifest is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ManifestError("manifest is not a JSON object")
    return data


def _check_fields(section, spec, where, problems):
    for key, kind in spec.items():
        if key not in section:
            problems.append(Problem("incomplete", f"{where} is missing '{key}'"))
        elif not isinstance(section[key], kind) or isinstance(section[key], bool):
            problems.append(Problem("malformed", f"{where}.{key} has the wrong type"))


def validate_manifest(manifest):
    """Structural validation.  Returns a list of Problem (empty when the manifest is well-formed)."""
    problems = []
    if not isinstance(manifest, dict):
        return [Problem("malformed", "manifest is not a JSON object")]
    if manifest.get("format") != FORMAT:
        problems.append(Problem("malformed",
                                f"not a moodle.platform backup manifest (format={manifest.get('format')!r})"))
        return problems
    if manifest.get("format_version") != FORMAT_VERSION:
        problems.append(Problem("unsupported", f"manifest format_version {manifest.get('format_version')!r} is not supported "
                                f"(this tool reads {FORMAT_VERSION})"))
        return problems
    _check_fields(manifest, REQUIRED, "manifest", problems)
    if problems:
        return problems
    if manifest["status"] != "complete":
        problems.append(Problem("incomplete",
                                f"backup {manifest['backup_id']} has status {manifest['status']!r}, not 'complete'"))
    if not valid_backup_id(manifest["backup_id"]):
        problems.append(Problem("malformed",
                                f"backup_id {manifest['backup_id']!r} is not of the form 20260131T020000Z-<project>"))
    _check_fields(manifest["moodle"], REQUIRED_MOODLE, "moodle", problems)
    _check_fields(manifest["database"], REQUIRED_DATABASE, "database", problems)
    _check_fields(manifest["moodledata"], REQUIRED_MOODLEDATA, "moodledata", problems)
    sha = manifest["database"].get("sha256")
    if isinstance(sha, str) and not SHA256_RE.match(sha):
        problems.append(Problem("malformed", "database.sha256 is not a sha256 hex digest"))
    for entry in manifest["moodledata"].get("sample", []) if isinstance(manifest["moodledata"].get("sample"), list) else []:
        if not (isinstance(entry, dict) and isinstance(entry.get("path"), str)
                and isinstance(entry.get("sha256"), str) and SHA256_RE.match(entry["sha256"])):
            problems.append(Problem("malformed", "moodledata.sample entries need 'path' and a sha256"))
            break
    for key in ("started", "completed"):
        try:
            parse_time(manifest[key])
        except ManifestError as exc:
            problems.append(Problem("malformed", f"{key}: {exc}"))
    return problems


# The database engines a manifest names (database.engine), and how people call them.
ENGINE_NAMES = {"mariadb": "MariaDB", "postgresql": "PostgreSQL"}


def db_server_problems(manifest, server_major):
    """A PostgreSQL dump taken from a newer major version than ``server_major`` (the target server's): pg_dump
    writes what its own server understands (e.g. PostgreSQL 17's ``SET transaction_timeout``), so an older
    server cannot load it.  Refused, never forced.  MariaDB dumps and an unknown major are not checked."""
    if manifest["database"]["engine"] != "postgresql" or server_major is None:
        return []
    match = re.match(r"\s*(\d+)", str(manifest["database"].get("server_version") or ""))
    if not match or int(match.group(1)) <= server_major:
        return []
    return [Problem("database_version", "backup {} was dumped from PostgreSQL {} but the target server runs PostgreSQL {}: "
                                        "a dump loads only into the same or a newer major version (run the site on "
                                        "PostgreSQL >= {}, service_images_postgresql_version)".format(
                                            manifest["backup_id"], manifest["database"]["server_version"], server_major,
                                            match.group(1)))]


def check_restorable(manifest, *, target=None, available_snapshots=None, dump_sha256=None,
                     allow_other_major=False, engine=None, db_server_major=None):
    """Every reason this backup must not be restored into ``target``.

    ``target``: ``{"branch": "405", "version": "2024100706.00"}`` of the image that will run the
    restored site (``None`` skips the version check).  ``available_snapshots``: snapshot ids that exist
    in the repository (full or short ids; ``None`` skips the check).  ``dump_sha256``: checksum of the
    dump as read back from the repository (``None`` skips).  ``engine``: the database the site runs
    (``mariadb`` or ``postgresql``; ``None`` skips): a dump of the other one is refused, never forced.
    ``db_server_major``: the target PostgreSQL server's major version (``None`` skips): a dump from a newer
    major is refused, never forced (db_server_problems).
    Returns a list of Problem; a Problem with
    ``forceable=True`` is waived when ``allow_other_major`` is set.
    """
    problems = validate_manifest(manifest)
    if problems:
        return problems
    have_engine = manifest["database"]["engine"]
    if engine is not None and have_engine != engine:
        problems.append(Problem(
            "database_type", "backup {} holds a {} dump but this site runs {}: a dump of one database cannot be "
            "restored into the other (moving a site between MariaDB and PostgreSQL is not modelled)".format(
                manifest["backup_id"], ENGINE_NAMES.get(have_engine, have_engine), ENGINE_NAMES.get(engine, engine))))
        return problems
    problems += db_server_problems(manifest, db_server_major)
    if available_snapshots is not None:
        have = set(available_snapshots)
        have |= {s[:8] for s in available_snapshots}
        for what, snap in (("database", manifest["database"]["snapshot_id"]),
                           ("moodledata", manifest["moodledata"]["snapshot_id"])):
            if snap not in have and snap[:8] not in have:
                problems.append(Problem("incomplete", f"backup {manifest['backup_id']} is incomplete: its {what} "
                                                      f"snapshot {snap[:8]} is not in the repository"))
    if dump_sha256 is not None and dump_sha256 != manifest["database"]["sha256"]:
        problems.append(Problem("checksum", f"backup {manifest['backup_id']}: database dump checksum {dump_sha256[:16]} "
                                            f"does not match the manifest ({manifest['database']['sha256'][:16]})"))
    if target is not None:
        try:
            have_major = branch_to_major(manifest["moodle"]["branch"])
            want_major = branch_to_major(target["branch"])
        except VersionError as exc:
            return [*problems, Problem("malformed", f"backup {manifest['backup_id']}: {exc}")]
        if have_major != want_major and not allow_other_major:
            problems.append(Problem(
                "version", "backup {} is Moodle {} but the image runs Moodle {}; set force (allow a different major "
                "version) only if you mean to restore across versions".format(manifest["backup_id"], have_major, want_major),
                forceable=True))
        elif target.get("version") and compare_versions(manifest["moodle"]["version"], target["version"]) > 0:
            problems.append(Problem(
                "downgrade", "backup {} was taken with Moodle version {}, newer than the image's {}; Moodle cannot run a "
                "database on older code".format(manifest["backup_id"], manifest["moodle"]["version"], target["version"])))
    return problems
