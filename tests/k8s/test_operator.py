"""The operator against a real API server: objects, status, RBAC, rollback, Backup, UpgradePlan."""

from __future__ import annotations

import json
import urllib.request

import kubernetes
import pytest
from kubernetes.dynamic.exceptions import ForbiddenError

from .harness import REAL, wait_for

API = "platform.moodle.dev/v1alpha1"
SUMMARY = {"backup_id": "20261124T020000Z-site", "database_snapshot": "d" * 64, "moodledata_snapshot": "a" * 64,
           "database_sha256": "e" * 64, "database_size_bytes": 1000, "moodledata_size_bytes": 2345,
           "duration_seconds": 12.5, "moodle_release": "4.5.6 (Build: 20250811)", "moodle_version": "2024100706.00",
           "image": "moodle-platform/moodle:4.5.6"}
needs_standins = pytest.mark.skipif(REAL, reason="writes Job/Pod status by hand; a real cluster's controllers own it")


def site(name: str, tag: str = "4.5.6", **spec) -> dict:
    body = {"apiVersion": API, "kind": "MoodleSite", "metadata": {"name": name},
            "spec": {"image": {"tag": tag}, "wwwroot": f"https://{name}.example.org", "secretRef": {"name": f"{name}-creds"}}}
    body["spec"].update(spec)
    return body


def cond(obj: dict | None, ctype: str) -> str | None:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c["type"] == ctype:
            return c["status"]
    return None


def image_of(cluster, name: str, ns: str) -> str | None:
    dep = cluster.get("apps/v1", "Deployment", name, ns)
    return dep["spec"]["template"]["spec"]["containers"][0]["image"] if dep else None


@pytest.fixture
def ns(cluster, request):
    name = "t-" + request.node.name.replace("_", "-")[:50].lower().strip("-")
    cluster.namespace(name)
    return name


@needs_standins
def test_moodlesite_creates_objects_and_becomes_ready(cluster, operator, ns):
    cluster.apply(site("alpha"), namespace=ns)
    web = wait_for(lambda: cluster.get("apps/v1", "Deployment", "alpha-web", ns), what="web Deployment")
    for kind, name in [("Deployment", "alpha-cron"), ("StatefulSet", "alpha-db"), ("StatefulSet", "alpha-redis"),
                       ("PersistentVolumeClaim", "alpha-moodledata"), ("Service", "alpha"),
                       ("NetworkPolicy", "alpha-db"), ("NetworkPolicy", "alpha-redis")]:
        api = {"Deployment": "apps/v1", "StatefulSet": "apps/v1", "NetworkPolicy": "networking.k8s.io/v1"}.get(kind, "v1")
        assert wait_for(lambda a=api, k=kind, n=name: cluster.get(a, k, n, ns), what=f"{kind} {name}")
    # Everything but the data is owned by the site; the claim is not (deleting a site keeps its files).
    assert web["metadata"]["ownerReferences"][0]["kind"] == "MoodleSite"
    assert "ownerReferences" not in cluster.get("v1", "PersistentVolumeClaim", "alpha-moodledata", ns)["metadata"]
    assert image_of(cluster, "alpha-web", ns) == "moodle-platform/moodle:4.5.6"
    # Server-side apply: the operator is the field manager.
    assert any(m["manager"] == "moodle-operator" for m in web["metadata"]["managedFields"])
    # Not Ready until the (stand-in) kubelet reports the Deployments available.
    wait_for(lambda: cond(cluster.get(API, "MoodleSite", "alpha", ns), "Ready") == "False", what="Ready=False")
    cluster.mark_deployment_available("alpha-web", ns)
    cluster.mark_deployment_available("alpha-cron", ns)
    obj = wait_for(lambda: (o := cluster.get(API, "MoodleSite", "alpha", ns)) and cond(o, "Ready") == "True" and o,
                   what="Ready=True")
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    assert cond(obj, "Degraded") == "False"
    assert obj["status"]["availableReplicas"] == 1


def test_rollback_annotation_swaps_web_and_cron_images(cluster, operator, ns):
    cluster.apply(site("beta", tag="4.5.7"), namespace=ns)
    wait_for(lambda: image_of(cluster, "beta-cron", ns) == "moodle-platform/moodle:4.5.7", what="cron on 4.5.7")
    cluster.res(API, "MoodleSite").patch(name="beta", namespace=ns, content_type="application/merge-patch+json",
                                         body={"metadata": {"annotations": {"platform.moodle.dev/rollback": "4.5.6"}}})
    wait_for(lambda: image_of(cluster, "beta-web", ns) == "moodle-platform/moodle:4.5.6", what="web rolled back")
    wait_for(lambda: image_of(cluster, "beta-cron", ns) == "moodle-platform/moodle:4.5.6", what="cron rolled back")
    obj = wait_for(lambda: (o := cluster.get(API, "MoodleSite", "beta", ns)) and o["status"].get("rollbackTag") and o,
                   what="status.rollbackTag")
    assert obj["status"]["image"] == "moodle-platform/moodle:4.5.6"


def test_cron_off_prunes_the_cron_deployment_but_never_the_claim(cluster, operator, ns):
    cluster.apply(site("gamma"), namespace=ns)
    wait_for(lambda: cluster.get("apps/v1", "Deployment", "gamma-cron", ns), what="cron Deployment")
    cluster.res(API, "MoodleSite").patch(name="gamma", namespace=ns, content_type="application/merge-patch+json",
                                         body={"spec": {"cron": {"enabled": False}}})
    wait_for(lambda: cluster.get("apps/v1", "Deployment", "gamma-cron", ns) is None, what="cron pruned")
    assert cluster.get("v1", "PersistentVolumeClaim", "gamma-moodledata", ns) is not None


def test_operator_rbac_is_least_privilege(cluster, operator_kubeconfig):
    """The operator's own identity cannot read Secrets nor delete claims (real RBAC decides)."""
    client = kubernetes.config.new_client_from_config(config_file=operator_kubeconfig)
    authz = kubernetes.client.AuthorizationV1Api(client)

    def can(verb, resource, group=""):
        review = kubernetes.client.V1SelfSubjectAccessReview(spec=kubernetes.client.V1SelfSubjectAccessReviewSpec(
            resource_attributes=kubernetes.client.V1ResourceAttributes(verb=verb, resource=resource, group=group,
                                                                       namespace="default")))
        return authz.create_self_subject_access_review(review).status.allowed

    assert can("patch", "deployments", "apps")
    assert can("create", "jobs", "batch")
    assert not can("get", "secrets")
    assert not can("list", "secrets")
    assert not can("delete", "persistentvolumeclaims")
    assert not can("delete", "backups", "platform.moodle.dev")
    with pytest.raises(kubernetes.client.ApiException) as err:
        kubernetes.client.CoreV1Api(client).list_namespaced_secret("default")
    assert err.value.status == 403


def _backup(name: str, site_name: str, **extra) -> dict:
    body = {"apiVersion": API, "kind": "Backup", "metadata": {"name": name},
            "spec": {"site": site_name, "destination": {"repository": "s3:https://s3.example.org/bucket/site",
                                                        "secretRef": {"name": "s3-creds"}}}}
    body["spec"].update(extra)
    return body


@needs_standins
def test_backup_job_success_records_snapshot_size_duration(cluster, operator, ns):
    cluster.apply(site("delta"), namespace=ns)
    cluster.apply(_backup("nightly-1", "delta"), namespace=ns)
    job = wait_for(lambda: cluster.get("batch/v1", "Job", "backup-nightly-1", ns), what="backup Job")
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["envFrom"] == [{"secretRef": {"name": "s3-creds"}}]  # keys by reference only
    assert "--platform" in container["args"] and "kubernetes" in container["args"]
    cluster.finish_job("backup-nightly-1", ns, succeeded=True, message=json.dumps(SUMMARY))
    obj = wait_for(lambda: (o := cluster.get(API, "Backup", "nightly-1", ns)) and o["status"].get("phase") == "Succeeded" and o,
                   what="Backup Succeeded")
    assert obj["status"]["snapshotId"] == "a" * 64
    assert obj["status"]["sizeBytes"] == 3345
    assert obj["status"]["durationSeconds"] == 12.5
    assert obj["status"]["manifest"]["backup_id"] == SUMMARY["backup_id"]


@needs_standins
def test_backup_job_failure_is_recorded(cluster, operator, ns):
    cluster.apply(site("eps"), namespace=ns)
    cluster.apply(_backup("b-fail", "eps"), namespace=ns)
    wait_for(lambda: cluster.get("batch/v1", "Job", "backup-b-fail", ns), what="backup Job")
    cluster.finish_job("backup-b-fail", ns, succeeded=False)
    obj = wait_for(lambda: (o := cluster.get(API, "Backup", "b-fail", ns)) and o["status"].get("phase") == "Failed" and o,
                   what="Backup Failed")
    assert cond(obj, "Succeeded") == "False"
    assert "backoff limit" in obj["status"]["conditions"][0]["message"]


@needs_standins
def test_scheduled_backup_creates_a_cronjob(cluster, operator, ns):
    cluster.apply(site("zeta"), namespace=ns)
    cluster.apply(_backup("daily", "zeta", schedule="0 2 * * *"), namespace=ns)
    cron = wait_for(lambda: cluster.get("batch/v1", "CronJob", "backup-daily", ns), what="CronJob")
    assert cron["spec"]["schedule"] == "0 2 * * *"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    # Stand in for the CronJob controller: one run, made from the CronJob's template.
    template = cron["spec"]["jobTemplate"]
    cluster.res("batch/v1", "Job").create(namespace=ns, body={
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "backup-daily-29000000", "labels": template["metadata"]["labels"]},
        "spec": template["spec"]})
    cluster.finish_job("backup-daily-29000000", ns, succeeded=True, message=json.dumps(SUMMARY))
    obj = wait_for(lambda: (o := cluster.get(API, "Backup", "daily", ns)) and o["status"].get("lastSuccessfulTime") and o,
                   what="scheduled run recorded")
    assert obj["status"]["phase"] == "Scheduled" and obj["status"]["snapshotId"] == "a" * 64
    assert obj["status"]["jobName"] == "backup-daily-29000000"


def _plan(name: str, site_name: str, target: str) -> dict:
    return {"apiVersion": API, "kind": "UpgradePlan", "metadata": {"name": name},
            "spec": {"site": site_name, "targetTag": target,
                     "backup": {"repository": "s3:https://s3.example.org/bucket/site", "secretRef": {"name": "s3-creds"}}}}


def _plan_step(cluster, ns, name):
    return ((cluster.get(API, "UpgradePlan", name, ns) or {}).get("status") or {}).get("step")


def _drive_until(cluster, ns, plan, step):
    wait_for(lambda: _plan_step(cluster, ns, plan) == step, timeout=30, what=f"{plan} at {step}")


CHECK_OK = json.dumps({"pending": True, "target_version": "2024100707.00", "target_branch": "405",
                       "db_version": "2024100706.00", "db_release": "4.5.6 (Build: 20250811)"})


def _walk_to_upgrade_job(cluster, ns, site_name, plan):
    cluster.apply(site(site_name), namespace=ns)
    wait_for(lambda: cluster.get("apps/v1", "Deployment", f"{site_name}-web", ns), what="web Deployment")
    cluster.apply(_plan(plan, site_name, "4.5.7"), namespace=ns)
    wait_for(lambda: cluster.get("batch/v1", "Job", f"{plan}-checkpending", ns), what="check Job")
    cluster.finish_job(f"{plan}-checkpending", ns, succeeded=True, message=CHECK_OK)
    _drive_until(cluster, ns, plan, "PreUpgradeBackup")
    wait_for(lambda: cluster.get("batch/v1", "Job", f"backup-{plan}-pre-upgrade", ns), what="pre-upgrade backup Job")
    cluster.finish_job(f"backup-{plan}-pre-upgrade", ns, succeeded=True, message=json.dumps(SUMMARY))
    _drive_until(cluster, ns, plan, "Maintenance")
    wait_for(lambda: cluster.get("batch/v1", "Job", f"{plan}-maintenance", ns), what="maintenance Job")
    # Maintenance: cron scaled away before anything changes.
    wait_for(lambda: cluster.get("apps/v1", "Deployment", f"{site_name}-cron", ns) is None, what="cron stopped")
    cluster.finish_job(f"{plan}-maintenance", ns, succeeded=True)
    _drive_until(cluster, ns, plan, "UpgradeJob")
    assert image_of(cluster, f"{site_name}-web", ns) == "moodle-platform/moodle:4.5.7"
    job = wait_for(lambda: cluster.get("batch/v1", "Job", f"{plan}-upgradejob", ns), what="upgrade Job")
    assert "upgrade.php --non-interactive" in " ".join(job["spec"]["template"]["spec"]["containers"][0]["command"])


@needs_standins
def test_upgradeplan_walks_every_state_to_done(cluster, operator, ns):
    _walk_to_upgrade_job(cluster, ns, "eta", "up1")
    cluster.finish_job("up1-upgradejob", ns, succeeded=True)
    _drive_until(cluster, ns, "up1", "Verify")
    wait_for(lambda: cluster.get("batch/v1", "Job", "up1-verify", ns), what="verify Job")
    wait_for(lambda: cluster.get("apps/v1", "Deployment", "eta-cron", ns), what="cron back")
    cluster.finish_job("up1-verify", ns, succeeded=True)
    cluster.mark_deployment_available("eta-web", ns)
    plan = wait_for(lambda: (o := cluster.get(API, "UpgradePlan", "up1", ns)) and o["status"].get("phase") == "Succeeded" and o,
                    what="plan Succeeded")
    steps = [h["step"] for h in plan["status"]["history"]]
    assert steps == ["CheckPending", "PreUpgradeBackup", "Maintenance", "SwitchImage", "UpgradeJob", "Verify"]
    assert cond(plan, "Succeeded") == "True"
    assert cluster.get(API, "MoodleSite", "eta", ns)["spec"]["image"]["tag"] == "4.5.7"
    # The pre-upgrade backup outlives the plan: it is not owned by it.
    assert "ownerReferences" not in cluster.get(API, "Backup", "up1-pre-upgrade", ns)["metadata"]


@needs_standins
def test_upgradeplan_failed_upgrade_job_restores_and_fails_naming_the_step(cluster, operator, ns):
    _walk_to_upgrade_job(cluster, ns, "theta", "up2")
    cluster.finish_job("up2-upgradejob", ns, succeeded=False)
    _drive_until(cluster, ns, "up2", "Restore")
    restore = wait_for(lambda: cluster.get("batch/v1", "Job", "up2-restore", ns), what="restore Job")
    args = restore["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--backup-id") + 1] == SUMMARY["backup_id"]  # exactly the pre-upgrade backup
    # The engine checks the backup against the code it goes back to (the previous image's version.php).
    assert restore["spec"]["template"]["spec"]["initContainers"][0]["image"] == "moodle-platform/moodle:4.5.6"
    cluster.finish_job("up2-restore", ns, succeeded=True)
    plan = wait_for(lambda: (o := cluster.get(API, "UpgradePlan", "up2", ns)) and o["status"].get("phase") == "Failed" and o,
                    what="plan Failed")
    failed = next(c for c in plan["status"]["conditions"] if c["type"] == "Failed")
    assert failed["status"] == "True" and failed["reason"] == "UpgradeJobFailed"
    assert "UpgradeJob" in failed["message"] and "restored backup up2-pre-upgrade" in failed["message"]
    wait_for(lambda: image_of(cluster, "theta-web", ns) == "moodle-platform/moodle:4.5.6", what="previous image back")
    wait_for(lambda: cluster.get("apps/v1", "Deployment", "theta-cron", ns), what="cron back on")


@needs_standins
def test_code_only_upgrade_goes_blue_green_and_switches_the_service(cluster, operator, ns):
    cluster.apply(site("kappa", storage={"accessMode": "ReadWriteMany"}), namespace=ns)
    wait_for(lambda: cluster.get("apps/v1", "Deployment", "kappa-web", ns), what="web Deployment")
    cluster.mark_deployment_available("kappa-web", ns)
    cluster.apply(_plan("up4", "kappa", "4.5.7"), namespace=ns)
    wait_for(lambda: cluster.get("batch/v1", "Job", "up4-checkpending", ns), what="check Job")
    cluster.finish_job("up4-checkpending", ns, succeeded=True, message=json.dumps({**json.loads(CHECK_OK), "pending": False}))
    wait_for(lambda: cluster.get("batch/v1", "Job", "backup-up4-pre-upgrade", ns), what="pre-upgrade backup Job")
    cluster.finish_job("backup-up4-pre-upgrade", ns, succeeded=True, message=json.dumps(SUMMARY))
    _drive_until(cluster, ns, "up4", "Candidate")
    wait_for(lambda: image_of(cluster, "kappa-web-candidate", ns) == "moodle-platform/moodle:4.5.7", what="candidate")
    selector = lambda: cluster.get("v1", "Service", "kappa", ns)["spec"]["selector"]["platform.moodle.dev/track"]  # noqa: E731
    assert selector() == "main"  # no traffic to the candidate before it is healthy
    assert image_of(cluster, "kappa-web", ns) == "moodle-platform/moodle:4.5.6"
    cluster.mark_deployment_available("kappa-web-candidate", ns)
    wait_for(lambda: selector() == "candidate", what="Service switched to the candidate")
    wait_for(lambda: cluster.get("batch/v1", "Job", "up4-verify", ns), what="verify Job")
    cluster.finish_job("up4-verify", ns, succeeded=True)
    _drive_until(cluster, ns, "up4", "Promote")
    wait_for(lambda: image_of(cluster, "kappa-web", ns) == "moodle-platform/moodle:4.5.7", what="main promoted")
    assert selector() == "candidate"  # still served by the candidate while main rolls
    cluster.mark_deployment_available("kappa-web", ns)
    plan = wait_for(lambda: (o := cluster.get(API, "UpgradePlan", "up4", ns)) and o["status"].get("phase") == "Succeeded" and o,
                    what="plan Succeeded")
    assert [h["step"] for h in plan["status"]["history"]] == [
        "CheckPending", "PreUpgradeBackup", "Candidate", "SwitchService", "Verify", "Promote"]
    wait_for(lambda: selector() == "main", what="Service back on main")
    wait_for(lambda: cluster.get("apps/v1", "Deployment", "kappa-web-candidate", ns) is None, what="candidate pruned")
    assert cluster.get("batch/v1", "Job", "up4-maintenance", ns) is None  # code-only: no maintenance window


@needs_standins
def test_upgradeplan_refuses_a_major_upgrade_before_touching_anything(cluster, operator, ns):
    cluster.apply(site("iota"), namespace=ns)
    wait_for(lambda: cluster.get("apps/v1", "Deployment", "iota-web", ns), what="web Deployment")
    cluster.apply(_plan("up3", "iota", "5.0.1"), namespace=ns)
    wait_for(lambda: cluster.get("batch/v1", "Job", "up3-checkpending", ns), what="check Job")
    cluster.finish_job("up3-checkpending", ns, succeeded=True, message=json.dumps(
        {"pending": True, "target_version": "2025041400.00", "target_branch": "500",
         "db_version": "2024100706.00", "db_release": "4.5.6 (Build: 20250811)"}))
    plan = wait_for(lambda: (o := cluster.get(API, "UpgradePlan", "up3", ns)) and o["status"].get("phase") == "Failed" and o,
                    what="plan Failed")
    failed = next(c for c in plan["status"]["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "CheckPendingFailed" and "allowMajor" in failed["message"]
    assert cluster.get(API, "Backup", "up3-pre-upgrade", ns) is None
    assert image_of(cluster, "iota-web", ns) == "moodle-platform/moodle:4.5.6"


def test_metrics_endpoint_counts_reconciles(operator):
    text = urllib.request.urlopen(f"http://127.0.0.1:{operator}/metrics", timeout=5).read().decode()
    assert "moodle_operator_reconciles_total" in text
    values = [float(line.split()[-1]) for line in text.splitlines()
              if line.startswith('moodle_operator_reconciles_total{kind="MoodleSite"}')]
    assert values and values[0] >= 1


def test_forbidden_is_forbidden(cluster, operator_kubeconfig):
    """Sanity check that the operator identity is not an admin in disguise."""
    from kubernetes.dynamic import DynamicClient
    dyn = DynamicClient(kubernetes.config.new_client_from_config(config_file=operator_kubeconfig))
    with pytest.raises(ForbiddenError):
        dyn.resources.get(api_version="v1", kind="Secret").get(namespace="kube-system")


def test_operator_registers_in_its_peering_for_leader_election(cluster, operator):
    """kopf peering (leader election) really runs under the operator's RBAC: it keeps itself alive
    in the ClusterKopfPeering object, where a higher-priority peer would make it pause."""
    from .conftest import OPERATOR_RELEASE

    peering = wait_for(lambda: (cluster.get("kopf.dev/v1", "ClusterKopfPeering", OPERATOR_RELEASE) or {}).get("status"),
                       what="a peer in the peering status")
    assert len(peering) == 1
    assert next(iter(peering.values()))["priority"] == 0
