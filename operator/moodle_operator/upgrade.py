"""UpgradePlan state machine: one pure function decides the next step from what the API shows.

    CheckPending → PreUpgradeBackup → Maintenance → SwitchImage → UpgradeJob → Verify → Done
    failure in UpgradeJob/Verify → Restore → RestoreImage → Failed
    failure in Maintenance/SwitchImage → RestoreImage → Failed   (the database was not touched)
    failure in CheckPending/PreUpgradeBackup → Failed            (nothing was touched)

Code-only changes (``upgrade.php --is-pending`` says no; the DB schema stays) skip Maintenance and
UpgradeJob. With ReadWriteMany moodledata they go blue-green:

    PreUpgradeBackup → Candidate (second web Deployment on the new image, wait until available)
      → SwitchService (Service selector to the candidate) → Verify → Promote (main Deployment to the
      new image, Service back to it, candidate removed) → Done

otherwise the web Deployment rolls (SwitchImage → Verify). A step that waits on a Deployment fails
after ``spec.stepTimeoutSeconds``.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, field

from ansible_collections.moodle.platform.plugins.module_utils._backup.moodle_version import (
    VERSION_PHP_CODE,
    branch_of_release,
    branch_to_major,
    compare_versions,
)

from . import SITE_LABEL
from .backups import job_outcome, restore_job  # noqa: F401  (job_outcome re-exported for handlers)
from .conditions import condition, merge_conditions
from .desired import database_env, deployment_available, deployment_image

STEPS = ("CheckPending", "PreUpgradeBackup", "Maintenance", "SwitchImage", "UpgradeJob", "Candidate",
         "SwitchService", "Verify", "Promote", "Done")
BLUE_GREEN_RESET = {"candidateTag": "", "active": "main"}
DEFAULT_STEP_TIMEOUT = 1800
ROLLBACK_STEPS = ("Restore", "RestoreImage")
TERMINAL_PHASES = ("Succeeded", "Failed")
MOODLE = "/var/www/moodle"

# Prints what the decision needs as JSON to the termination message, exit 0 unless PHP itself broke.
# $1 is moodle_version.VERSION_PHP_CODE: the new image's PHP evaluates its version.php the way the
# backup engine and the Moodle modules do.
CHECK_SCRIPT = f"""set -u
php {MOODLE}/admin/cli/upgrade.php --is-pending >/dev/null 2>&1; rc=$?
case $rc in
  0) pending=false ;;
  2) pending=true ;;
  *) echo "upgrade.php --is-pending failed with $rc" >/dev/termination-log; exit $rc ;;
esac
target=$(php -r "$1" {MOODLE}/version.php) \\
  || {{ echo "cannot evaluate {MOODLE}/version.php: $target" >/dev/termination-log; exit 1; }}
php -r '$t = json_decode($argv[1], true);
  echo json_encode(["pending" => $argv[2] === "true", "target_version" => $t["version"], "target_branch" => $t["branch"],
    "target_release" => $t["release"],
    "db_version" => trim(shell_exec("php {MOODLE}/admin/cli/cfg.php --name=version")),
    "db_release" => trim(shell_exec("php {MOODLE}/admin/cli/cfg.php --name=release"))]);' \\
  "$target" "$pending" >/dev/termination-log
"""
CHECK_COMMAND = ["/bin/sh", "-c", CHECK_SCRIPT, "sh", VERSION_PHP_CODE]
MAINTENANCE_ON = ["php", f"{MOODLE}/admin/cli/maintenance.php", "--enable"]
UPGRADE = ["/bin/sh", "-c", f"php {MOODLE}/admin/cli/upgrade.php --non-interactive && php {MOODLE}/admin/cli/purge_caches.php"]
VERIFY = ["/bin/sh", "-c", (f"php {MOODLE}/admin/cli/maintenance.php --disable"
                            f" && php {MOODLE}/admin/cli/upgrade.php --is-pending && php {MOODLE}/admin/cli/checks.php")]


@dataclass
class Observed:
    """What the handler read from the API for one tick."""

    site: dict | None
    jobs: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # job name -> (outcome, message)
    backup: dict | None = None
    web: dict | None = None
    candidate: dict | None = None  # the blue-green candidate web Deployment


@dataclass
class Decision:
    status: dict
    create: list[dict] = field(default_factory=list)  # objects to create when absent
    site_patch: dict | None = None  # merge patch for the MoodleSite spec
    event: str | None = None


def job_name(plan: str, step: str) -> str:
    return f"{plan}-{step.lower()}"[:63].rstrip("-")


def backup_name(plan: str) -> str:
    return f"{plan}-pre-upgrade"[:63].rstrip("-")


def check_refusal(result: dict, allow_major: bool) -> str | None:
    """Why the target image must not be rolled out, from the CheckPending Job's report (None = go)."""
    db_branch = branch_of_release(result.get("db_release", ""))
    target_branch = result.get("target_branch") or branch_of_release(result.get("target_release", "")) or ""
    if db_branch and target_branch and db_branch != target_branch and not allow_major:
        return (f"the target image is Moodle {branch_to_major(target_branch)} but the site runs "
                f"{branch_to_major(db_branch)}; set allowMajor to upgrade across major versions")
    if (result.get("db_version") and result.get("target_version")
            and compare_versions(result["db_version"], result["target_version"]) > 0):
        return (f"the target image's code ({result['target_version']}) is older than the database "
                f"({result['db_version']}); Moodle cannot be downgraded")
    return None


def step_job(*, plan: str, namespace: str, site_name: str, site_spec: dict, step: str, tag: str,
             command: list[str], owner: dict | None = None) -> dict:
    """A Job running one Moodle CLI step with the site's Secret, env and moodledata, like the chart's."""
    image = "{}:{}".format((site_spec.get("image") or {}).get("repository", "moodle-platform/moodle"), tag)
    env = [
        {"name": "MOODLE_WWWROOT", "value": site_spec["wwwroot"]},
        {"name": "MOODLE_DATAROOT", "value": "/var/www/moodledata"},
        *database_env(site_name, site_spec),
        {"name": "MOODLE_REDIS_HOST", "value": f"{site_name}-redis"},
        {"name": "MOODLE_REDIS_PASSWORD_FILE", "value": "/run/secrets/redis_password"},
    ]
    meta = {"name": job_name(plan, step), "namespace": namespace,
            "labels": {SITE_LABEL: site_name, "platform.moodle.dev/upgradeplan": plan,
                       "platform.moodle.dev/step": step}}
    if owner:
        meta["ownerReferences"] = [owner]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": 3600,
            "template": {
                "metadata": {"labels": {SITE_LABEL: site_name, "platform.moodle.dev/db-client": "true",
                                        "app.kubernetes.io/instance": site_name,
                                        "platform.moodle.dev/upgradeplan": plan}},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 33, "runAsGroup": 33, "fsGroup": 33},
                    "containers": [{
                        "name": "step",
                        "image": image,
                        "command": command,
                        "env": env,
                        "volumeMounts": [
                            {"name": "moodledata", "mountPath": "/var/www/moodledata"},
                            {"name": "secrets", "mountPath": "/run/secrets", "readOnly": True},
                        ],
                        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                    }],
                    "volumes": [
                        {"name": "moodledata", "persistentVolumeClaim": {"claimName": f"{site_name}-moodledata"}},
                        {"name": "secrets", "secret": {"secretName": site_spec["secretRef"]["name"],
                                                       "items": [{"key": "db_password", "path": "db_password"},
                                                                 {"key": "redis_password", "path": "redis_password"}]}},
                    ],
                },
            },
        },
    }


def _history(status: dict, step: str, result: str, now: str) -> list[dict]:
    return [*list(status.get("history") or []), {"step": step, "result": result, "time": now}]


def decide(*, plan: str, namespace: str, spec: dict, status: dict, observed: Observed, now: str,
           owner: dict | None = None, backup_image: str = "moodle-platform/moodle-backup:1") -> Decision:
    """The next move of the UpgradePlan ``plan``; called on every tick, idempotent by construction."""
    status = dict(status or {})
    phase = status.get("phase")
    if phase in TERMINAL_PHASES:
        return Decision(status={})
    site = observed.site
    if site is None:
        # Nothing left to roll back on: stop and say so.
        return _fail(status, status.get("step") or "CheckPending", f"MoodleSite {spec['site']} does not exist", now,
                     rollback=False)
    site_spec = site["spec"]
    step = status.get("step")
    target = spec["targetTag"]

    def job(step_name: str, tag: str, command: list[str]) -> dict:
        return step_job(plan=plan, namespace=namespace, site_name=spec["site"], site_spec=site_spec,
                        step=step_name, tag=tag, command=command, owner=owner)

    def outcome(step_name: str) -> tuple[str, str | None]:
        return observed.jobs.get(job_name(plan, step_name), ("absent", None))

    def advance(next_step: str, **extra) -> Decision:
        new = {**extra, "phase": "Running", "step": next_step, "stepSince": now,
               "history": _history(status, step, "ok", now)}
        new["conditions"] = merge_conditions(status.get("conditions"), [
            condition("Progressing", True, next_step, f"{step} done, now {next_step}")], now)
        return Decision(status=new, event=f"{step} done; next {next_step}")

    if step is None:
        previous = site_spec["image"]["tag"]
        if previous == target:
            return _fail(status, "CheckPending", f"the site already runs {target}", now, rollback=False)
        new = {"phase": "Running", "step": "CheckPending", "previousTag": previous, "stepSince": now,
               "conditions": merge_conditions(status.get("conditions"), [
                   condition("Progressing", True, "CheckPending", f"upgrading {spec['site']} {previous} → {target}"),
                   condition("Failed", False, "InProgress", "")], now)}
        return Decision(status=new, create=[job("CheckPending", target, CHECK_COMMAND)])

    previous = status["previousTag"]
    image_repo = site_spec["image"].get("repository", "moodle-platform/moodle")
    wanted = f"{image_repo}:{target}"
    timeout = int(spec.get("stepTimeoutSeconds", DEFAULT_STEP_TIMEOUT))

    def waiting(what: str, patch: dict | None = None) -> Decision:
        """Keep waiting, unless this step has waited longer than the plan allows."""
        if _seconds_between(status.get("stepSince"), now) > timeout:
            # Only a wait after the upgrade Job ran (Verify of a schema upgrade) may need the DB back.
            return _fail(status, step, f"timed out after {timeout}s waiting for {what}", now,
                         restore=step == "Verify" and not status.get("codeOnly"))
        return Decision(status={}, site_patch=patch)

    if step == "CheckPending":
        result, message = outcome("CheckPending")
        if result == "absent":
            return Decision(status={}, create=[job("CheckPending", target, CHECK_COMMAND)])
        if result == "running":
            return Decision(status={})
        if result == "failed":
            return _fail(status, step, "the pending-upgrade check failed: " + (message or "Job failed"), now, rollback=False)
        try:
            report = json.loads(message or "")
        except ValueError:
            return _fail(status, step, "the pending-upgrade check reported no result", now, rollback=False)
        refusal = check_refusal(report, bool(spec.get("allowMajor")))
        if refusal:
            return _fail(status, step, refusal, now, rollback=False)
        return advance("PreUpgradeBackup", codeOnly=not report.get("pending", True))

    if step == "PreUpgradeBackup":
        backup = observed.backup
        if backup is None:
            return Decision(status={"backupName": backup_name(plan)}, create=[{
                "apiVersion": "platform.moodle.dev/v1alpha1", "kind": "Backup",
                # Not owned by the plan: a pre-upgrade backup outlives it.
                "metadata": {"name": backup_name(plan), "namespace": namespace,
                             "labels": {SITE_LABEL: spec["site"], "platform.moodle.dev/upgradeplan": plan}},
                "spec": {"site": spec["site"], "destination": spec["backup"], "purpose": "pre-upgrade"},
            }])
        bphase = (backup.get("status") or {}).get("phase")
        if bphase == "Failed":
            return _fail(status, step, "the pre-upgrade backup failed; nothing was changed", now, rollback=False)
        if bphase != "Succeeded":
            return Decision(status={})
        if not status.get("codeOnly"):
            return advance("Maintenance", backupName=backup["metadata"]["name"])
        blue_green = (site_spec.get("storage") or {}).get("accessMode") == "ReadWriteMany"
        return advance("Candidate" if blue_green else "SwitchImage", backupName=backup["metadata"]["name"],
                       blueGreen=blue_green)

    if step == "Maintenance":
        result, message = outcome("Maintenance")
        patch = {"cron": {"enabled": False}, "maintenance": True}
        if result == "absent":
            return Decision(status={}, site_patch=patch, create=[job("Maintenance", previous, MAINTENANCE_ON)])
        if result == "failed":
            return _fail(status, step, "enabling maintenance mode failed: " + (message or "Job failed"), now,
                         restore=False)
        if result == "running":
            return Decision(status={}, site_patch=patch)
        return advance("SwitchImage")

    if step == "SwitchImage":
        if site_spec["image"]["tag"] != target:
            return Decision(status={}, site_patch={"image": {"tag": target}})
        if deployment_image(observed.web) != wanted:
            return waiting(f"the web Deployment to switch to {wanted}")
        return advance("Verify" if status.get("codeOnly") else "UpgradeJob")

    if step == "Candidate":
        patch = {"blueGreen": {"candidateTag": target, "active": "main"}}
        if (site_spec.get("blueGreen") or {}).get("candidateTag") != target:
            return Decision(status={}, site_patch=patch)
        if deployment_image(observed.candidate) != wanted or not deployment_available(observed.candidate):
            return waiting(f"the candidate web Deployment on {wanted} to become available")
        return advance("SwitchService")

    if step == "SwitchService":
        if (site_spec.get("blueGreen") or {}).get("active") != "candidate":
            return Decision(status={}, site_patch={"blueGreen": {"candidateTag": target, "active": "candidate"}})
        return advance("Verify")

    if step == "Promote":
        if site_spec["image"]["tag"] != target:
            return Decision(status={}, site_patch={"image": {"tag": target}})
        if deployment_image(observed.web) != wanted or not deployment_available(observed.web):
            return waiting(f"the main web Deployment to run {wanted}")
        return _succeed(status, spec, step, now, site_patch={"blueGreen": dict(BLUE_GREEN_RESET)})

    if step == "UpgradeJob":
        result, message = outcome("UpgradeJob")
        if result == "absent":
            return Decision(status={}, create=[job("UpgradeJob", target, UPGRADE)])
        if result == "running":
            return Decision(status={})
        if result == "failed":
            return _fail(status, step, "upgrade.php failed: " + (message or "the upgrade Job failed"), now)
        return advance("Verify")

    if step == "Verify":
        result, message = outcome("Verify")
        patch = {"cron": {"enabled": True}, "maintenance": False}
        if result == "absent":
            return Decision(status={}, site_patch=patch, create=[job("Verify", target, VERIFY)])
        if result == "failed":
            return _fail(status, step, "verification failed: " + (message or "the verify Job failed"), now,
                         restore=not status.get("codeOnly"))
        if result == "running":
            return Decision(status={}, site_patch=patch)
        serving = observed.candidate if status.get("blueGreen") else observed.web
        if not deployment_available(serving):
            return waiting("the serving web Deployment to become available", patch)
        if status.get("blueGreen"):
            return advance("Promote")
        return _succeed(status, spec, step, now)

    if step == "Restore":
        result, message = outcome("Restore")
        if result == "absent":
            backup = observed.backup or {}
            return Decision(status={}, site_patch={"image": {"tag": previous}, "cron": {"enabled": False},
                                                   "maintenance": True},
                            create=[restore_job(
                                name=job_name(plan, "Restore"), namespace=namespace, site_name=spec["site"],
                                site_spec=site_spec, image_tag=previous, destination=spec["backup"],
                                backup_id=((backup.get("status") or {}).get("manifest") or {}).get("backup_id", ""),
                                backup_image=backup_image, owner=owner,
                                labels={"platform.moodle.dev/upgradeplan": plan, "platform.moodle.dev/step": "Restore"})])
        if result == "running":
            return Decision(status={})
        return _finish_rollback(status, now, restored=result == "succeeded", message=message)

    if step == "RestoreImage":
        return _finish_rollback(status, now, restored=None, message=None)

    return _fail(status, step, f"unknown step {step!r}", now, rollback=False)


def _seconds_between(start: str | None, end: str) -> float:
    if not start:
        return 0.0
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    return (_dt.datetime.strptime(end, fmt) - _dt.datetime.strptime(start, fmt)).total_seconds()


def _succeed(status: dict, spec: dict, step: str, now: str, site_patch: dict | None = None) -> Decision:
    new = {"phase": "Succeeded", "step": "Done", "history": _history(status, step, "ok", now),
           "conditions": merge_conditions(status.get("conditions"), [
               condition("Progressing", False, "Done", ""),
               condition("Succeeded", True, "Upgraded", f"{spec['site']} runs {spec['targetTag']}"),
               condition("Failed", False, "Upgraded", "")], now)}
    return Decision(status=new, site_patch=site_patch, event=f"upgrade to {spec['targetTag']} done")


def _fail(status: dict, step: str, message: str, now: str, *, rollback: bool = True, restore: bool = True) -> Decision:
    """Record the failed step; roll back when something was already changed."""
    base = {"failedStep": step, "history": _history(status, step, "failed: " + message, now)}
    if not rollback:
        base.update({"phase": "Failed", "step": step, "conditions": merge_conditions(status.get("conditions"), [
            condition("Failed", True, f"{step}Failed", f"step {step} failed: {message}"),
            condition("Progressing", False, "Stopped", "")], now)})
        return Decision(status=base, event=f"step {step} failed: {message}")
    base.update({"phase": "RollingBack", "step": "Restore" if restore else "RestoreImage",
                 "failureMessage": message,
                 "conditions": merge_conditions(status.get("conditions"), [
                     condition("Progressing", True, "RollingBack", f"step {step} failed: {message}")], now)})
    return Decision(status=base, event=f"step {step} failed: {message}; rolling back")


def _finish_rollback(status: dict, now: str, *, restored: bool | None, message: str | None) -> Decision:
    failed = status.get("failedStep", "?")
    why = status.get("failureMessage", "")
    previous = status.get("previousTag")
    if restored is False:
        text = (f"step {failed} failed ({why}); restoring backup {status.get('backupName')} ALSO failed "
                f"({message or 'Job failed'}): the site stays in maintenance on {previous}, act by hand")
    elif restored:
        text = f"step {failed} failed ({why}); restored backup {status.get('backupName')} and image {previous}"
    else:
        text = f"step {failed} failed ({why}); database untouched, back on image {previous}"
    patch = {"image": {"tag": previous}, "blueGreen": dict(BLUE_GREEN_RESET)}
    if restored is not False:
        patch.update({"cron": {"enabled": True}, "maintenance": False})
    new = {"phase": "Failed", "step": status.get("step"),
           "history": _history(status, status.get("step"), "ok" if restored is not False else "failed", now),
           "conditions": merge_conditions(status.get("conditions"), [
               condition("Failed", True, f"{failed}Failed", text),
               condition("Progressing", False, "RolledBack", "")], now)}
    return Decision(status=new, site_patch=patch, event=text)
