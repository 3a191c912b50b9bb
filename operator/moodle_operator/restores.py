"""Restore: one backup put back into a MoodleSite - a pure function decides the next step.

    Pending → SafetyBackup (a Backup of the site as it is now; skipped with safetyBackup.enabled=false)
            → Restoring (cron removed from the site; the backup engine's restore Job) → Succeeded (cron back)
    a failed safety backup → Failed, nothing was changed
    a failed restore Job   → Failed; cron stays off, the engine's message and the safety backup are named

The backup can come from any repository the engine wrote - a Kubernetes Backup or a Compose site's
off-site copy (same manifest format, docs/backup-manifest.md). The Job is the one the UpgradePlan's
rollback runs (``backups.restore_job``): the site's current image lends its ``version.php``, so the
engine refuses a backup that does not fit the code (other major version, newer than the code) before it
changes anything; it puts the site into CLI maintenance (web pods answer 503, ``cron.php`` does not run),
replaces the database and moodledata, and ends maintenance.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ansible_collections.moodle.platform.plugins.module_utils._backup.manifest import valid_backup_id

from . import SITE_LABEL
from .backups import failure_message, restore_job
from .conditions import condition, merge_conditions
from .desired import effective_tag

TERMINAL_PHASES = ("Succeeded", "Failed")
RESTORE_LABEL = "platform.moodle.dev/restore"


@dataclass
class Observed:
    site: dict | None
    safety: dict | None = None  # the safety Backup
    job: tuple[str, str | None] = ("absent", None)  # the restore Job's outcome and termination message


@dataclass
class Decision:
    status: dict
    create: list[dict] = field(default_factory=list)
    site_patch: dict | None = None
    event: str | None = None
    warning: bool = False


def safety_backup_name(restore: str) -> str:
    return f"{restore}-safety"[:63].rstrip("-")


def job_name(restore: str) -> str:
    return f"restore-{restore}"[:63].rstrip("-")


def _done(status: dict, now: str, phase: str, reason: str, message: str, **extra) -> Decision:
    ok = phase == "Succeeded"
    new = {"phase": phase, "message": message, "completedAt": now, **extra,
           "conditions": merge_conditions(status.get("conditions"), [
               condition("Succeeded", ok, reason, message)], now)}
    return Decision(status=new, event=message, warning=not ok)


def decide(*, name: str, namespace: str, spec: dict, status: dict, observed: Observed, now: str,
           owner: dict, backup_image: str) -> Decision:
    phase = status.get("phase") or "Pending"
    if phase in TERMINAL_PHASES:
        return Decision(status={})
    site = observed.site
    if phase == "Pending":
        if not valid_backup_id(spec.get("backupId")):
            return _done(status, now, "Failed", "Refused", f"backupId {spec.get('backupId')!r} is not of the form "
                         "20260131T020000Z-<project>; nothing was changed")
        if site is None:
            return _done(status, now, "Failed", "Refused",
                         f"MoodleSite {spec['site']} not found in {namespace}; nothing was changed")
        safety = spec.get("safetyBackup") or {}
        if safety.get("enabled", True):
            backup = {"apiVersion": "platform.moodle.dev/v1alpha1", "kind": "Backup",
                      # Not owned by the Restore: the site as it was outlives it.
                      "metadata": {"name": safety_backup_name(name), "namespace": namespace,
                                   "labels": {SITE_LABEL: spec["site"], RESTORE_LABEL: name}},
                      "spec": {"site": spec["site"], "destination": safety.get("destination") or spec["source"],
                               "purpose": "pre-restore"}}
            return Decision(status={"phase": "SafetyBackup", "startedAt": now,
                                    "safetyBackup": safety_backup_name(name),
                                    "message": f"backing up {spec['site']} before the restore"},
                            create=[backup], event=f"safety backup {safety_backup_name(name)} of {spec['site']}")
        return _start_job(name, namespace, spec, status, site, now, owner, backup_image, started=True)

    if phase == "SafetyBackup":
        backup_status = (observed.safety or {}).get("status") or {}
        if backup_status.get("phase") == "Failed":
            why = next((c.get("message") for c in backup_status.get("conditions") or []), "") or "no reason given"
            return _done(status, now, "Failed", "SafetyBackupFailed",
                         f"the safety backup failed ({why}); nothing was changed")
        if backup_status.get("phase") != "Succeeded":
            return Decision(status={})
        if site is None:
            return _done(status, now, "Failed", "Refused",
                         f"MoodleSite {spec['site']} disappeared; nothing was changed")
        safety_id = (backup_status.get("manifest") or {}).get("backup_id", "")
        return _start_job(name, namespace, spec, status, site, now, owner, backup_image, safetyBackupId=safety_id)

    if phase == "Restoring":
        outcome, message = observed.job
        if outcome in ("absent", "running"):
            return Decision(status={})
        cron = status.get("cronWasEnabled", True)
        safety = status.get("safetyBackupId")
        if outcome == "succeeded":
            try:
                result = json.loads(message or "")
            except ValueError:
                result = {}
            if not (isinstance(result, dict) and result.get("restored") is True
                    and result.get("backup_id") == spec["backupId"]):
                return _done(status, now, "Failed", "NoResult",
                             f"the restore Job completed without reporting backup {spec['backupId']} restored "
                             f"({(message or 'no termination message')[:300]}); cron stays off - check the site"
                             + (f"; safety backup {safety}" if safety else ""))
            done = _done(status, now, "Succeeded", "Restored",
                         f"backup {spec['backupId']} restored into {spec['site']}"
                         + (f" (the site before it: backup {safety})" if safety else ""))
            done.site_patch = {"cron": {"enabled": bool(cron)}}
            return done
        engine = failure_message(message) or "the restore Job failed"
        return _done(status, now, "Failed", "RestoreFailed",
                     f"restoring backup {spec['backupId']} failed: {engine}. Cron stays off; the site may be in "
                     "maintenance - "
                     + (f"restore the safety backup {safety} or " if safety else "")
                     + "fix the cause and restore again")
    return _done(status, now, "Failed", "Unknown", f"unknown phase {phase!r}")


def _start_job(name, namespace, spec, status, site, now, owner, backup_image, started=False, **extra) -> Decision:
    """Cron off (a running cron.php would write into the database being replaced), then the engine's Job."""
    tag = effective_tag(site["spec"], site["metadata"].get("annotations"))
    job = restore_job(name=job_name(name), namespace=namespace, site_name=spec["site"], site_spec=site["spec"],
                      image_tag=tag, destination=spec["source"], backup_id=spec["backupId"],
                      backup_image=backup_image, owner=owner, labels={RESTORE_LABEL: name})
    cron = bool((site["spec"].get("cron") or {}).get("enabled", True))
    new = {"phase": "Restoring", "jobName": job_name(name), "image": tag, "cronWasEnabled": cron,
           "message": f"restoring backup {spec['backupId']} with the engine on image {tag}", **extra}
    if started:
        new["startedAt"] = now
    return Decision(status=new, create=[job], site_patch={"cron": {"enabled": False}},
                    event=f"restoring backup {spec['backupId']} into {spec['site']} (Job {job_name(name)})")
