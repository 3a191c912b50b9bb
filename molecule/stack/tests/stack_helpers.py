"""Shared helpers and fixtures of the Compose stack tests (project `moodleci`, see ../molecule.yml).

Environment: MOODLE_STACK_PROJECT / MOODLE_STACK_URL / MOODLE_STACK_DIR select another stack
(the real-Moodle acceptance uses `moodleacc`)."""

import os
import time

import docker
import pytest

PROJECT = os.environ.get("MOODLE_STACK_PROJECT", "moodleci")
BASE_URL = os.environ.get("MOODLE_STACK_URL", "http://127.0.0.1:8380")
PROJECT_DIR = os.environ.get("MOODLE_STACK_DIR", f"/opt/moodle-platform/{PROJECT}")
SECRET_NAMES = ("db_root_password", "db_password", "redis_password", "moodle_admin_password")


@pytest.fixture(scope="session")
def dockerc():
    return docker.from_env()


@pytest.fixture(scope="session")
def container(dockerc):
    def get(service):
        return dockerc.containers.get(f"{PROJECT}-{service}-1")

    return get


@pytest.fixture(scope="session")
def secrets():
    values = {}
    for name in SECRET_NAMES:
        with open(os.path.join(PROJECT_DIR, "secrets", name)) as handle:
            values[name] = handle.read().strip()
    return values


def exec_out(container, cmd, user="root", environment=None):
    rc, out = container.exec_run(cmd, user=user, environment=environment or {})
    return rc, out.decode("utf-8", "replace")


def redis_cli(container, *args):
    """redis-cli inside the redis container, password from the secret file (never on argv)."""
    script = 'REDISCLI_AUTH="$(cat /run/secrets/redis_password)" exec redis-cli --no-auth-warning "$@"'
    return exec_out(container, ["sh", "-c", script, "redis-cli", *list(args)])


def db_query(container, sql, database="moodle"):
    """SQL as root over the DB container's unix socket (socket auth, no password)."""
    return exec_out(container, ["mariadb", "-N", "-B", database, "-e", sql])


def wait_for(predicate, timeout, interval=2):
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value or time.time() > deadline:
            return value
        time.sleep(interval)
