"""One Moodle site on two web nodes (docs/compose.md "One site on many hosts"), with the Moodle STAND-IN.

The stand-in (tests/fixtures/moodle-standin) is a PHP test fixture, not Moodle.  Two Compose projects on this
machine's engine, ``mn-a`` (port 8491, runs the site's cron) and ``mn-b`` (8492), are deployed by the playbook
users run (playbooks/compose.yml, inventory tests/multinode/inventory) against a shared MariaDB, Redis and
moodledata directory, behind a Caddy load balancer on 127.0.0.1:8490 (tests/multinode/shared.yml).  Both nodes
run on ONE engine: no real network between hosts, no partition, no NFS semantics (the shared moodledata is a
local directory).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "tests" / "multinode"
INVENTORY = HERE / "inventory"
STATE_DIR = Path("/var/tmp/moodle-platform-multinode")  # noqa: S108 - the test's fixed path (inventory: multinode_dir)
SECRETS = STATE_DIR / "secrets.yml"
PROJECTS = ("mn-a", "mn-b")
LB = "http://127.0.0.1:8490"
NODES = {"mn-a": "http://127.0.0.1:8491", "mn-b": "http://127.0.0.1:8492"}
ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")
FIGURES: list[str] = []  # measured figures, printed at the end of the run


def pytest_terminal_summary(terminalreporter):
    for line in FIGURES:
        terminalreporter.write_line(f"FIGURE {line}")


def run(argv, check=True, timeout=900):
    proc = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{argv[:5]} failed ({proc.returncode}):\n{proc.stdout.decode()[-3000:]}\n"
                             f"{proc.stderr.decode()[-3000:]}")
    return proc


def playbook(path, *extra, check=True, limit=None, timeout=1800):
    """ansible-playbook with the test inventory and its secrets."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_FORCE_COLOR="false",
               PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    args = [ANSIBLE_PLAYBOOK, str(path), "-i", str(INVENTORY), "-e", f"@{SECRETS}"]
    if limit:
        args += ["--limit", limit]
    for item in extra:
        args += ["-e", item if isinstance(item, str) else json.dumps(item)]
    started = time.monotonic()
    proc = subprocess.run(args, capture_output=True, cwd=ROOT, env=env, timeout=timeout, check=False)
    out = proc.stdout.decode() + proc.stderr.decode()
    print(f"--- ansible-playbook {Path(path).name} {extra} -> {proc.returncode} in {time.monotonic() - started:.0f}s\n"
          f"{out[-3000:]}")
    if check and proc.returncode != 0:
        raise AssertionError(f"playbook {path} failed:\n{out[-6000:]}")
    return proc.returncode, out


def sql(query):
    argv = ["docker", "exec", "mn-shared-db", "sh", "-c",
            'MYSQL_PWD="$(cat /run/secrets/db_root_password)" exec mariadb -uroot --batch --skip-column-names moodle '
            '-e "$0"', query]
    return [line.split("\t") for line in run(argv).stdout.decode().splitlines()]


def inspect(name, fmt):
    proc = run(["docker", "inspect", "--format", fmt, name], check=False)
    return proc.stdout.decode().strip() if proc.returncode == 0 else None


def project_services(project):
    out = run(["docker", "ps", "-a", "--filter", f"label=com.docker.compose.project={project}",
               "--format", "{{.Label \"com.docker.compose.service\"}}"]).stdout.decode()
    return sorted(out.split())


def teardown():
    for project in PROJECTS:
        run(["docker", "compose", "-p", project, "down", "-v", "--remove-orphans"], check=False, timeout=300)
    if SECRETS.exists():
        playbook(HERE / "shared.yml", "multinode_state=absent", check=False, limit="node-a")
    run(["rm", "-rf", str(STATE_DIR)], check=False)
    for project in PROJECTS:
        run(["rm", "-rf", f"/opt/moodle-platform/{project}"], check=False)


@pytest.fixture(scope="session")
def site():
    """The two-node site, freshly deployed (removed afterwards unless MULTINODE_KEEP=1)."""
    teardown()
    STATE_DIR.mkdir(mode=0o700, parents=True)
    passwords = {name: secrets.token_urlsafe(24) for name in
                 ("compose_stack_db_password", "compose_stack_redis_password", "compose_stack_moodle_admin_password",
                  "multinode_db_root_password")}
    SECRETS.touch(mode=0o600)
    SECRETS.write_text(json.dumps(passwords))
    timings = {}
    started = time.monotonic()
    playbook(HERE / "shared.yml", limit="node-a")
    timings["shared services"] = time.monotonic() - started
    started = time.monotonic()
    playbook(ROOT / "playbooks" / "compose.yml", timeout=3600)
    timings["deploy two nodes"] = time.monotonic() - started
    FIGURES.append("set-up: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))
    yield passwords
    if os.environ.get("MULTINODE_KEEP") != "1":
        teardown()
