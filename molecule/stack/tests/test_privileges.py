"""Least privilege (issue 14): every running service of this deployment (project `moodleci`: dev overlay,
MariaDB, adminer, mailpit) matches its row of the table roles/compose_stack/files/privileges.yml of the
INSTALLED collection: Config.User, ReadonlyRootfs, CapDrop/CapAdd, SecurityOpt, Tmpfs, Sysctls, and what
PID 1 really is (uid from /proc/<pid>/status, NoNewPrivs, no effective capability).  The prod overlay's
services are checked in test_prod_overlay.py on its own deployment."""

import pytest

# The installed collection is importable: ../molecule.yml puts ANSIBLE_COLLECTIONS_PATH on PYTHONPATH.
from ansible_collections.moodle.platform.plugins.module_utils import _privileges
from stack_helpers import PROJECT

EXPECTED_SERVICES = {"web", "cron", "db", "redis", "adminer", "mailpit"}


@pytest.fixture(scope="module")
def observed():
    return _privileges.project_drift(PROJECT, "mariadb")


def test_every_service_is_running_and_in_the_table(observed):
    seen, _ = observed
    assert set(seen) == EXPECTED_SERVICES


def test_no_service_drifts_from_the_privilege_table(observed):
    _, problems = observed
    assert problems == {}, "\n".join(f"{name}: {p}" for name, found in problems.items() for p in found)


def test_web_and_cron_run_as_uid_33_without_root_steps(container):
    """PID 1 and the Apache children are www-data; the root-only secret copy (/run/moodle-secrets) never ran."""
    for service in ("web", "cron"):
        top = container(service).top(ps_args="-eo pid,uid,comm")  # docker top needs the pid column
        uids = {row[1] for row in top["Processes"]}
        assert uids == {"33"}, (service, top["Processes"])
        rc, _ = container(service).exec_run(["test", "-e", "/run/moodle-secrets"])
        assert rc != 0, service
