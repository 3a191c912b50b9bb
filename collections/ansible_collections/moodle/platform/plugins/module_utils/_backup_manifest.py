# Copyright: moodle.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The moodle.platform backup manifest: one format for Compose and Kubernetes backups.

Private module_utils (leading underscore).  Pure standard-library Python on purpose: the same file
is imported by Ansible modules, copied next to the ``moodle-backup`` engine on the Docker host, and
vendored by the Kubernetes operator.  The format is specified in ``docs/backup-manifest.md``; keep the
two in step (bump ``FORMAT_VERSION`` on any incompatible change).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re

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

# Metric names shared with the monitoring role (Prometheus textfile collector format).
METRIC_PREFIX = "moodle_backup_"
METRICS = {
    "last_run_timestamp_seconds": "Unix time the last backup run ended (success or not).",
    "last_success_timestamp_seconds": "Unix time the last successful backup ended.",
    "last_run_success": "1 if the last backup run succeeded, else 0.",
    "duration_seconds": "Wall time of the last successful backup run.",
    "size_bytes": "Size of the last successful backup by component (uncompressed source bytes).",
    "added_bytes": "New bytes the last successful backup added to the repository (after dedup).",
    "snapshot_info": "Always 1; labels identify the last successful backup.",
}
DRILL_METRICS = {
    "restore_drill_success": "1 if the last restore drill passed every check, else 0.",
    "restore_drill_last_run_timestamp_seconds": "Unix time the last restore drill ended.",
    "restore_drill_duration_seconds": "Wall time of the last restore drill.",
    "restore_drill_checks_failed": "Number of checks that failed in the last restore drill.",
}

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
# Moodle versions
_PHP_ASSIGN = re.compile(r"^\s*\$(version|release|branch|maturity)\s*=\s*(.+?)\s*;", re.MULTILINE)


def parse_version_php(text):
    """Read ``$version``, ``$release``, ``$branch``, ``$maturity`` from a Moodle ``version.php``."""
    found = {}
    for name, value in _PHP_ASSIGN.findall(text or ""):
        value = value.split("//", 1)[0].strip()
        if len(value) >= 2 and value[0] in "'\"" and value[-1] == value[0]:
            value = value[1:-1]
        found.setdefault(name, value)
    if "version" not in found:
        raise ManifestError("version.php has no $version assignment")
    if "branch" not in found:
        match = re.match(r"^(\d+)\.(\d+)", found.get("release", ""))
        if not match:
            raise ManifestError("version.php has neither $branch nor a $release like '4.5.6'")
        found["branch"] = f"{int(match.group(1))}{int(match.group(2)):02d}"
    found.setdefault("release", "")
    return {"version": found["version"], "release": found["release"], "branch": found["branch"],
            "maturity": found.get("maturity", "")}


def branch_to_major(branch):
    """'405' -> '4.5', '500' -> '5.0' (Moodle's $branch is major*100 + minor)."""
    text = str(branch).strip()
    if not text.isdigit() or len(text) < 3:
        raise ManifestError(f"not a Moodle branch number like '405': {branch!r}")
    return f"{int(text[:-2])}.{int(text[-2:])}"


def compare_versions(left, right):
    """Compare Moodle ``$version`` values (``2024100706.00``) numerically: -1, 0 or 1."""
    try:
        a, b = float(left), float(right)
    except (TypeError, ValueError) as exc:
        raise ManifestError(f"not a Moodle $version number: {left!r} / {right!r}") from exc
    return (a > b) - (a < b)


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


# version.php is PHP: evaluate it (as Moodle does) instead of pattern-matching it.
VERSION_PHP_CODE = (
    "define('MOODLE_INTERNAL', true);"
    "foreach (['MATURITY_ALPHA' => 50, 'MATURITY_BETA' => 100, 'MATURITY_RC' => 150, 'MATURITY_STABLE' => 200]"
    " as $c => $v) { defined($c) || define($c, $v); }"
    "$version = null; $release = null; $branch = null; $maturity = null;"
    "include $argv[1];"
    "echo json_encode(['version' => sprintf('%.2f', $version), 'release' => (string) $release,"
    " 'branch' => (string) $branch, 'maturity' => (string) $maturity]);"
)


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


def check_restorable(manifest, *, target=None, available_snapshots=None, dump_sha256=None,
                     allow_other_major=False):
    """Every reason this backup must not be restored into ``target``.

    ``target``: ``{"branch": "405", "version": "2024100706.00"}`` of the image that will run the
    restored site (``None`` skips the version check).  ``available_snapshots``: snapshot ids that exist
    in the repository (full or short ids; ``None`` skips the check).  ``dump_sha256``: checksum of the
    dump as read back from the repository (``None`` skips).  Returns a list of Problem; a Problem with
    ``forceable=True`` is waived when ``allow_other_major`` is set.
    """
    problems = validate_manifest(manifest)
    if problems:
        return problems
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
        have_major = branch_to_major(manifest["moodle"]["branch"])
        want_major = branch_to_major(target["branch"])
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


# ---------------------------------------------------------------------------------------------
# Prometheus textfile collector
def _escape_label(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels):
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape_label(v)}"' for k, v in sorted(labels.items())) + "}"


def _gauge(lines, name, help_text, samples):
    lines.append(f"# HELP {name} {help_text}")
    lines.append(f"# TYPE {name} gauge")
    for labels, value in samples:
        if isinstance(value, float) and value != int(value):
            text = repr(round(value, 3))
        else:
            text = str(int(value))
        lines.append(f"{name}{_labels(labels)} {text}")


def render_backup_textfile(project, *, last_run, success, previous=None, manifest=None, added_bytes=0):
    """The status file a node_exporter textfile collector reads after each backup run.

    ``previous``: metrics dict of the prior file (see ``parse_textfile``) so a failed run keeps the last
    success time.  ``manifest``: the manifest of this run when it succeeded.
    """
    base = {"project": project}
    previous = previous or {}
    lines = []
    _gauge(lines, "moodle_backup_last_run_timestamp_seconds", METRICS["last_run_timestamp_seconds"],
           [(base, last_run)])
    _gauge(lines, "moodle_backup_last_run_success", METRICS["last_run_success"], [(base, 1 if success else 0)])
    if success and manifest is not None:
        last_success = last_run
        duration = float(manifest["duration_seconds"])
        sizes = [(dict(base, component="database"), manifest["database"]["size_bytes"]),
                 (dict(base, component="moodledata"), manifest["moodledata"]["size_bytes"])]
        info = dict(base, backup_id=manifest["backup_id"], database_snapshot=manifest["database"]["snapshot_id"][:8],
                    moodledata_snapshot=manifest["moodledata"]["snapshot_id"][:8],
                    moodle_release=manifest["moodle"]["release"])
        added = added_bytes
    else:
        last_success = previous.get("moodle_backup_last_success_timestamp_seconds")
        duration = previous.get("moodle_backup_duration_seconds")
        sizes, info, added = [], None, None
    if last_success is not None:
        _gauge(lines, "moodle_backup_last_success_timestamp_seconds", METRICS["last_success_timestamp_seconds"],
               [(base, last_success)])
    if duration is not None:
        _gauge(lines, "moodle_backup_duration_seconds", METRICS["duration_seconds"], [(base, duration)])
    if sizes:
        _gauge(lines, "moodle_backup_size_bytes", METRICS["size_bytes"], sizes)
    if added is not None:
        _gauge(lines, "moodle_backup_added_bytes", METRICS["added_bytes"], [(base, added)])
    if info:
        _gauge(lines, "moodle_backup_snapshot_info", METRICS["snapshot_info"], [(info, 1)])
    return "\n".join(lines) + "\n"


def render_drill_textfile(project, *, success, finished, duration, checks_failed):
    base = {"project": project}
    lines = []
    _gauge(lines, "moodle_restore_drill_success", DRILL_METRICS["restore_drill_success"], [(base, 1 if success else 0)])
    _gauge(lines, "moodle_restore_drill_last_run_timestamp_seconds",
           DRILL_METRICS["restore_drill_last_run_timestamp_seconds"], [(base, finished)])
    _gauge(lines, "moodle_restore_drill_duration_seconds", DRILL_METRICS["restore_drill_duration_seconds"],
           [(base, float(duration))])
    _gauge(lines, "moodle_restore_drill_checks_failed", DRILL_METRICS["restore_drill_checks_failed"],
           [(base, checks_failed)])
    return "\n".join(lines) + "\n"


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)\s*$")


def parse_textfile(text):
    """Unlabelled-by-component values of a textfile written by this module: {metric_name: float}."""
    values = {}
    for line in (text or "").splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if not match or (match.group(2) and "component=" in match.group(2)):
            continue
        try:
            values[match.group(1)] = float(match.group(3))
        except ValueError:
            continue
    return values


# ---------------------------------------------------------------------------------------------
# retention (what restic's --keep-daily/--keep-weekly/--keep-monthly keeps; used by tests and dry runs)
def expected_retention(times, daily, weekly, monthly):
    """Times (UTC datetimes) that restic ``forget --keep-daily D --keep-weekly W --keep-monthly M`` keeps.

    restic walks snapshots newest first; a snapshot is kept for a bucket kind when its bucket (day,
    ISO week, month) differs from the last one kept for that kind and that kind still has budget.
    Returns {time: [reasons]} for the kept ones.
    """
    kept = {}
    rules = [("daily snapshot", daily, lambda t: t.strftime("%Y-%m-%d")),
             ("weekly snapshot", weekly, lambda t: "{}-{:02d}".format(*t.isocalendar()[:2])),
             ("monthly snapshot", monthly, lambda t: t.strftime("%Y-%m"))]
    budget = {name: count for name, count, _ in rules}
    last = {name: None for name, _, _ in rules}
    for when in sorted(times, reverse=True):
        for name, _, bucket_of in rules:
            bucket = bucket_of(when)
            if budget[name] > 0 and bucket != last[name]:
                kept.setdefault(when, []).append(name)
                last[name] = bucket
                budget[name] -= 1
    return kept
