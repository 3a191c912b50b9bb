"""The backup engine in direct mode, as moodle-operator's Kubernetes Jobs run it, against the Compose
stand-in site (project day2): one manifest format, so a backup taken on Kubernetes restores on
Compose and the reverse.

No Kubernetes here: a KUBELET STAND-IN (kubelet_standin.py) starts the Job's Pod spec, rendered by the
operator's own functions, with the Docker engine: the real moodle-backup image, its command and
arguments, non-root, read-only root file system, the Secret files and the termination message.
The database answers as ``db`` on the stack's backend network (the spec's database host). A local
restic repository mounted at /repo stands in for the S3 bucket.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from kubelet_standin import run_pod
from moodle_operator import backups

from conftest import (
    CRON,
    ENGINE_CONFIG,
    PROJECT,
    PROJECT_DIR,
    WEB,
    engine,
    http_status,
    moodledata_hashes,
    playbook,
    run,
    sql,
    stop_cron,
    table_dumps,
)

pytestmark = pytest.mark.usefixtures("seeded")
SCRATCH = Path("/var/tmp/moodle-platform-day2-test/direct")  # noqa: S108 - fixed path, root-only test host
NETWORK = f"{PROJECT}_backend"
VOLUME = f"{PROJECT}_moodledata"
SCHEDULER = f"{PROJECT}-backup-scheduler"
STATE = {}


@pytest.fixture(scope="module")
def backup_image():
    _, out = playbook("backup_image.yml", env_extra={})
    ref = next(line.split("built ", 1)[1].split(" ", 1)[0] for line in out.splitlines() if "built moodle-platform/" in line)
    return ref


@pytest.fixture(scope="module")
def site():
    """What the operator knows of the site: its spec, the web image, and the Secrets."""
    if not ENGINE_CONFIG.exists():  # the module runs alone: configure the site's Compose backup first
        playbook("backup.yml")
    stop_cron()
    image = run(["docker", "inspect", "--format", "{{.Config.Image}}", WEB]).stdout.decode().strip()
    repository, tag = image.rsplit(":", 1)
    if SCRATCH.exists():
        shutil.rmtree(SCRATCH)
    SCRATCH.mkdir(parents=True)
    password = SCRATCH / "restic-password"
    password.write_text(secrets.token_hex(16))
    password.chmod(0o600)
    spec = {"image": {"repository": repository}, "database": {"host": "db", "port": 3306},
            "secretRef": {"name": "day2-secrets"}}
    yield {"spec": spec, "tag": tag, "password": password,
           "secrets": {"day2-secrets": {"db_password": str(PROJECT_DIR / "secrets" / "db_password")}},
           "env_from": {"day2-backup": {"RESTIC_PASSWORD": password.read_text()}}}
    run(["docker", "start", CRON], check=False)


def repo_dir(name):
    path = SCRATCH / name
    path.mkdir(exist_ok=True)
    os.chown(path, 33, 33)
    return path


def chown_tree(path, uid):
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.lchown(os.path.join(root, name), uid, uid)
    os.chown(path, uid, uid)


def damage_site():
    """Changes a restore must undo: new rows, a changed row, a deleted and an added file."""
    sql("CREATE TABLE IF NOT EXISTS mdl_direct_damage (id INT PRIMARY KEY); INSERT IGNORE INTO mdl_direct_damage VALUES (1)")
    sql("UPDATE mdl_user SET username = CONCAT(username, '-damaged') ORDER BY id LIMIT 1")
    run(["docker", "exec", WEB, "sh", "-c", "set -e; cd /var/www/moodledata/filedir; "
         "f=$(find . -type f | sort | head -1); rm -f \"$f\"; echo new > ./added-after-backup"])


def compose_config_for(repo, name):
    """The host engine's config of the day2 site, pointed at ``repo`` (a Kubernetes-made repository)."""
    config = json.loads(ENGINE_CONFIG.read_text())
    config.update(repository=str(repo), password_file=str(SCRATCH / "restic-password"),
                  state_dir=str(SCRATCH / f"state-{name}"), offsite_repository="")
    path = SCRATCH / f"{name}.json"
    path.write_text(json.dumps(config))
    return path


def test_kubernetes_backup_job_output_restores_on_compose(backup_image, site):
    before_tables, before_files = table_dumps(), moodledata_hashes()
    repo = repo_dir("k8s-repo")
    job = backups.backup_job(name="day2-nightly", namespace="day2", site_name=PROJECT, site_spec=site["spec"],
                             image_tag=site["tag"], backup_image=backup_image, backup_name="day2-nightly",
                             backup_spec={"destination": {"repository": "/repo", "secretRef": {"name": "day2-backup"}},
                                          "retention": {"keepDaily": 7, "keepWeekly": 4, "keepMonthly": 12}})
    result = run_pod(job["spec"]["template"], network=NETWORK, pvcs={f"{PROJECT}-moodledata": VOLUME},
                     secrets=site["secrets"], env_from=site["env_from"], extra_mounts=[(str(repo), "/repo")])
    assert result.exit_code == 0, result.logs[-3000:]
    assert site["password"].read_text() not in result.logs

    # the operator reads the result the way it does from a cluster
    finished = {"metadata": {"name": "day2-nightly"}, "status": {
        "startTime": "2026-11-24T02:00:00Z", "completionTime": "2026-11-24T02:01:00Z",
        "conditions": [{"type": "Complete", "status": "True"}]}}
    status = backups.backup_status(finished, [result.as_pod("backup")])
    assert status["phase"] == "Succeeded", status
    summary = status["manifest"]
    assert len(result.message.encode()) <= 4096

    config = compose_config_for(repo, "k8s-made")
    manifest = engine("show", summary["backup_id"], config=config)
    assert manifest["platform"] == "kubernetes"
    assert status["snapshotId"] == manifest["moodledata"]["snapshot_id"]
    assert manifest["database"]["tables"]["mdl_user"] == int(sql("SELECT COUNT(*) FROM mdl_user")[0][0])
    web_version = run(["docker", "exec", WEB, "php", "-r", "define('MOODLE_INTERNAL', 1); "
                       "include '/var/www/moodle/version.php'; echo $version;"]).stdout.decode().strip()
    assert float(manifest["moodle"]["version"]) == float(web_version), "version.php lent by the init container"
    assert manifest["image"]["reference"] == f"{site['spec']['image']['repository']}:{site['tag']}"
    assert not any(s["path"].startswith(("cache/", "sessions/")) for s in manifest["moodledata"]["sample"])

    damage_site()
    assert table_dumps() != before_tables
    # the Compose side restores it (the engine the restore playbook drives)
    engine("restore-db", summary["backup_id"], config=config)
    engine("restore-files", summary["backup_id"], config=config)
    assert table_dumps() == before_tables
    assert moodledata_hashes() == before_files
    STATE["k8s_backup"] = summary["backup_id"]


def test_compose_backup_restores_with_the_kubernetes_restore_job(backup_image, site):
    playbook("backup.yml")
    before_tables, before_files = table_dumps(), moodledata_hashes()
    backup_id = engine("list")["backups"][-1]["backup_id"]
    # the Compose repository, as a bucket the Job can read (uid 33); same password file contents
    repo = SCRATCH / "compose-repo"
    if repo.exists():
        shutil.rmtree(repo)
    shutil.copytree(json.loads(ENGINE_CONFIG.read_text())["repository"], repo)
    chown_tree(repo, 33)
    password = Path(json.loads(ENGINE_CONFIG.read_text())["password_file"]).read_text().strip()

    damage_site()
    run(["docker", "exec", "--user", "www-data", WEB, "php", "/var/www/moodle/admin/cli/maintenance.php", "--enable"])
    job = backups.restore_job(name="day2-restore", namespace="day2", site_name=PROJECT, site_spec=site["spec"],
                              image_tag=site["tag"], destination={"repository": "/repo",
                                                                  "secretRef": {"name": "day2-backup"}},
                              backup_id=backup_id, backup_image=backup_image)
    result = run_pod(job["spec"]["template"], network=NETWORK, pvcs={f"{PROJECT}-moodledata": VOLUME},
                     secrets=site["secrets"], env_from={"day2-backup": {"RESTIC_PASSWORD": password}},
                     extra_mounts=[(str(repo), "/repo")])
    assert result.exit_code == 0, result.logs[-3000:]
    summary = json.loads(result.message)
    assert summary["restored"] is True and summary["backup_id"] == backup_id
    assert summary["maintenance"] == "off"
    assert table_dumps() == before_tables
    assert moodledata_hashes() == before_files
    leftover = run(["docker", "exec", WEB, "test", "-e", "/var/www/moodledata/climaintenance.html"], check=False)
    assert leftover.returncode != 0, "--maintenance-off must end CLI maintenance"
    assert http_status("http://127.0.0.1:8180/login/index.php") == "200"


def test_kubernetes_restore_job_refuses_a_missing_backup_and_changes_nothing(backup_image, site):
    repo = SCRATCH / "compose-repo"
    password = Path(json.loads(ENGINE_CONFIG.read_text())["password_file"]).read_text().strip()
    before_tables, before_files = table_dumps(), moodledata_hashes()
    job = backups.restore_job(name="day2-restore-bad", namespace="day2", site_name=PROJECT, site_spec=site["spec"],
                              image_tag=site["tag"], destination={"repository": "/repo",
                                                                  "secretRef": {"name": "day2-backup"}},
                              backup_id="20200101T000000Z-day2", backup_image=backup_image)
    result = run_pod(job["spec"]["template"], network=NETWORK, pvcs={f"{PROJECT}-moodledata": VOLUME},
                     secrets=site["secrets"], env_from={"day2-backup": {"RESTIC_PASSWORD": password}},
                     extra_mounts=[(str(repo), "/repo")])
    assert result.exit_code == 1
    message = json.loads(result.message)
    assert message["failed"] is True and "20200101T000000Z-day2 does not exist" in message["msg"]
    assert table_dumps() == before_tables
    assert moodledata_hashes() == before_files


def test_direct_mode_refuses_incomplete_settings_before_touching_anything(backup_image):
    proc = subprocess.run(["docker", "run", "--rm", "--read-only", backup_image, "moodle-backup", "backup",
                           "--platform", "kubernetes", "--project", "day2", "--repository", "/nowhere"],
                          capture_output=True, check=False)
    assert proc.returncode == 1
    msg = json.loads(proc.stdout.decode().splitlines()[0])["msg"]
    assert "--dataroot" in msg and "MOODLE_DB_HOST" in msg and "MOODLE_DB_PASSWORD_FILE" in msg


def test_scheduler_container_takes_the_scheduled_backup(site):
    """No systemd on this host: backup_scheduler=container runs the engine image on the backend network.
    A daily time about two minutes ahead (chosen again if the role run outlasts it); the test waits for that
    run, then checks that a second run of the role with the same settings changes nothing."""
    status_file = Path("/var/lib/moodle-platform/backup/day2-textfile") / f"moodle_backup_{PROJECT}.prom"
    before = {b["backup_id"] for b in engine("list")["backups"]}
    chosen = []  # every daily time a scheduler was started with: one replaced late may already have fired
    for _ in range(3):
        # A daily time ahead of the scheduler's start: on a slow (busy) machine the role run can take longer
        # than the lead time, and a scheduler started after that minute waits until tomorrow.
        at = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)).replace(second=0, microsecond=0)
        chosen.append(at.strftime("%Y%m%dT%H%M"))
        settings = ["backup_scheduler=container", {"backup_times": [at.strftime("%H:%M")]},
                    "backup_randomized_delay_seconds=0", "backup_run_now=false"]
        playbook("backup.yml", *settings)
        if dt.datetime.now(dt.UTC) < at - dt.timedelta(seconds=15):
            break

    try:
        info = json.loads(run(["docker", "inspect", SCHEDULER]).stdout)[0]
        assert info["State"]["Running"] and info["HostConfig"]["ReadonlyRootfs"] and not info["HostConfig"]["Privileged"]
        assert not info["HostConfig"]["PortBindings"] and "ALL" in info["HostConfig"]["CapDrop"]
        assert not any("docker.sock" in m["Source"] for m in info["Mounts"]), "no Docker socket"
        assert set(info["NetworkSettings"]["Networks"]) == {NETWORK}
        secret_values = [(PROJECT_DIR / "secrets" / "db_password").read_text().strip(),
                         Path(json.loads(ENGINE_CONFIG.read_text())["password_file"]).read_text().strip()]
        assert not any(value in " ".join(info["Config"]["Env"]) for value in secret_values), "no secret in the environment"

        # Wait for the run of the scheduler now configured (chosen[-1]); a scheduler replaced after its minute
        # (slow role run) may have taken one more at an earlier chosen time, never at another.
        deadline = at + dt.timedelta(seconds=150)
        new, ours = set(), []
        while dt.datetime.now(dt.UTC) < deadline and not ours:
            time.sleep(5)
            new = {b["backup_id"] for b in engine("list")["backups"]} - before
            ours = [backup_id for backup_id in new if backup_id.startswith(chosen[-1])]
        logs = run(["docker", "logs", SCHEDULER]).stderr.decode()
        assert ours, f"no scheduled backup at {chosen[-1]} by {deadline} (new: {sorted(new)}): {logs[-2000:]}"
        assert all(backup_id[:13] in chosen for backup_id in new), f"{sorted(new)} not all at a chosen time {chosen}"
        assert not any(value in logs for value in secret_values)
        manifest = engine("show", ours[0])
        assert manifest["platform"] == "compose" and manifest["moodle"]["source"] == "database"
        web_image = run(["docker", "inspect", "--format", "{{.Config.Image}}", WEB]).stdout.decode().strip()
        assert manifest["image"]["reference"] == web_image
        assert manifest["database"]["tables"]["mdl_user"] == int(sql("SELECT COUNT(*) FROM mdl_user")[0][0])
        assert engine("verify", manifest["backup_id"])["ok"] is True
        status = status_file.read_text()
        assert f'backup_id="{manifest["backup_id"]}"' in status
        _, again = playbook("backup.yml", *settings)
        assert "changed=0" in again.split("PLAY RECAP", 1)[1], "a second run of the role changes nothing"
    finally:  # a scheduler left running holds the site's volumes (and fires tomorrow)
        playbook("backup.yml", "backup_scheduler=none", "backup_run_now=false")
    assert run(["docker", "inspect", SCHEDULER], check=False).returncode != 0, "scheduler removed with scheduler=none"
