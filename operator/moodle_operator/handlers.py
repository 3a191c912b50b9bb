"""kopf handlers: read, call a pure function, write. No decisions are made here.

Run: ``kopf run -m moodle_operator.handlers --all-namespaces`` (the image's entry point).
Environment: MOODLE_OPERATOR_INTERVAL (timer seconds, default 10), MOODLE_OPERATOR_METRICS_PORT
(default 8080, 0 = off), MOODLE_OPERATOR_PEERING (kopf peering name for leader election, default
``moodle-operator``; empty = standalone), MOODLE_OPERATOR_BACKUP_IMAGE, MOODLE_OPERATOR_HELM,
MOODLE_OPERATOR_CHART.
"""

from __future__ import annotations

import datetime
import os
import time

import kopf
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import DynamicApiError

from . import (
    API_VERSION,
    GROUP,
    ROLLBACK_ANNOTATION,
    SITE_LABEL,
    VERSION,
    backups,
    desired,
    metrics,
    restores,
    upgrade,
)
from .conditions import condition, merge_conditions, now_iso
from .kube import Kube, api_client
from .render import RenderError, render_chart

INTERVAL = float(os.environ.get("MOODLE_OPERATOR_INTERVAL", "10"))
BACKUP_IMAGE = os.environ.get("MOODLE_OPERATOR_BACKUP_IMAGE", backups.BACKUP_IMAGE_DEFAULT)
_state: dict = {}


def _kube() -> Kube:
    return _state["kube"]


def _owner(body) -> dict:
    return {"apiVersion": body["apiVersion"], "kind": body["kind"], "name": body["metadata"]["name"],
            "uid": body["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


def _api_errors(kind: str):
    """Turn API errors into kopf retries (TemporaryError) and count them."""

    class _Guard:
        def __enter__(self):
            return self

        def __exit__(self, exc_type, exc, tb):
            if exc_type is not None and issubclass(exc_type, (ApiException, DynamicApiError)):
                metrics.FAILURES.labels(kind, "api").inc()
                raise kopf.TemporaryError(f"Kubernetes API error: {exc}", delay=min(INTERVAL, 15)) from exc
            return False

    return _Guard()


@kopf.on.login()
def login(**kwargs):
    """In a pod: the ServiceAccount token. Elsewhere: $KUBECONFIG (the tests' ServiceAccount token)."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.startup()
def startup(settings: kopf.OperatorSettings, logger, **_):
    # Keep kopf's bookkeeping in annotations under our domain; status stays ours (and schema-checked).
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=f"kopf.{GROUP}")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=f"kopf.{GROUP}")
    settings.persistence.finalizer = f"{GROUP}/operator"
    peering = os.environ.get("MOODLE_OPERATOR_PEERING", "moodle-operator")
    if peering:
        # Leader election: peers with the same name see each other; a higher-priority one pauses
        # the others (kopf peering). The chart runs one replica with a Recreate strategy.
        settings.peering.name = peering
        settings.peering.clusterwide = True
        settings.peering.mandatory = True
        settings.peering.priority = int(os.environ.get("MOODLE_OPERATOR_PRIORITY", "0"))
    else:
        settings.peering.standalone = True
    settings.posting.level = 20  # INFO events and above become Kubernetes Events
    kube = Kube(api_client())
    _state["kube"] = kube
    _state["kube_version"] = kube.server_version()
    port = int(os.environ.get("MOODLE_OPERATOR_METRICS_PORT", "8080"))
    if port and not _state.get("metrics_started"):
        metrics.serve(port)
        _state["metrics_started"] = True
    logger.info("moodle-operator started against Kubernetes %s", _state["kube_version"])


# ----------------------------------------------------------------------------------------------
# MoodleSite
@kopf.on.resume(GROUP, VERSION, "moodlesites")
@kopf.on.create(GROUP, VERSION, "moodlesites")
@kopf.on.update(GROUP, VERSION, "moodlesites")
def reconcile_site(name, namespace, uid, spec, meta, status, body, patch, logger, **_):
    metrics.RECONCILES.labels("MoodleSite").inc()
    values = desired.chart_values(name, spec, meta.get("annotations"))
    try:
        rendered = render_chart(name, namespace, values, kube_version=_state["kube_version"])
    except RenderError as exc:
        metrics.FAILURES.labels("MoodleSite", "render").inc()
        with _api_errors("MoodleSite"):
            _kube().dyn.resources.get(api_version=API_VERSION, kind="MoodleSite").status.patch(
                name=name, namespace=namespace, content_type="application/merge-patch+json",
                body={"status": {"conditions": merge_conditions(status.get("conditions"), [
                    condition("Ready", False, "RenderFailed", str(exc), meta.get("generation")),
                    condition("Degraded", True, "RenderFailed", str(exc), meta.get("generation"))])}})
        raise kopf.PermanentError(f"the moodle chart refused this MoodleSite: {exc}") from exc
    objects = desired.finalize_objects(rendered, site_name=name, site_uid=uid, namespace=namespace)
    with _api_errors("MoodleSite"):
        for obj in objects:
            _kube().apply(obj)
        for key in desired.objects_to_prune(status.get("appliedObjects"), objects):
            logger.info("pruning %s (no longer rendered)", key)
            _kube().delete_key(key, namespace)
    image = "{}:{}".format(values["image"]["repository"], values["image"]["tag"])
    patch.status["appliedObjects"] = [desired.object_key(o) for o in objects]
    patch.status["image"] = image
    patch.status["observedGeneration"] = meta.get("generation")
    rollback = (meta.get("annotations") or {}).get(ROLLBACK_ANNOTATION)
    patch.status["rollbackTag"] = rollback or None
    if rollback and rollback != status.get("rollbackTag"):
        kopf.warn(body, reason="Rollback", message=f"web and cron rolled back to {image} by annotation")
    logger.info("applied %d objects for %s (%s)", len(objects), name, image)


@kopf.timer(GROUP, VERSION, "moodlesites", interval=INTERVAL)
def site_status(name, namespace, spec, meta, status, patch, **_):
    """Conditions from what the Deployments report (the kubelet and controllers write those)."""
    tag = desired.effective_tag(spec, meta.get("annotations"))
    expected = "{}:{}".format(spec["image"].get("repository", "moodle-platform/moodle"), tag)
    with _api_errors("MoodleSite"):
        web = _kube().get("apps/v1", "Deployment", f"{name}-web", namespace)
        cron = _kube().get("apps/v1", "Deployment", f"{name}-cron", namespace)
    cron_wanted = bool((spec.get("cron") or {}).get("enabled", True)) and not spec.get("maintenance", False)
    new = desired.site_conditions(generation=meta.get("generation"), web=web, cron=cron,
                                  cron_wanted=cron_wanted, expected_image=expected)
    merged = merge_conditions(status.get("conditions"), new)
    available = ((web or {}).get("status") or {}).get("availableReplicas", 0)
    if merged != status.get("conditions"):
        patch.status["conditions"] = merged
    if available != status.get("availableReplicas"):
        patch.status["availableReplicas"] = available


# ----------------------------------------------------------------------------------------------
# Backup
def _epoch(stamp: str | None) -> float:
    if not stamp:
        return time.time()
    return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC).timestamp()


def _site(namespace: str, site_name: str) -> dict:
    site = _kube().get(API_VERSION, "MoodleSite", site_name, namespace)
    if site is None:
        raise kopf.TemporaryError(f"MoodleSite {site_name} not found in {namespace}", delay=max(INTERVAL, 5))
    return site


@kopf.on.resume(GROUP, VERSION, "backups")
@kopf.on.create(GROUP, VERSION, "backups")
def start_backup(name, namespace, spec, status, body, patch, **_):
    if status.get("phase") in ("Succeeded", "Failed"):
        return
    metrics.RECONCILES.labels("Backup").inc()
    with _api_errors("Backup"):
        site = _site(namespace, spec["site"])
        tag = desired.effective_tag(site["spec"], site["metadata"].get("annotations"))
        common = {"name": f"backup-{name}"[:52], "namespace": namespace, "site_name": spec["site"],
                  "site_spec": site["spec"], "image_tag": tag, "backup_spec": spec, "backup_image": BACKUP_IMAGE,
                  "backup_name": name}
        if spec.get("schedule"):
            obj = backups.backup_cronjob(**common)
            kopf.adopt(obj, owner=body)
            _kube().create_if_absent(obj)
            patch.status["phase"] = "Scheduled"
            patch.status["cronJobName"] = obj["metadata"]["name"]
        else:
            obj = backups.backup_job(**common)
            kopf.adopt(obj, owner=body)
            _kube().create_if_absent(obj)
            patch.status["phase"] = "Pending"
            patch.status["jobName"] = obj["metadata"]["name"]


@kopf.timer(GROUP, VERSION, "backups", interval=INTERVAL,
            when=lambda status, spec, **_: status.get("phase") in ("Pending", "Running") and not spec.get("schedule"))
def backup_progress(name, namespace, spec, status, body, patch, **_):
    job_name = status.get("jobName") or f"backup-{name}"[:52]
    with _api_errors("Backup"):
        job = _kube().get("batch/v1", "Job", job_name, namespace)
        pods = _kube().list("v1", "Pod", namespace, f"job-name={job_name}") if job else []
    new = backups.backup_status(job, pods)
    for key, value in new.items():
        if key == "conditions":
            value = merge_conditions(status.get("conditions"), value)
        if status.get(key) != value:
            patch.status[key] = value
    if new.get("phase") == "Succeeded":
        metrics.record_backup_success(namespace, spec["site"], _epoch(new.get("completedAt")))
        kopf.info(body, reason="BackupSucceeded", message=f"snapshot {new.get('snapshotId')}, {new.get('sizeBytes')} bytes")
    elif new.get("phase") == "Failed":
        metrics.FAILURES.labels("Backup", "job").inc()
        kopf.warn(body, reason="BackupFailed", message=new["conditions"][0]["message"])


@kopf.timer(GROUP, VERSION, "backups", interval=INTERVAL, when=lambda spec, **_: bool(spec.get("schedule")))
def scheduled_backup_progress(name, namespace, spec, status, body, patch, **_):
    """Scheduled Backups: the result of the newest run of the CronJob, and the backup-age metric."""
    with _api_errors("Backup"):
        jobs = _kube().list("batch/v1", "Job", namespace, f"{backups.BACKUP_LABEL}={name}")
        pods = _kube().list("v1", "Pod", namespace, f"{backups.BACKUP_LABEL}={name}") if jobs else []
    new = backups.scheduled_status(jobs, pods)
    changed = False
    for key, value in new.items():
        if key == "conditions":
            value = merge_conditions(status.get("conditions"), value)
        if status.get(key) != value:
            patch.status[key] = value
            changed = True
    if new.get("lastSuccessfulTime"):
        metrics.record_backup_success(namespace, spec["site"], _epoch(new["lastSuccessfulTime"]))
    if changed and new.get("jobName") and new.get("jobName") != status.get("jobName"):
        ok = any(c.get("status") == "True" for c in new.get("conditions", []))
        (kopf.info if ok else kopf.warn)(body, reason="ScheduledBackup", message=f"run {new['jobName']}: "
                                         + ("succeeded" if ok else "failed"))


# ----------------------------------------------------------------------------------------------
# UpgradePlan
@kopf.timer(GROUP, VERSION, "upgradeplans", interval=INTERVAL,
            when=lambda status, **_: status.get("phase") not in upgrade.TERMINAL_PHASES)
def upgrade_tick(name, namespace, spec, status, body, patch, logger, **_):
    metrics.RECONCILES.labels("UpgradePlan").inc()
    kube = _kube()
    with _api_errors("UpgradePlan"):
        site = kube.get(API_VERSION, "MoodleSite", spec["site"], namespace)
        jobs = kube.list("batch/v1", "Job", namespace, f"platform.moodle.dev/upgradeplan={name}")
        pods = kube.list("v1", "Pod", namespace, f"platform.moodle.dev/upgradeplan={name}") if jobs else []
        backup = kube.get(API_VERSION, "Backup", upgrade.backup_name(name), namespace)
        web = kube.get("apps/v1", "Deployment", f"{spec['site']}-web", namespace)
        candidate = (kube.get("apps/v1", "Deployment", f"{spec['site']}-web-candidate", namespace)
                     if status.get("blueGreen") else None)
    observed = upgrade.Observed(site=site, backup=backup, web=web, candidate=candidate, jobs={
        j["metadata"]["name"]: (backups.job_outcome(j), backups.termination_message(
            [p for p in pods if (p["metadata"].get("labels") or {}).get("job-name") == j["metadata"]["name"]],
            j["spec"]["template"]["spec"]["containers"][0]["name"]))
        for j in jobs})
    decision = upgrade.decide(plan=name, namespace=namespace, spec=spec, status=status, observed=observed,
                              now=now_iso(), owner=_owner(body), backup_image=BACKUP_IMAGE)
    with _api_errors("UpgradePlan"):
        for obj in decision.create:
            if kube.create_if_absent(obj):
                logger.info("created %s %s", obj["kind"], obj["metadata"]["name"])
        if decision.site_patch:
            kube.merge_patch(API_VERSION, "MoodleSite", spec["site"], namespace, {"spec": decision.site_patch})
    for key, value in decision.status.items():
        patch.status[key] = value
    if decision.event:
        failed = decision.status.get("phase") in ("Failed", "RollingBack")
        (kopf.warn if failed else kopf.info)(body, reason="UpgradePlan", message=decision.event)
        if failed:
            metrics.FAILURES.labels("UpgradePlan", decision.status.get("failedStep") or "step").inc()


# ----------------------------------------------------------------------------------------------
# Restore
@kopf.timer(GROUP, VERSION, "restores", interval=INTERVAL,
            when=lambda status, **_: status.get("phase") not in restores.TERMINAL_PHASES)
def restore_tick(name, namespace, spec, status, body, patch, logger, **_):
    metrics.RECONCILES.labels("Restore").inc()
    kube = _kube()
    with _api_errors("Restore"):
        site = kube.get(API_VERSION, "MoodleSite", spec["site"], namespace)
        safety = kube.get(API_VERSION, "Backup", restores.safety_backup_name(name), namespace)
        job = kube.get("batch/v1", "Job", restores.job_name(name), namespace)
        pods = kube.list("v1", "Pod", namespace, f"job-name={restores.job_name(name)}") if job else []
    observed = restores.Observed(site=site, safety=safety, job=(
        backups.job_outcome(job), backups.termination_message(pods, "restore")))
    decision = restores.decide(name=name, namespace=namespace, spec=spec, status=status, observed=observed,
                               now=now_iso(), owner=_owner(body), backup_image=BACKUP_IMAGE)
    with _api_errors("Restore"):
        if decision.site_patch:
            kube.merge_patch(API_VERSION, "MoodleSite", spec["site"], namespace, {"spec": decision.site_patch})
        for obj in decision.create:
            if kube.create_if_absent(obj):
                logger.info("created %s %s", obj["kind"], obj["metadata"]["name"])
    for key, value in decision.status.items():
        patch.status[key] = value
    if decision.event:
        (kopf.warn if decision.warning else kopf.info)(body, reason="Restore", message=decision.event)
        if decision.warning:
            metrics.FAILURES.labels("Restore", decision.status.get("phase") or "step").inc()


__all__ = ["SITE_LABEL"]
