#!/usr/bin/env python3
"""Real Moodle through the Kubernetes backup/restore Jobs (not in CI: needs a real Moodle stack).

    PYTHONPATH=collections:operator .venv/bin/python tests/day2/real_moodle_k8s_jobs.py [PROJECT]

Uses a running Compose site of real Moodle (default project ``moodle``, e.g. from ``make up
MOODLE_SRC=...``). Creates a course with a file through Moodle's PHP API, runs the backup Job's Pod
spec rendered by moodle-operator with the KUBELET STAND-IN (tests/day2/kubelet_standin.py: Docker, not
Kubernetes), deletes the course through Moodle's API, runs the restore Job's Pod spec, and checks that
the course and the file (content hash through Moodle's file API) are back and the login page serves.
A local restic repository stands in for the S3 bucket. Prints the times.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kubelet_standin import run_pod  # the script's own directory is on the path
from moodle_operator import backups  # PYTHONPATH (see above), as pytest's pythonpath setting does
from real_moodle_roundtrip import CREATE, READ

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

DELETE = r"""
define('CLI_SCRIPT', true);
require '/var/www/moodle/config.php';
require_once($CFG->dirroot . '/course/lib.php');
global $DB;
$course = $DB->get_record('course', ['shortname' => 'DAY2RT'], '*', MUST_EXIST);
delete_course($course, false);
echo $DB->count_records('course');
"""


def sh(argv):
    proc = subprocess.run(argv, capture_output=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed: {proc.stdout.decode()[-3000:]} {proc.stderr.decode()[-3000:]}")
    return proc.stdout.decode()


def main():
    project = sys.argv[1] if len(sys.argv) > 1 else "moodle"
    web = f"{project}-web-1"

    def php(code):
        return sh(["docker", "exec", "--user", "www-data", web, "php", "-r", code])

    image = sh(["docker", "inspect", "--format", "{{.Config.Image}}", web]).strip()
    repository, tag = image.rsplit(":", 1)
    backup_image = next(line.split("built ", 1)[1].split(" ")[0] for line in sh(
        [str(Path(sys.executable).parent / "ansible-playbook"), str(ROOT / "playbooks/backup_image.yml"),
         "-i", str(ROOT / "inventories/local")]).splitlines() if "built moodle-platform/" in line)
    php(CREATE)
    before = json.loads(php(READ))
    print(f"site {project} ({image}) has: {before}", flush=True)

    work = Path(tempfile.mkdtemp(prefix="real-k8s-jobs-"))
    repo = work / "repo"
    repo.mkdir()
    os.chown(repo, 33, 33)
    password = secrets.token_hex(16)
    spec = {"image": {"repository": repository}, "database": {"host": "db", "port": 3306},
            "secretRef": {"name": "site-secrets"}}
    common = {"network": f"{project}_backend", "pvcs": {f"{project}-moodledata": f"{project}_moodledata"},
              "secrets": {"site-secrets": {"db_password": f"/opt/moodle-platform/{project}/secrets/db_password"}},
              "env_from": {"backup-s3": {"RESTIC_PASSWORD": password}}, "extra_mounts": [(str(repo), "/repo")]}
    destination = {"repository": "/repo", "secretRef": {"name": "backup-s3"}}
    try:
        job = backups.backup_job(name=f"{project}-backup", namespace=project, site_name=project, site_spec=spec,
                                 image_tag=tag, backup_image=backup_image,
                                 backup_spec={"destination": destination, "retention": {}})
        started = time.monotonic()
        result = run_pod(job["spec"]["template"], **common)
        backup_seconds = time.monotonic() - started
        if result.exit_code != 0:
            raise SystemExit(f"backup Job failed: {result.logs[-3000:]}")
        status = backups.backup_status({"metadata": {"name": "b"}, "status": {
            "conditions": [{"type": "Complete", "status": "True"}]}}, [result.as_pod("backup")])
        assert status["phase"] == "Succeeded", status
        summary = status["manifest"]
        print(f"backup Job {summary['backup_id']}: {backup_seconds:.1f} s (engine {summary['duration_seconds']} s), "
              f"dump {summary['database_size_bytes'] / 1e6:.1f} MB, Moodle {summary['moodle_release']}", flush=True)

        left = php(DELETE)
        print(f"course deleted through Moodle's API; {left} course rows left", flush=True)
        job = backups.restore_job(name=f"{project}-restore", namespace=project, site_name=project, site_spec=spec,
                                  image_tag=tag, destination=destination, backup_id=summary["backup_id"],
                                  backup_image=backup_image)
        started = time.monotonic()
        result = run_pod(job["spec"]["template"], **common)
        restore_seconds = time.monotonic() - started
        if result.exit_code != 0:
            raise SystemExit(f"restore Job failed: {result.logs[-3000:]}")
        after = json.loads(php(READ))
        code = sh(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                   f"http://127.0.0.1:{os.environ.get('PORT', '8080')}/login/index.php"])
        print(f"restore Job: {restore_seconds:.1f} s; site has: {after}; login HTTP {code}", flush=True)
        assert after == before, (before, after)
        assert code == "200"
        print(f"RESULT real Moodle through the K8s Job pods OK: backup {backup_seconds:.1f} s, restore {restore_seconds:.1f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
