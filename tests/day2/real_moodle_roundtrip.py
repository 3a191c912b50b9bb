#!/usr/bin/env python3
"""Real Moodle round trip (not in CI: needs a Moodle 4.5 tree).

    MOODLE_SRC=/path/to/moodle-4.5 .venv/bin/python tests/day2/real_moodle_roundtrip.py

Deploys real Moodle in the Compose project ``day2real`` (127.0.0.1:8280, inventory
tests/day2/inventory-real), creates a course and a file in it through Moodle's own PHP API (CLI),
backs up, destroys the stack with its volumes, restores, and checks that the course and the file
(content hash through Moodle's file API) are back and the login page serves.  Prints the times.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = ROOT / "tests" / "day2" / "inventory-real"
PROJECT = "day2real"
WEB = f"{PROJECT}-web-1"
PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")

CREATE = r"""
define('CLI_SCRIPT', true);
require '/var/www/moodle/config.php';
require_once($CFG->dirroot . '/course/lib.php');
global $DB;
$course = $DB->get_record('course', ['shortname' => 'DAY2RT']);
if (!$course) {
    $course = create_course((object) ['fullname' => 'Day-2 round trip ñ', 'shortname' => 'DAY2RT', 'category' => 1,
        'summary' => 'Created by tests/day2/real_moodle_roundtrip.py']);
}
$context = context_course::instance($course->id);
$fs = get_file_storage();
$record = ['contextid' => $context->id, 'component' => 'course', 'filearea' => 'overviewfiles', 'itemid' => 0,
    'filepath' => '/', 'filename' => 'syllabus.txt'];
if (!$fs->file_exists($context->id, 'course', 'overviewfiles', 0, '/', 'syllabus.txt')) {
    $fs->create_file_from_string($record, str_repeat("Day-2 syllabus line\n", 5000) . random_string(64));
}
"""
READ = r"""
define('CLI_SCRIPT', true);
require '/var/www/moodle/config.php';
global $DB;
$course = $DB->get_record('course', ['shortname' => 'DAY2RT'], '*', MUST_EXIST);
$context = context_course::instance($course->id);
$file = get_file_storage()->get_file($context->id, 'course', 'overviewfiles', 0, '/', 'syllabus.txt');
echo json_encode(['course' => $course->fullname, 'courses' => $DB->count_records('course'),
    'contenthash' => $file ? $file->get_contenthash() : null,
    'sha1_of_content' => $file ? sha1($file->get_content()) : null, 'size' => $file ? $file->get_filesize() : null]);
"""


def sh(argv, **kw):
    proc = subprocess.run(argv, capture_output=True, check=False, **kw)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed: {proc.stdout.decode()[-3000:]} {proc.stderr.decode()[-3000:]}")
    return proc.stdout.decode()


def playbook(name, *extra):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    args = [PLAYBOOK, str(ROOT / "playbooks" / name), "-i", str(INVENTORY)]
    for item in extra:
        args += ["-e", item]
    start = time.monotonic()
    sh(args, cwd=ROOT, env=env)
    return time.monotonic() - start


def php(code):
    return sh(["docker", "exec", "--user", "www-data", WEB, "php", "-r", code])


def main():
    if not os.environ.get("MOODLE_SRC"):
        raise SystemExit("set MOODLE_SRC to a Moodle 4.5 code tree")
    print("deploying real Moodle (project day2real) ...", flush=True)
    deploy = playbook("compose.yml", "moodle_image_source_type=local",
                      f"moodle_image_source_path={os.path.abspath(os.environ['MOODLE_SRC'])}")
    php(CREATE)
    before = json.loads(php(READ))
    print(f"deployed in {deploy:.0f} s; site has: {before}", flush=True)
    assert before["contenthash"] == before["sha1_of_content"]

    backup = playbook("backup.yml")
    # the engine the backup role installed on this host
    manifest = json.loads(sh(["/usr/local/sbin/moodle-backup", "--config",
                              f"/var/lib/moodle-platform/backup/{PROJECT}/config.json", "show", "latest"]))
    print(f"backup {manifest['backup_id']}: {backup:.0f} s playbook ({manifest['duration_seconds']} s engine), "
          f"{manifest['database']['table_count']} tables, dump {manifest['database']['size_bytes'] / 1e6:.1f} MB, "
          f"moodledata {manifest['moodledata']['file_count']} files", flush=True)

    sh(["docker", "compose", "-p", PROJECT, "down", "-v", "--remove-orphans"])
    left = sh(["docker", "volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}"]).split()
    assert left == [], left
    print("stack and volumes destroyed", flush=True)

    restore = playbook("restore.yml", f"restore_backup_id={manifest['backup_id']}")
    after = json.loads(php(READ))
    status = sh(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:8280/login/index.php"])
    print(f"restored in {restore:.0f} s; site has: {after}; login page HTTP {status}")
    assert after == before, (before, after)
    assert status == "200"
    print(f"RESULT real Moodle round trip OK: backup {backup:.0f} s, restore onto an empty host {restore:.0f} s")


if __name__ == "__main__":
    main()
