"""The AWX job templates, executed the way AWX executes them, against the day-2 stand-in stack.

No AWX server runs here. For each job template of playbooks/vars/controller_objects.yml this does what
AWX's job runner does: ansible-runner with process isolation in the template's Execution Environment
image (moodle-platform/ee, make ee-image), the project checkout copied into the private data dir, the
template's playbook and job type, the survey's defaults (and the answers a required question needs) as
extra vars, the Moodle Vault credential's injectors rendered into extra vars, and AWX's collection and
role search paths (so the EE's installed moodle.platform runs, not the checkout's copy).

The managed host is this machine's Docker host, reached from the EE container with the
community.docker.nsenter connection (container in the host's PID namespace with CAP_SYS_ADMIN and
CAP_SYS_PTRACE, entering the namespaces of the Docker engine's process: PID 1 of this VM refuses
nsenter) instead of the SSH machine credential a real controller would use: the roles, their files and
the Docker engine are the host's, the control node is the throw-away EE container.

Runs first in the day-2 session (file order) on the freshly deployed stand-in site (Moodle STAND-IN,
not Moodle).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import ansible_runner
import jinja2.sandbox
import pytest
import yaml

from conftest import (
    CRON,
    INVENTORY,
    PROJECT,
    ROOT,
    WEB,
    container_running,
    engine,
    http_status,
    moodledata_hashes,
    run,
    sql,
    stop_cron,
    table_dumps,
)

sys.path.insert(0, str(ROOT / "tests" / "ee"))
from controller_objects import objects

SECRETS_DIR = Path.home() / ".moodle-platform/day2-test"
# What AWX sets for every job (awx/main/tasks/jobs.py build_env): project requirements first, then the EE's.
AWX_ENV = {
    "ANSIBLE_COLLECTIONS_PATH": "/runner/requirements_collections:~/.ansible/collections:/usr/share/ansible/collections",
    "ANSIBLE_ROLES_PATH": "/runner/requirements_roles:~/.ansible/roles:/usr/share/ansible/roles:/etc/ansible/roles",
    "ANSIBLE_FORCE_COLOR": "false",
}
# Answers a person must give where the survey has no usable default (filled per test below).
TEMPLATES = {t["name"]: t for t in objects()["controller_templates"]}
CREDENTIAL_TYPES = {c["name"]: c for c in objects()["controller_credential_types"]}


@pytest.fixture(scope="session")
def ee_image():
    """The EE image for the current sources (built once, then reused by its content-hash tag)."""
    proc = subprocess.run([sys.executable, str(ROOT / "scripts/ee/build.py")], capture_output=True, text=True,
                          check=False, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    print(proc.stdout[-600:])
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def awx_project(tmp_path_factory, stack):
    """What AWX checks out for the project: the repository's files (tracked and new, not ignored)."""
    dest = tmp_path_factory.mktemp("awx") / "project"
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        src = ROOT / name
        if src.is_file() and not src.is_symlink():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def vault_credential_extra_vars():
    """The "Moodle Vault" credential as AWX injects it, with the stand-in site's secrets as inputs."""
    site = SECRETS_DIR / "secrets" / f"localhost-{PROJECT}"
    inputs = {name: (site / name).read_text().strip()
              for name in ("db_root_password", "db_password", "redis_password", "moodle_admin_password")}
    inputs["backup_password"] = (SECRETS_DIR / "restic-password").read_text().strip()
    ctype = CREDENTIAL_TYPES["Moodle Vault"]
    assert set(inputs) == {f["id"] for f in ctype["inputs"]["fields"]}
    # AWX renders each injector template with the credential's inputs (sandboxed Jinja2).
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined)
    return {var: env.from_string(template).render(inputs) for var, template in ctype["injectors"]["extra_vars"].items()}


def docker_engine_pid() -> int:
    """A process in the Docker host's namespaces: the engine itself."""
    pidfile = Path("/var/run/docker.pid")
    if pidfile.is_file():
        return int(pidfile.read_text())
    return int(subprocess.run(["pidof", "-s", "dockerd"], capture_output=True, text=True, check=True).stdout)


def inventory(dest: Path) -> Path:
    """The stand-in site's inventory as the AWX inventory would hold it: the day-2 group_vars, one Docker host."""
    inv = dest / "inventory"
    shutil.copytree(INVENTORY / "group_vars", inv / "group_vars")
    host = {
        "ansible_connection": "community.docker.nsenter",
        "ansible_nsenter_pid": docker_engine_pid(),
        # nsenter always runs as root; saying so lets become skip sudo (as for root over SSH)
        "ansible_user": "root",
        # the host's Python with the Docker SDK (what the day-2 suite itself runs with)
        "ansible_python_interpreter": sys.executable,
        # the stand-in tree the day-2 stack was built from (tests/fixtures/moodle-standin, materialized)
        "moodle_image_source_type": "local",
        "moodle_image_source_path": str(ROOT / "build/moodle-standin"),
        # no control-node copy of the restic password: the EE's filesystem is thrown away after the job
        "backup_password_local_dir": "",
    }
    (inv / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"docker_hosts": {"hosts": {"docker-host": host}}}}}))
    return inv


def survey_defaults(template: dict, answers: dict | None = None) -> dict:
    values = {q["variable"]: q["default"] for q in template.get("survey_spec", {}).get("spec", [])}
    values.update(answers or {})
    for question in template.get("survey_spec", {}).get("spec", []):
        if question.get("required"):
            assert str(values[question["variable"]]) != "", f"AWX would ask for {question['variable']}"
    return values


def launch(name, ee_image, awx_project, tmp_path, answers=None, expect_failure=False):
    """ansible-runner, as AWX runs a job of template `name`. Returns (failure messages, stats of the host)."""
    template = TEMPLATES[name]
    private = tmp_path / "job"
    shutil.copytree(awx_project, private / "project", symlinks=True)
    extravars = {**(template.get("extra_vars") or {}), **survey_defaults(template, answers),
                 **vault_credential_extra_vars()}
    runner = ansible_runner.run(
        private_data_dir=str(private),
        playbook=template["playbook"],
        inventory=str(inventory(private)),
        extravars=extravars,
        envvars=AWX_ENV,
        cmdline="--check" if template["job_type"] == "check" else None,
        process_isolation=True,
        process_isolation_executable="docker",
        container_image=ee_image,
        # nsenter into the host (see the module docstring); host network for the site's published ports
        container_options=["--pid=host", "--cap-add=SYS_ADMIN", "--cap-add=SYS_PTRACE", "--network=host"],
        quiet=True,
        timeout=1800,
    )
    events = list(runner.events)
    # A failure's reason: the result's msg, else the event's own output (which carries the same text).
    failed = [e["event_data"].get("res", {}).get("msg") or e.get("stdout", "")
              for e in events if e["event"] == "runner_on_failed"]
    changed = [f"{e['event_data'].get('role', '')}: {e['event_data'].get('task', '')}"
               for e in events if e["event"] == "runner_on_ok" and e["event_data"].get("res", {}).get("changed")]
    print(f"--- job {name!r}: {runner.status} rc={runner.rc} stats={json.dumps(runner.stats)} changed tasks={changed}")
    stdout = runner.stdout.read()
    assert runner.stats, f"{name}: the job did not run ({runner.status}, rc {runner.rc}):\n{stdout[-3000:]}"
    stats = {key: (runner.stats.get(key) or {}).get("docker-host", 0) for key in ("ok", "changed", "failures", "dark")}
    assert stats["dark"] == 0, f"{name}: the Docker host was unreachable:\n{stdout[-3000:]}"
    if expect_failure:
        assert runner.status == "failed" and stats["failures"] == 1, f"{name} should have failed:\n{stdout[-3000:]}"
    else:
        assert runner.status == "successful" and runner.rc == 0, f"{name} failed: {failed}\n{stdout[-5000:]}"
        assert stats["failures"] == 0
    assert stats["ok"] > 0, "the job must have run tasks on the Docker host"
    # Which moodle.platform ran: Ansible puts the collections/ directory next to the playbook first, so
    # site.yml (project root) runs the checkout's copy; playbooks/*.yml have none beside them and run
    # the EE image's installed copy (AWX's collection path overrides the project's ansible.cfg).
    expected = ("/runner/project/collections/ansible_collections/moodle/platform/"
                if Path(template["playbook"]).parent == Path() else
                "/usr/share/ansible/collections/ansible_collections/moodle/platform/")
    paths = {e["event_data"].get("task_path", "") for e in events if e["event"] == "runner_on_ok"}
    role_paths = {p for p in paths if "/roles/" in p}
    # A job refused before any role ran (Migrate with a missing source) has no role task to check.
    assert (role_paths or expect_failure) and all(p.startswith(expected) for p in role_paths), sorted(role_paths)[:5]
    secrets = vault_credential_extra_vars().values()
    assert not [s for s in secrets if s in stdout], f"{name}: a credential secret is in the job output"
    return failed, stats


# ------------------------------------------------------------------------------------------------
def test_deploy_template_reruns_without_changes(ee_image, awx_project, tmp_path):
    before = container_running(WEB)
    _, stats = launch("Moodle - Deploy", ee_image, awx_project, tmp_path)
    assert stats["changed"] == 0, "a rerun of the deploy against the deployed site must change nothing"
    assert container_running(WEB)["started"] == before["started"]
    assert http_status("http://127.0.0.1:8180/login/index.php") == "200"


def test_backup_now_template_takes_a_verified_backup(ee_image, awx_project, tmp_path):
    before = engine("list")["backups"]
    launch("Moodle - Backup now", ee_image, awx_project, tmp_path)
    after = engine("list")["backups"]
    assert len(after) == len(before) + 1
    assert after[-1]["backup_id"] not in {b["backup_id"] for b in before}


def test_restore_drill_template_checks_the_latest_backup(ee_image, awx_project, tmp_path):
    report_file = Path("/var/lib/moodle-platform/backup") / PROJECT / "drills/last.json"
    launch("Moodle - Restore drill", ee_image, awx_project, tmp_path)
    report = json.loads(report_file.read_text())
    assert report["success"] is True
    assert report["backup_id"] == engine("list")["backups"][-1]["backup_id"]


def test_upgrade_plan_template_changes_nothing(ee_image, awx_project, tmp_path):
    before = container_running(WEB)
    _, stats = launch("Moodle - Upgrade plan", ee_image, awx_project, tmp_path, answers={"upgrade_image": before["image"]})
    assert stats["changed"] == 0
    assert container_running(WEB) == before


def test_upgrade_apply_template_with_the_running_image_is_a_no_op(ee_image, awx_project, tmp_path):
    """Apply with the image the site already runs: the plan decides there is nothing to do (the real
    A -> B upgrade with rollback runs in test_day2_compose.py with ansible-playbook)."""
    before = container_running(WEB)
    backups = len(engine("list")["backups"])
    _, stats = launch("Moodle - Upgrade apply", ee_image, awx_project, tmp_path, answers={"upgrade_image": before["image"]})
    assert stats["changed"] == 0
    assert container_running(WEB) == before
    assert len(engine("list")["backups"]) == backups, "a no-op upgrade takes no pre-upgrade backup"


def test_migrate_template_refuses_a_missing_source_before_any_change(ee_image, awx_project, tmp_path):
    before = container_running(WEB)
    missing = tmp_path / "no-such-site"
    failed, stats = launch("Moodle - Migrate", ee_image, awx_project, tmp_path, expect_failure=True,
                           answers={"migrate_db_dump": str(missing / "dump.sql"), "migrate_moodledata": str(missing / "data"),
                                    "migrate_config_php": str(missing / "config.php")})
    # The refusal's reason, from the failure events or (where the runner's event stream lacks them) the
    # job's own output as AWX shows it.
    job_output = "".join(p.read_text() for p in (tmp_path / "job/artifacts").glob("*/stdout"))
    assert any("Cannot migrate" in (msg or "") for msg in failed) or "Cannot migrate" in job_output, failed
    assert stats["changed"] == 0
    assert container_running(WEB) == before


def test_restore_template_brings_back_the_latest_backup(ee_image, awx_project, tmp_path):
    """Destructive: replaces the site with its latest backup (taken by the Backup now job above), after a
    safety backup. A change made after that backup must be gone and the data must be what it was."""
    stop_cron()
    tables, files = table_dumps(normalise_cron=True), moodledata_hashes()
    config = sql("SELECT name, value FROM mdl_config ORDER BY name")
    backups = len(engine("list")["backups"])
    # A change after the backup (what the restore must undo): a config value and a new file.
    sql("UPDATE mdl_config SET value = 'changed after the backup' WHERE name = 'standin_fullname'")
    run(["docker", "exec", WEB, "sh", "-c", "echo after > /var/www/moodledata/after-backup.txt"])
    launch("Moodle - Restore", ee_image, awx_project, tmp_path)
    stop_cron()
    assert sql("SELECT name, value FROM mdl_config ORDER BY name") == config
    assert table_dumps(normalise_cron=True) == tables
    assert moodledata_hashes() == files
    assert len(engine("list")["backups"]) == backups + 1, "the survey default takes a safety backup first"
    assert container_running(WEB)["running"]
    assert http_status("http://127.0.0.1:8180/login/index.php") == "200"
    run(["docker", "start", CRON])
