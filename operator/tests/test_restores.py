"""Unit tests of the Restore state machine: safety backup first, cron off while the engine's Job runs,
refusals before anything changes, the engine's own message on failure."""

import json

from moodle_operator.restores import Observed, decide, job_name, safety_backup_name

SOURCE = {"repository": "s3:http://s3.example.org/b/compose-site", "secretRef": {"name": "s3"}}
SPEC = {"site": "a", "backupId": "20261204T020000Z-campus", "source": SOURCE}
SITE = {"metadata": {"name": "a"}, "spec": {"image": {"repository": "m", "tag": "4.5.6"},
                                            "wwwroot": "https://a.example.org", "secretRef": {"name": "c"}}}
NOW = "2026-12-04T23:00:00Z"
OWNER = {"apiVersion": "platform.moodle.dev/v1alpha1", "kind": "Restore", "name": "r", "uid": "u"}


def run(status, spec=SPEC, **observed):
    obs = Observed(site=observed.pop("site", SITE), **observed)
    return decide(name="r", namespace="ns", spec=spec, status=status, observed=obs, now=NOW, owner=OWNER,
                  backup_image="moodle-platform/moodle-backup:t")


def test_safety_backup_first_to_the_source_repository_by_default():
    d = run({})
    assert d.status["phase"] == "SafetyBackup" and d.site_patch is None
    [backup] = d.create
    assert backup["kind"] == "Backup" and backup["metadata"]["name"] == safety_backup_name("r")
    assert backup["spec"] == {"site": "a", "destination": SOURCE, "purpose": "pre-restore"}
    assert "ownerReferences" not in backup["metadata"], "the safety backup outlives the Restore"


def test_safety_backup_destination_can_be_chosen():
    other = {"repository": "s3:http://s3.example.org/b/a", "secretRef": {"name": "s3-own"}}
    d = run({}, spec={**SPEC, "safetyBackup": {"enabled": True, "destination": other}})
    assert d.create[0]["spec"]["destination"] == other


def test_failed_safety_backup_changes_nothing():
    status = run({}).status
    failed = {"status": {"phase": "Failed", "conditions": [{"type": "Succeeded", "status": "False",
                                                            "message": "restic: wrong password"}]}}
    d = run(status, safety=failed)
    assert d.status["phase"] == "Failed" and not d.create and d.site_patch is None
    assert "restic: wrong password" in d.status["message"] and "nothing was changed" in d.status["message"]


def test_after_the_safety_backup_cron_goes_off_and_the_engine_job_starts_on_the_site_image():
    status = run({}).status
    assert run(status, safety={"status": {"phase": "Running"}}).status == {}
    safety = {"status": {"phase": "Succeeded", "manifest": {"backup_id": "20261204T230000Z-a"}}}
    d = run(status, safety=safety)
    assert d.status["phase"] == "Restoring" and d.status["safetyBackupId"] == "20261204T230000Z-a"
    assert d.site_patch == {"cron": {"enabled": False}} and d.status["cronWasEnabled"] is True
    [job] = d.create
    assert job["kind"] == "Job" and job["metadata"]["name"] == job_name("r")
    assert job["metadata"]["ownerReferences"] == [OWNER]
    pod = job["spec"]["template"]["spec"]
    restore = pod["containers"][0]
    assert restore["image"] == "moodle-platform/moodle-backup:t"
    args = restore["args"]
    assert args[args.index("--backup-id") + 1] == SPEC["backupId"]
    assert args[args.index("--repository") + 1] == SOURCE["repository"]
    assert restore["envFrom"] == [{"secretRef": {"name": "s3"}}]
    assert pod["initContainers"][0]["image"] == "m:4.5.6", "the site's code lends its version.php"


def test_without_safety_backup_the_job_starts_at_once():
    d = run({}, spec={**SPEC, "safetyBackup": {"enabled": False}})
    assert d.status["phase"] == "Restoring" and d.status["startedAt"] == NOW
    assert d.create[0]["kind"] == "Job"


def test_success_needs_the_engine_report_and_puts_cron_back_as_it_was():
    status = run({}, spec={**SPEC, "safetyBackup": {"enabled": False}}).status
    assert run(status, job=("running", None)).status == {}
    report = json.dumps({"restored": True, "backup_id": SPEC["backupId"]})
    d = run(status, job=("succeeded", report))
    assert d.status["phase"] == "Succeeded" and d.site_patch == {"cron": {"enabled": True}} and not d.warning
    no_cron = {**SITE, "spec": {**SITE["spec"], "cron": {"enabled": False}}}
    status = run({}, spec={**SPEC, "safetyBackup": {"enabled": False}}, site=no_cron).status
    assert run(status, job=("succeeded", report)).site_patch == {"cron": {"enabled": False}}
    d = run(status, job=("succeeded", json.dumps({"restored": True, "backup_id": "20261203T020000Z-x"})))
    assert d.status["phase"] == "Failed" and d.site_patch is None


def test_failed_job_names_the_engine_error_and_the_safety_backup_and_keeps_cron_off():
    status = {"phase": "Restoring", "safetyBackupId": "20261204T230000Z-a", "cronWasEnabled": True}
    d = run(status, job=("failed", json.dumps({"failed": True, "msg": "backup is Moodle 4.4, the code is 4.5"})))
    assert d.status["phase"] == "Failed" and d.site_patch is None and d.warning
    assert "backup is Moodle 4.4, the code is 4.5" in d.status["message"]
    assert "20261204T230000Z-a" in d.status["message"]


def test_refusals_before_anything_changes():
    d = run({}, spec={**SPEC, "backupId": "latest"})
    assert d.status["phase"] == "Failed" and not d.create and d.site_patch is None
    d = run({}, site=None)
    assert d.status["phase"] == "Failed" and "not found" in d.status["message"] and not d.create


def test_terminal_phases_do_nothing():
    for phase in ("Succeeded", "Failed"):
        assert run({"phase": phase}).status == {} and not run({"phase": phase}).create
