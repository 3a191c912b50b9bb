"""Unit tests of the UpgradePlan state machine: every transition, failures and refusals."""

import json

import pytest
from moodle_operator.upgrade import Observed, check_refusal, decide, job_name

SPEC = {"site": "a", "targetTag": "4.5.7", "backup": {"repository": "s3:x", "secretRef": {"name": "s3"}}}
SITE = {"metadata": {"name": "a"}, "spec": {"image": {"repository": "m", "tag": "4.5.6"},
                                            "wwwroot": "https://a.example.org", "secretRef": {"name": "c"}}}
CHECK = {"pending": True, "target_version": "2024100707.00", "target_branch": "405",
         "db_version": "2024100706.00", "db_release": "4.5.6 (Build: 20250811)"}


NOW = "2026-11-24T02:00:00Z"


def run(status, now=NOW, spec=SPEC, **observed):
    obs = Observed(site=observed.pop("site", SITE), **observed)
    return decide(plan="p", namespace="ns", spec=spec, status=status, observed=obs, now=now)


def done(step):
    return {job_name("p", step): ("succeeded", None)}


def web(image, available=True):
    return {"spec": {"replicas": 1, "template": {"spec": {"containers": [{"image": image}]}}},
            "status": {"availableReplicas": 1 if available else 0, "updatedReplicas": 1,
                       "conditions": [{"type": "Available", "status": "True" if available else "False"}]}}


def test_happy_path_walks_every_step():
    d = run({})
    assert d.status["step"] == "CheckPending" and d.status["previousTag"] == "4.5.6"
    assert d.create[0]["metadata"]["name"] == "p-checkpending"
    assert d.create[0]["spec"]["template"]["spec"]["containers"][0]["image"] == "m:4.5.7"
    status = {**d.status}
    d = run(status, jobs={"p-checkpending": ("succeeded", json.dumps(CHECK))})
    assert d.status["step"] == "PreUpgradeBackup" and d.status["codeOnly"] is False
    status.update(d.status)
    d = run(status)
    assert d.create[0]["kind"] == "Backup" and "ownerReferences" not in d.create[0]["metadata"]
    d = run(status, backup={"metadata": {"name": "p-pre-upgrade"}, "status": {"phase": "Running"}})
    assert d.status == {} and not d.create
    d = run(status, backup={"metadata": {"name": "p-pre-upgrade"}, "status": {"phase": "Succeeded"}})
    assert d.status["step"] == "Maintenance"
    status.update(d.status)
    d = run(status)
    assert d.site_patch == {"cron": {"enabled": False}, "maintenance": True}
    assert d.create[0]["spec"]["template"]["spec"]["containers"][0]["image"] == "m:4.5.6"
    d = run(status, jobs=done("Maintenance"))
    assert d.status["step"] == "SwitchImage"
    status.update(d.status)
    assert run(status).site_patch == {"image": {"tag": "4.5.7"}}
    switched = {**SITE, "spec": {**SITE["spec"], "image": {"repository": "m", "tag": "4.5.7"}}}
    assert run(status, site=switched, web=web("m:4.5.6")).status == {}  # waits for the rollout to start
    d = run(status, site=switched, web=web("m:4.5.7", available=False))
    assert d.status["step"] == "UpgradeJob"
    status.update(d.status)
    assert run(status, site=switched).create[0]["metadata"]["name"] == "p-upgradejob"
    d = run(status, site=switched, jobs=done("UpgradeJob"))
    assert d.status["step"] == "Verify"
    status.update(d.status)
    d = run(status, site=switched)
    assert d.site_patch == {"cron": {"enabled": True}, "maintenance": False}
    assert run(status, site=switched, jobs=done("Verify"), web=web("m:4.5.7", available=False)).status == {}
    d = run(status, site=switched, jobs=done("Verify"), web=web("m:4.5.7"))
    assert d.status["phase"] == "Succeeded"
    assert [h["step"] for h in d.status["history"]] == [
        "CheckPending", "PreUpgradeBackup", "Maintenance", "SwitchImage", "UpgradeJob", "Verify"]
    assert run(d.status).status == {}  # terminal: nothing more happens


def test_code_only_change_with_rwx_goes_blue_green():
    rwx = {**SITE, "spec": {**SITE["spec"], "storage": {"accessMode": "ReadWriteMany"}}}
    status = {"phase": "Running", "step": "PreUpgradeBackup", "previousTag": "4.5.6", "codeOnly": True}
    d = run(status, site=rwx, backup={"metadata": {"name": "p-pre-upgrade"}, "status": {"phase": "Succeeded"}})
    assert d.status["step"] == "Candidate" and d.status["blueGreen"] is True
    status.update(d.status)
    assert run(status, site=rwx).site_patch == {"blueGreen": {"candidateTag": "4.5.7", "active": "main"}}
    staged = {**rwx, "spec": {**rwx["spec"], "blueGreen": {"candidateTag": "4.5.7", "active": "main"}}}
    assert run(status, site=staged, candidate=web("m:4.5.7", available=False)).status == {}
    d = run(status, site=staged, candidate=web("m:4.5.7"))
    assert d.status["step"] == "SwitchService"
    status.update(d.status)
    assert run(status, site=staged).site_patch == {"blueGreen": {"candidateTag": "4.5.7", "active": "candidate"}}
    switched = {**rwx, "spec": {**rwx["spec"], "blueGreen": {"candidateTag": "4.5.7", "active": "candidate"}}}
    d = run(status, site=switched)
    assert d.status["step"] == "Verify"
    status.update(d.status)
    # Verify checks the serving (candidate) Deployment, not the old main one.
    d = run(status, site=switched, jobs=done("Verify"), candidate=web("m:4.5.7"), web=web("m:4.5.6", available=False))
    assert d.status["step"] == "Promote"
    status.update(d.status)
    assert run(status, site=switched).site_patch == {"image": {"tag": "4.5.7"}}
    promoted = {**switched, "spec": {**switched["spec"], "image": {"repository": "m", "tag": "4.5.7"}}}
    assert run(status, site=promoted, web=web("m:4.5.7", available=False)).status == {}
    d = run(status, site=promoted, web=web("m:4.5.7"))
    assert d.status["phase"] == "Succeeded"
    assert d.site_patch == {"blueGreen": {"candidateTag": "", "active": "main"}}
    assert [h["step"] for h in d.status["history"]][-4:] == ["Candidate", "SwitchService", "Verify", "Promote"]


def test_code_only_verify_failure_does_not_restore_the_database():
    status = {"phase": "Running", "step": "Verify", "previousTag": "4.5.6", "codeOnly": True, "blueGreen": True}
    d = run(status, jobs={job_name("p", "Verify"): ("failed", None)})
    assert d.status["step"] == "RestoreImage"
    status.update(d.status)
    d = run(status)
    assert d.status["phase"] == "Failed"
    assert d.site_patch["blueGreen"] == {"candidateTag": "", "active": "main"}


def test_waiting_steps_time_out_and_roll_back():
    status = {"phase": "Running", "step": "Candidate", "previousTag": "4.5.6", "codeOnly": True,
              "blueGreen": True, "stepSince": "2026-11-24T01:00:00Z"}
    staged = {**SITE, "spec": {**SITE["spec"], "blueGreen": {"candidateTag": "4.5.7", "active": "main"}}}
    assert run(status, site=staged, now="2026-11-24T01:10:00Z").status == {}
    d = run(status, site=staged, now="2026-11-24T01:31:00Z")
    assert d.status["step"] == "RestoreImage" and "timed out after 1800s" in d.status["failureMessage"]
    schema = {"phase": "Running", "step": "Verify", "previousTag": "4.5.6", "stepSince": "2026-11-24T01:00:00Z"}
    d = run(schema, jobs=done("Verify"), now="2026-11-24T01:31:00Z")
    assert d.status["step"] == "Restore"  # the upgrade Job ran: the database comes back too


def test_code_only_change_skips_maintenance_and_upgrade_job():
    status = {"phase": "Running", "step": "CheckPending", "previousTag": "4.5.6"}
    d = run(status, jobs={"p-checkpending": ("succeeded", json.dumps({**CHECK, "pending": False}))})
    status.update(d.status)
    d = run(status, backup={"metadata": {"name": "p-pre-upgrade"}, "status": {"phase": "Succeeded"}})
    assert d.status["step"] == "SwitchImage"
    status.update(d.status)
    switched = {**SITE, "spec": {**SITE["spec"], "image": {"repository": "m", "tag": "4.5.7"}}}
    assert run(status, site=switched, web=web("m:4.5.7")).status["step"] == "Verify"


@pytest.mark.parametrize(("step", "expect_next"), [("UpgradeJob", "Restore"), ("Verify", "Restore")])
def test_failures_after_the_db_may_have_changed_restore_first(step, expect_next):
    status = {"phase": "Running", "step": step, "previousTag": "4.5.6", "backupName": "p-pre-upgrade"}
    d = run(status, jobs={job_name("p", step): ("failed", None)})
    assert d.status["phase"] == "RollingBack" and d.status["step"] == expect_next and d.status["failedStep"] == step
    status.update(d.status)
    backup = {"metadata": {"name": "p-pre-upgrade"}, "status": {"manifest": {"backup_id": "20261124T020000Z-a"}}}
    d = run(status, backup=backup)
    pod = d.create[0]["spec"]["template"]["spec"]
    restore = pod["containers"][0]
    assert restore["args"][restore["args"].index("--backup-id") + 1] == "20261124T020000Z-a"
    assert restore["envFrom"] == [{"secretRef": {"name": "s3"}}]
    assert {"name": "moodledata", "mountPath": "/var/www/moodledata"} in restore["volumeMounts"]  # writable
    assert pod["initContainers"][0]["image"] == "m:4.5.6"  # checked against the previous code
    assert d.site_patch["image"] == {"tag": "4.5.6"}
    d = run(status, backup=backup, jobs=done("Restore"))
    failed = next(c for c in d.status["conditions"] if c["type"] == "Failed")
    assert d.status["phase"] == "Failed" and failed["reason"] == f"{step}Failed"
    assert "restored backup p-pre-upgrade" in failed["message"]
    assert d.site_patch == {"image": {"tag": "4.5.6"}, "cron": {"enabled": True}, "maintenance": False,
                            "blueGreen": {"candidateTag": "", "active": "main"}}


def test_failed_restore_keeps_maintenance_and_says_so():
    status = {"phase": "RollingBack", "step": "Restore", "previousTag": "4.5.6", "failedStep": "UpgradeJob",
              "backupName": "p-pre-upgrade"}
    d = run(status, jobs={job_name("p", "Restore"): ("failed", "restic: wrong password")})
    failed = next(c for c in d.status["conditions"] if c["type"] == "Failed")
    assert "ALSO failed" in failed["message"] and "maintenance" not in d.site_patch


def test_maintenance_failure_rolls_back_image_without_restore():
    status = {"phase": "Running", "step": "Maintenance", "previousTag": "4.5.6"}
    d = run(status, jobs={job_name("p", "Maintenance"): ("failed", None)})
    assert d.status["step"] == "RestoreImage"
    status.update(d.status)
    d = run(status)
    assert d.status["phase"] == "Failed" and "database untouched" in d.status["conditions"][0]["message"]


def test_early_failures_change_nothing():
    d = run({"phase": "Running", "step": "CheckPending", "previousTag": "4.5.6"},
            jobs={"p-checkpending": ("failed", "php: DB unreachable")})
    assert d.status["phase"] == "Failed" and d.site_patch is None and not d.create
    d = run({"phase": "Running", "step": "PreUpgradeBackup", "previousTag": "4.5.6"},
            backup={"metadata": {"name": "p-pre-upgrade"}, "status": {"phase": "Failed"}})
    assert d.status["phase"] == "Failed" and d.site_patch is None
    assert run({}, site=None).status["phase"] == "Failed"
    same = {**SITE, "spec": {**SITE["spec"], "image": {"repository": "m", "tag": "4.5.7"}}}
    assert "already runs" in run({}, site=same).status["conditions"][0]["message"]


def test_check_refusals():
    assert check_refusal(CHECK, allow_major=False) is None
    major = {**CHECK, "target_branch": "500", "target_version": "2025041400.00"}
    assert "allowMajor" in check_refusal(major, allow_major=False)
    assert check_refusal(major, allow_major=True) is None
    downgrade = {**CHECK, "target_version": "2024100700.00"}
    assert "downgraded" in check_refusal(downgrade, allow_major=False)
    # weekly builds ("4.5+") and a version.php without $branch (branch from target_release): the collection's
    # one release -> branch rule (moodle_version.branch_of_release)
    weekly = {**major, "db_release": "4.5+ (Build: 20250815)"}
    assert "Moodle 5.0 but the site runs 4.5" in check_refusal(weekly, allow_major=False)
    no_branch = {**CHECK, "target_branch": "", "target_release": "5.0.1 (Build: 20250601)", "target_version": "2025041401.00"}
    assert "allowMajor" in check_refusal(no_branch, allow_major=False)


def test_check_job_evaluates_version_php_with_the_shared_reader():
    from ansible_collections.moodle.platform.plugins.module_utils._backup.moodle_version import VERSION_PHP_CODE
    from moodle_operator.upgrade import CHECK_COMMAND
    assert CHECK_COMMAND[:2] == ["/bin/sh", "-c"] and CHECK_COMMAND[3:] == ["sh", VERSION_PHP_CODE]
    assert 'php -r "$1" /var/www/moodle/version.php' in CHECK_COMMAND[2]
