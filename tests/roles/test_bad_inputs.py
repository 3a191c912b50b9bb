"""Bad input to docker_host, base_image, service_images and compose_stack fails clearly and changes nothing.

Each case runs the real role against this machine (the local Docker host) through
tests/roles/apply_role.yml, then checks the exit status, the message a person would read,
the play recap (changed=0) and a fingerprint of everything the roles could touch.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = ROOT / "tests" / "roles" / "apply_role.yml"
UNREACHABLE_MIRROR = "http://127.0.0.1:9/debian"  # discard port: nothing listens there

# A complete external-service set-up; each compose_stack case below breaks one thing of it.
_EXTERNAL = {"compose_stack_project_name": "mn-badinput", "compose_stack_db_external": True,
             "compose_stack_db_host": "db.example.internal", "compose_stack_db_password": "x" * 24,
             "compose_stack_redis_external": True, "compose_stack_redis_host": "redis.example.internal",
             "compose_stack_redis_password": "y" * 24}

CASES = [
    # (id, role, extra vars, regex the output must contain)
    ("docker_host-log_max_file-not-int", "docker_host",
     {"docker_host_log_max_file": "three"}, r"docker_host_log_max_file.*(int|type)"),
    ("docker_host-unknown-plugins-source", "docker_host",
     {"docker_host_plugins_source": "github"}, r"docker_host_plugins_source.*(one of|choices)"),
    ("docker_host-unknown-backport-suite", "docker_host",
     {"docker_host_backport_suite": "bullseye2"}, r"docker_host_backport_suite.*(one of|choices)"),
    ("docker_host-unreachable-mirror", "docker_host",
     {"docker_host_backport_mirror": UNREACHABLE_MIRROR}, r"does not serve dists/trixie/Release"),
    ("docker_host-mirror-not-a-url", "docker_host",
     {"docker_host_backport_mirror": "deb.debian.org debian"}, r"docker_host_backport_mirror must be an http\(s\) URL"),
    ("docker_host-bad-address-pool", "docker_host",
     {"docker_host_address_pools": [{"base": "300.1.0.0/16", "size": 24}]}, r"docker_host_address_pools entry .* is invalid"),
    ("docker_host-pool-missing-size", "docker_host",
     {"docker_host_address_pools": [{"base": "10.0.0.0/16"}]}, r"missing required arguments: size"),
    ("docker_host-pin-too-high", "docker_host",
     {"docker_host_backport_pin_priority": 990}, r"never upgrades the host"),
    ("docker_host-live-restore-not-bool", "docker_host",
     {"docker_host_live_restore": "maybe"}, r"docker_host_live_restore.*bool"),
    ("docker_host-systemd-without-systemd", "docker_host",
     {"docker_host_service_mode": "systemd"}, r"systemd is not PID 1"),
    ("base_image-unknown-suite", "base_image",
     {"base_image_suites": ["bookworm", "jessie2"]}, r"base_image_suites.*(one of|choices)"),
    ("base_image-tag-with-spaces", "base_image",
     {"base_image_repository": "moodle platform/debian"}, r"must be a lowercase Docker repository name"),
    ("base_image-uppercase-and-tag", "base_image",
     {"base_image_repository": "Moodle/Debian:latest"}, r"must be a lowercase Docker repository name"),
    ("base_image-unreachable-mirror", "base_image",
     {"base_image_repository": "moodle-platform-badinput/debian", "base_image_mirror": UNREACHABLE_MIRROR},
     r"does not serve dists/bookworm/Release.*Nothing was built"),
    ("base_image-force-not-bool", "base_image",
     {"base_image_force": "yes please"}, r"base_image_force.*bool"),
    ("base_image-bad-package-name", "base_image",
     {"base_image_include": ["ca certificates"]}, r"base_image_include must hold Debian package names"),
    ("base_image-duplicate-suites", "base_image",
     {"base_image_suites": ["bookworm", "bookworm"]}, r"without duplicates"),
    ("service_images-unknown-mariadb-version", "service_images",
     {"service_images_mariadb_version": "11.4"}, r"service_images_mariadb_version.*(one of|choices).*10\.11, 11\.8"),
    ("service_images-unknown-postgresql-version", "service_images",
     {"moodle_db_type": "pgsql", "service_images_postgresql_version": "16"},
     r"service_images_postgresql_version.*(one of|choices).*15, 17"),
    ("service_images-unknown-db-type", "service_images",
     {"moodle_db_type": "oracle"}, r"service_images_db_type.*(one of|choices).*mariadb, pgsql"),
    ("compose_stack-unknown-db-type", "compose_stack",
     {"moodle_db_type": "mysql"}, r"compose_stack_db_type.*(one of|choices).*mariadb, pgsql"),
    ("compose_stack-pgsql-external-db", "compose_stack",
     {**_EXTERNAL, "moodle_db_type": "pgsql"}, r"pgsql is modelled for the stack's own PostgreSQL service"),
    # compose_stack, one site on many hosts: refused in the preflight, before the project directory exists
    ("compose_stack-external-db-without-host", "compose_stack",
     {**_EXTERNAL, "compose_stack_db_host": ""}, r"compose_stack_db_external needs compose_stack_db_host"),
    ("compose_stack-external-redis-without-password", "compose_stack",
     {**_EXTERNAL, "compose_stack_redis_password": ""}, r"needs compose_stack_redis_password .* never generated"),
    ("compose_stack-shared-moodledata-missing", "compose_stack",
     {**_EXTERNAL, "compose_stack_moodledata_path": "/nonexistent/moodledata"},
     r"compose_stack_moodledata_path=/nonexistent/moodledata is not a directory .* mount the shared file system"),
    ("compose_stack-tls-ca-without-tls", "compose_stack",
     {**_EXTERNAL, "compose_stack_db_tls_ca_file": "/etc/ssl/certs/ca-certificates.crt"}, r"needs its TLS switch on"),
    ("compose_stack-unknown-php-runtime", "compose_stack",
     {"compose_stack_project_name": "mn-badinput", "compose_stack_php_runtime": "cgi"},
     r"compose_stack_php_runtime.*(one of|choices).*fpm, mod_php"),
    ("compose_stack-fpm-in-registry-mode", "compose_stack",
     {"compose_stack_project_name": "mn-badinput", "compose_stack_source_mode": "registry",
      "compose_stack_php_runtime": "fpm"}, r"compose_stack_php_runtime fpm needs compose_stack_source_mode build"),
    ("compose_stack-negative-fpm-children", "compose_stack",
     {"compose_stack_project_name": "mn-badinput", "compose_stack_php_fpm_children": -1},
     r"compose_stack_php_fpm_children must be 0 \(derived\) or a positive number of workers \(it is -1\)"),
    ("compose_stack-no-cron-without-external-db", "compose_stack",
     {"compose_stack_project_name": "mn-badinput", "compose_stack_cron_enabled": False}, r"leaves this site without cron"),
]


def _fingerprint() -> dict:
    """Everything docker_host/base_image could change on this host."""
    files = {}
    for path in [Path("/etc/docker/daemon.json"), *sorted(Path("/etc/apt/sources.list.d").glob("*")),
                 *sorted(Path("/etc/apt/preferences.d").glob("*"))]:
        if path.is_file():
            files[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    # Only the repositories these roles write to: other work may build unrelated images meanwhile.
    images = subprocess.run(
        ["docker", "images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}",
         "--filter", "reference=moodle-platform/debian", "--filter", "reference=moodle-platform-badinput/debian"],
        check=True, capture_output=True, text=True).stdout.split("\n")
    dockerd_pid = Path("/var/run/docker.pid").read_text().strip() if Path("/var/run/docker.pid").exists() else None
    return {"files": files, "images": sorted(i for i in images if i), "dockerd_pid": dockerd_pid}


@pytest.mark.parametrize(("role", "extra", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_fails_clearly_and_changes_nothing(role, extra, expected):
    before = _fingerprint()
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(
        ["ansible-playbook", str(PLAYBOOK), "-e", json.dumps({"role_under_test": role, **extra})],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, f"bad input was accepted:\n{out[-3000:]}"
    flat = re.sub(r"\s+", " ", out)
    assert re.search(expected, flat), f"message not clear enough (wanted /{expected}/):\n{out[-3000:]}"
    recap = re.search(r"localhost\s+:\s+ok=\d+\s+changed=(\d+)", out)
    assert recap and recap.group(1) == "0", f"something changed:\n{out[-3000:]}"
    assert _fingerprint() == before
