"""Backup Jobs and their results: pure functions.

The Job runs the moodle.platform backup engine (the same one the Compose stack uses, from the
``moodle-platform/moodle-backup`` image) with ``--platform kubernetes``; it writes the full manifest
into the restic repository and a short JSON summary of it to the container's termination message,
which is how the result reaches the operator without any extra storage or permissions.
"""

from __future__ import annotations

import json

from ansible_collections.moodle.platform.plugins.module_utils._backup import manifest as backup_manifest
from ansible_collections.moodle.platform.plugins.module_utils._backup.moodle_version import VERSION_PHP_CODE

from . import SITE_LABEL
from .desired import database_env

BACKUP_IMAGE_DEFAULT = "moodle-platform/moodle-backup:1"
TERMINATION_LOG = "/dev/termination-log"
SUMMARY_FIELDS = backup_manifest.SUMMARY_FIELDS


def summarize_manifest(manifest: dict) -> dict:
    """The ≤4 KiB summary a backup Job reports (the engine writes it; one definition in the shared module)."""
    return backup_manifest.summarize_manifest(manifest)


def parse_summary(text: str | None) -> dict:
    """Read a Job's termination message back; a clear error when it is not a summary."""
    if not text:
        raise ValueError("the backup Job left no termination message (no summary)")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"the backup Job's termination message is not JSON: {exc}") from exc
    missing = [k for k in ("backup_id", "database_snapshot", "moodledata_snapshot") if not data.get(k)]
    if missing:
        raise ValueError("the backup summary lacks " + ", ".join(missing))
    if not backup_manifest.valid_backup_id(data["backup_id"]):
        raise ValueError(f"backup_id {data['backup_id']!r} is not of the form 20260131T020000Z-<project>")
    return data


def _env(name: str, value: str) -> dict:
    return {"name": name, "value": value}


BACKUP_LABEL = "platform.moodle.dev/backup"


def backup_pod_spec(*, site_name: str, site_spec: dict, image_tag: str, destination: dict,
                    retention: dict, backup_image: str, backup_name: str = "") -> dict:
    """Pod template of a backup: an init container evaluates the Moodle code's version.php, the backup
    engine dumps the DB, snapshots moodledata with restic and writes the manifest."""
    site_image = "{}:{}".format((site_spec.get("image") or {}).get("repository", "moodle-platform/moodle"), image_tag)
    secret_name = site_spec["secretRef"]["name"]
    s3_secret = destination["secretRef"]["name"]
    restricted = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                  "capabilities": {"drop": ["ALL"]}}
    return {
        "metadata": {"labels": {SITE_LABEL: site_name, "platform.moodle.dev/db-client": "true",
                                "app.kubernetes.io/instance": site_name,
                                "app.kubernetes.io/component": "backup", BACKUP_LABEL: backup_name}},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 33, "runAsGroup": 33, "fsGroup": 33,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "initContainers": [{
                "name": "moodle-version",
                "image": site_image,
                # The Moodle image's PHP evaluates its version.php (as Moodle does) for the engine.
                "command": ["/bin/sh", "-c", 'exec php -r "$1" /var/www/moodle/version.php > /work/moodle-version.json',
                            "sh", VERSION_PHP_CODE],
                "volumeMounts": [{"name": "work", "mountPath": "/work"}],
                "securityContext": restricted,
            }],
            "containers": [{
                "name": "backup",
                "image": backup_image,
                "command": ["moodle-backup", "backup"],
                "args": [
                    "--platform", "kubernetes",
                    "--project", site_name,
                    "--dataroot", "/var/www/moodledata",
                    "--version-json", "/work/moodle-version.json",
                    "--image", site_image,
                    "--repository", destination["repository"],
                    "--keep-daily", str(retention.get("keepDaily", 7)),
                    "--keep-weekly", str(retention.get("keepWeekly", 4)),
                    "--keep-monthly", str(retention.get("keepMonthly", 12)),
                    "--keep-last", str(retention.get("keepLast", 3)),
                    "--summary-file", TERMINATION_LOG,
                ],
                "env": [
                    *database_env(site_name, site_spec),
                    _env("RESTIC_CACHE_DIR", "/work/restic-cache"),
                    # read-only root file system: temporary files (option file, dump buffers) go to /work
                    _env("TMPDIR", "/work"), _env("HOME", "/work"),
                ],
                # S3 keys and the restic password reach only this process, from the Secret.
                "envFrom": [{"secretRef": {"name": s3_secret}}],
                "terminationMessagePolicy": "File",
                "volumeMounts": [
                    {"name": "moodledata", "mountPath": "/var/www/moodledata", "readOnly": True},
                    {"name": "secrets", "mountPath": "/run/secrets", "readOnly": True},
                    {"name": "work", "mountPath": "/work"},
                ],
                "securityContext": restricted,
                "resources": {"requests": {"cpu": "100m", "memory": "256Mi"},
                              "limits": {"cpu": "1", "memory": "1Gi"}},
            }],
            "volumes": [
                {"name": "moodledata", "persistentVolumeClaim": {"claimName": f"{site_name}-moodledata", "readOnly": True}},
                {"name": "secrets", "secret": {"secretName": secret_name, "defaultMode": 0o440,
                                               "items": [{"key": "db_password", "path": "db_password"}]}},
                {"name": "work", "emptyDir": {}},
            ],
        },
    }


def backup_job(*, name: str, namespace: str, site_name: str, site_spec: dict, image_tag: str, backup_spec: dict,
               backup_image: str = BACKUP_IMAGE_DEFAULT, backup_name: str = "") -> dict:
    """A one-off backup Job (a Backup without a schedule)."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {SITE_LABEL: site_name, "app.kubernetes.io/component": "backup",
                                BACKUP_LABEL: backup_name}},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": 6 * 3600,
            "template": backup_pod_spec(site_name=site_name, site_spec=site_spec, image_tag=image_tag,
                                        destination=backup_spec["destination"],
                                        retention=backup_spec.get("retention") or {}, backup_image=backup_image,
                                        backup_name=backup_name),
        },
    }


def backup_cronjob(*, name: str, namespace: str, site_name: str, site_spec: dict, image_tag: str,
                   backup_spec: dict, backup_image: str = BACKUP_IMAGE_DEFAULT, backup_name: str = "") -> dict:
    """A recurring backup (a Backup with a schedule): one Job at a time, history kept short."""
    job = backup_job(name=name, namespace=namespace, site_name=site_name, site_spec=site_spec, image_tag=image_tag,
                     backup_spec=backup_spec, backup_image=backup_image, backup_name=backup_name)
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": job["metadata"],
        "spec": {
            "schedule": backup_spec["schedule"],
            "concurrencyPolicy": "Forbid",
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {"metadata": {"labels": job["metadata"]["labels"]}, "spec": job["spec"]},
        },
    }


def restore_job(*, name: str, namespace: str, site_name: str, site_spec: dict, image_tag: str, destination: dict,
                backup_id: str, backup_image: str = BACKUP_IMAGE_DEFAULT, labels: dict | None = None,
                owner: dict | None = None) -> dict:
    """A Job that restores one backup (DB + moodledata) with the backup engine, the same way the
    Compose restore does: the engine refuses (check_restorable) a backup that does not fit the Moodle
    code of ``image_tag``, whose version.php the init container lends it."""
    pod = backup_pod_spec(site_name=site_name, site_spec=site_spec, image_tag=image_tag, destination=destination,
                          retention={}, backup_image=backup_image)
    main = pod["spec"]["containers"][0]
    main["name"] = "restore"
    main["command"] = ["moodle-backup", "restore"]
    main["args"] = ["--platform", "kubernetes", "--project", site_name, "--backup-id", backup_id,
                    "--repository", destination["repository"], "--dataroot", "/var/www/moodledata",
                    "--version-json", "/work/moodle-version.json", "--maintenance-off", "--summary-file", TERMINATION_LOG]
    # Restoring writes moodledata.
    main["volumeMounts"][0] = {"name": "moodledata", "mountPath": "/var/www/moodledata"}
    pod["spec"]["volumes"][0] = {"name": "moodledata", "persistentVolumeClaim": {"claimName": f"{site_name}-moodledata"}}
    pod["metadata"]["labels"].update(labels or {})
    pod["metadata"]["labels"]["app.kubernetes.io/component"] = "restore"
    meta = {"name": name, "namespace": namespace,
            "labels": {SITE_LABEL: site_name, "app.kubernetes.io/component": "restore", **(labels or {})}}
    if owner:
        meta["ownerReferences"] = [owner]
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
            "spec": {"backoffLimit": 0, "activeDeadlineSeconds": 6 * 3600, "template": pod}}


def failure_message(text: str | None) -> str | None:
    """The engine's own error from a failed run's termination message (``{"failed": true, "msg": ...}``)."""
    try:
        data = json.loads(text or "")
    except ValueError:
        return None
    if isinstance(data, dict) and data.get("failed") and data.get("msg"):
        return str(data["msg"])[:1024]
    return None


def job_outcome(job: dict | None) -> str:
    """``absent`` | ``running`` | ``succeeded`` | ``failed`` from a Job's status conditions."""
    if not job:
        return "absent"
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("status") == "True" and cond.get("type") in ("Complete", "SuccessCriteriaMet"):
            return "succeeded"
        if cond.get("status") == "True" and cond.get("type") in ("Failed", "FailureTarget"):
            return "failed"
    return "running"


def termination_message(pods: list[dict], container: str) -> str | None:
    """The newest terminated container's message among a Job's pods."""
    best = None
    for pod in pods:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            if status.get("name") != container:
                continue
            terminated = (status.get("state") or {}).get("terminated")
            if terminated and terminated.get("message"):
                stamp = terminated.get("finishedAt") or ""
                if best is None or stamp >= best[0]:
                    best = (stamp, terminated["message"])
    return best[1] if best else None


def backup_status(job: dict | None, pods: list[dict]) -> dict:
    """Backup.status from its Job and the Job's pods."""
    outcome = job_outcome(job)
    status = (job or {}).get("status") or {}
    result: dict = {"jobName": (job or {}).get("metadata", {}).get("name")}
    if status.get("startTime"):
        result["startedAt"] = status["startTime"]
    if outcome in ("absent", "running"):
        result["phase"] = "Pending" if outcome == "absent" else "Running"
        return result
    result["completedAt"] = status.get("completionTime") or _failed_time(status)
    if outcome == "failed":
        result["phase"] = "Failed"
        reason = next((c.get("message") or c.get("reason") for c in status.get("conditions") or []
                       if c.get("type") == "Failed"), "the backup Job failed")
        engine_error = failure_message(termination_message(pods, "backup"))
        if engine_error:  # the engine said why (refused, unreachable database, repository...)
            reason = f"{reason}: {engine_error}"
        result["conditions"] = [{"type": "Succeeded", "status": "False", "reason": "JobFailed", "message": reason}]
        return result
    try:
        summary = parse_summary(termination_message(pods, "backup"))
    except ValueError as exc:
        result["phase"] = "Failed"
        result["conditions"] = [{"type": "Succeeded", "status": "False", "reason": "NoManifest", "message": str(exc)}]
        return result
    result.update({
        "phase": "Succeeded",
        "snapshotId": summary["moodledata_snapshot"],
        "sizeBytes": int(summary.get("database_size_bytes", 0)) + int(summary.get("moodledata_size_bytes", 0)),
        "durationSeconds": float(summary.get("duration_seconds", 0)),
        "manifest": summary,
        "conditions": [{"type": "Succeeded", "status": "True", "reason": "Completed",
                        "message": f"backup {summary['backup_id']} stored"}],
    })
    return result


def _failed_time(status: dict) -> str | None:
    return next((c.get("lastTransitionTime") for c in status.get("conditions") or [] if c.get("type") == "Failed"), None)


def scheduled_status(jobs: list[dict], pods: list[dict]) -> dict:
    """Status of a scheduled Backup from the Jobs its CronJob made: the newest finished run decides
    ``lastRun``; the newest successful one gives snapshot, size, duration and ``lastSuccessfulTime``."""
    finished = []
    for job in jobs:
        name = job["metadata"]["name"]
        own = [p for p in pods if (p["metadata"].get("labels") or {}).get("job-name") == name]
        status = backup_status(job, own)
        if status["phase"] in ("Succeeded", "Failed"):
            finished.append((status.get("completedAt") or "", name, status))
    if not finished:
        return {"phase": "Scheduled"}
    finished.sort()
    _, last_name, last = finished[-1]
    result = {"phase": "Scheduled", "jobName": last_name, "conditions": last.get("conditions", [])}
    good = [f for f in finished if f[2]["phase"] == "Succeeded"]
    if good:
        _, _, best = good[-1]
        result.update({key: best[key] for key in ("snapshotId", "sizeBytes", "durationSeconds", "manifest")})
        result["lastSuccessfulTime"] = best.get("completedAt")
    return result
