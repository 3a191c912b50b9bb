"""Unit tests of backup Job building and result parsing (the manifest format is the shared one)."""

import json

import pytest
from ansible_collections.moodle.platform.plugins.module_utils._backup import manifest as backup_manifest
from moodle_operator.backups import (
    backup_cronjob,
    backup_job,
    backup_status,
    parse_summary,
    restore_job,
    scheduled_status,
    summarize_manifest,
)

SITE = {"image": {"tag": "4.5.6"}, "wwwroot": "https://a.example.org", "secretRef": {"name": "a-creds"}}
BACKUP = {"site": "a", "destination": {"repository": "s3:https://s3.example.org/b/a", "secretRef": {"name": "s3"}},
          "retention": {"keepDaily": 3}}


def _manifest():
    import datetime as dt
    t0 = dt.datetime(2026, 11, 24, 2, 0, tzinfo=dt.UTC)
    return backup_manifest.build_manifest(
        backup_id="20261124T020000Z-a", project="a", platform="kubernetes", started=t0,
        completed=t0 + dt.timedelta(seconds=90),
        moodle={"version": "2024100706.00", "release": "4.5.6 (Build: 20250811)", "branch": "405"},
        image={"reference": "moodle-platform/moodle:4.5.6"},
        database={"engine": "mariadb", "name": "moodle", "prefix": "mdl_", "dump_file": "database.sql",
                  "sha256": "e" * 64, "size_bytes": 10, "snapshot_id": "d" * 64, "tables": {"mdl_user": 2}},
        moodledata={"snapshot_id": "a" * 64, "file_count": 1, "size_bytes": 20, "sample": []})


def test_summary_of_a_shared_format_manifest_round_trips_and_fits_a_termination_message():
    summary = summarize_manifest(_manifest())
    text = json.dumps(summary)
    assert len(text.encode()) < 4096
    assert parse_summary(text)["moodledata_snapshot"] == "a" * 64


def test_summary_refuses_an_invalid_manifest():
    broken = _manifest()
    del broken["database"]["sha256"]
    with pytest.raises(backup_manifest.ManifestError):
        summarize_manifest(broken)


@pytest.mark.parametrize("text", [None, "", "not json", json.dumps({"backup_id": "x"}),
                                  json.dumps({"backup_id": "bad id", "database_snapshot": "d", "moodledata_snapshot": "m"})])
def test_parse_summary_rejects_garbage_with_a_reason(text):
    with pytest.raises(ValueError, match="backup"):
        parse_summary(text)


def test_retention_goes_to_the_engine_with_keep_last_defaulting_like_compose():
    args = backup_job(name="b", namespace="ns", site_name="a", site_spec=SITE, image_tag="4.5.6",
                      backup_spec=BACKUP)["spec"]["template"]["spec"]["containers"][0]["args"]
    pairs = dict(zip(args[::2], args[1::2], strict=False))
    assert (pairs["--keep-daily"], pairs["--keep-weekly"], pairs["--keep-monthly"], pairs["--keep-last"]) == (
        "3", "4", "12", "3")
    spec = {**BACKUP, "retention": {"keepLast": 10, "keepDaily": 0}}
    args = backup_job(name="b", namespace="ns", site_name="a", site_spec=SITE, image_tag="4.5.6",
                      backup_spec=spec)["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--keep-last") + 1] == "10" and args[args.index("--keep-daily") + 1] == "0"


def test_job_mounts_data_read_only_and_takes_s3_keys_by_reference():
    job = backup_job(name="backup-x", namespace="ns", site_name="a", site_spec=SITE, image_tag="4.5.6", backup_spec=BACKUP)
    pod = job["spec"]["template"]["spec"]
    main = pod["containers"][0]
    assert main["envFrom"] == [{"secretRef": {"name": "s3"}}]
    assert not any("PASSWORD" in e["name"] and "value" in e and not e["name"].endswith("_FILE") for e in main["env"])
    assert {"name": "moodledata", "mountPath": "/var/www/moodledata", "readOnly": True} in main["volumeMounts"]
    assert main["args"][main["args"].index("--keep-daily") + 1] == "3"
    assert pod["initContainers"][0]["image"] == "moodle-platform/moodle:4.5.6"


def test_jobs_of_a_postgresql_site_tell_the_engine_its_database_type_and_port():
    site = {**SITE, "database": {"type": "pgsql"}}
    for job in (backup_job(name="b", namespace="ns", site_name="a", site_spec=site, image_tag="4.5.6", backup_spec=BACKUP),
                restore_job(name="r", namespace="ns", site_name="a", site_spec=site, image_tag="4.5.6",
                            destination=BACKUP["destination"], backup_id="20261124T020000Z-a")):
        env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert (env["MOODLE_DB_TYPE"], env["MOODLE_DB_HOST"], env["MOODLE_DB_PORT"]) == ("pgsql", "a-db", "5432")
    env = {e["name"]: e.get("value") for e in backup_job(name="b", namespace="ns", site_name="a", site_spec=SITE,
                                                         image_tag="4.5.6", backup_spec=BACKUP)
           ["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert (env["MOODLE_DB_TYPE"], env["MOODLE_DB_PORT"]) == ("mariadb", "3306")


def test_cronjob_for_scheduled_backups():
    cron = backup_cronjob(name="backup-x", namespace="ns", site_name="a", site_spec=SITE, image_tag="4.5.6",
                          backup_spec={**BACKUP, "schedule": "@daily"})
    assert cron["spec"]["schedule"] == "@daily" and cron["spec"]["concurrencyPolicy"] == "Forbid"


def _job(cond_type=None):
    status = {"startTime": "2026-11-24T02:00:00Z"}
    if cond_type:
        status["conditions"] = [{"type": cond_type, "status": "True", "message": "boom"}]
        status["completionTime"] = "2026-11-24T02:01:30Z"
    return {"metadata": {"name": "backup-x"}, "status": status}


def _pod(message):
    return {"status": {"containerStatuses": [{"name": "backup", "state": {"terminated": {"message": message,
                                                                                       "finishedAt": "t"}}}]}}


def test_backup_status_from_job_and_pods():
    assert backup_status(None, [])["phase"] == "Pending"
    assert backup_status(_job(), [])["phase"] == "Running"
    failed = backup_status(_job("Failed"), [])
    assert failed["phase"] == "Failed" and failed["conditions"][0]["message"] == "boom"
    told = backup_status(_job("Failed"), [_pod(json.dumps({"failed": True, "msg": "database unreachable"}))])
    assert told["conditions"][0]["message"] == "boom: database unreachable"
    assert backup_status(_job("Failed"), [_pod("not json")])["conditions"][0]["message"] == "boom"
    ok = backup_status(_job("Complete"), [_pod(json.dumps(summarize_manifest(_manifest())))])
    assert ok["phase"] == "Succeeded" and ok["snapshotId"] == "a" * 64 and ok["sizeBytes"] == 30
    no_summary = backup_status(_job("Complete"), [])
    assert no_summary["phase"] == "Failed" and no_summary["conditions"][0]["reason"] == "NoManifest"


def _run(name, cond_type, completed, message=None):
    job = {"metadata": {"name": name}, "status": {"startTime": "2026-11-20T02:00:00Z", "completionTime": completed,
                                                  "conditions": [{"type": cond_type, "status": "True"}]}}
    pods = []
    if message:
        pod = _pod(message)
        pod["metadata"] = {"labels": {"job-name": name}}
        pods.append(pod)
    return job, pods


def test_scheduled_status_reports_newest_run_and_newest_success():
    summary = json.dumps(summarize_manifest(_manifest()))
    ok_job, ok_pods = _run("backup-d-1", "Complete", "2026-11-22T02:01:00Z", summary)
    bad_job, bad_pods = _run("backup-d-2", "Failed", "2026-11-23T02:01:00Z")
    assert scheduled_status([], []) == {"phase": "Scheduled"}
    status = scheduled_status([bad_job, ok_job], ok_pods + bad_pods)
    assert status["phase"] == "Scheduled" and status["jobName"] == "backup-d-2"
    assert status["conditions"][0]["status"] == "False"  # the last run failed ...
    assert status["lastSuccessfulTime"] == "2026-11-22T02:01:00Z"  # ... the last good one is still reported
    assert status["snapshotId"] == "a" * 64


def test_cronjob_jobs_carry_the_backup_label():
    cron = backup_cronjob(name="backup-x", namespace="ns", site_name="a", site_spec=SITE, image_tag="4.5.6",
                          backup_spec={**BACKUP, "schedule": "@daily"}, backup_name="x")
    assert cron["spec"]["jobTemplate"]["metadata"]["labels"]["platform.moodle.dev/backup"] == "x"
    assert cron["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]["platform.moodle.dev/backup"] == "x"
