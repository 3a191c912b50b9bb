# Copyright: moodle.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus textfile-collector status of backups and restore drills (docs/backup-manifest.md)."""

from __future__ import annotations

import re

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
