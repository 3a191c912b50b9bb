"""The Moodle image (built by the moodle_image role, here FROM the Moodle STAND-IN test fixture
tests/fixtures/moodle-standin, not real Moodle) started the way charts/moodle runs its web pod:
uid/gid 33, read-only root filesystem, tmpfs where the chart mounts emptyDirs (/tmp,
/var/run/apache2, /var/log/apache2, /var/www/moodledata), MOODLE_HTTP_PORT=8080.
Needs Docker and the base image moodle-platform/debian:bookworm (make host)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from .role_images import build_role_images, chart_like_run

# This suite's role build cache (the moodle_image role's cache is CACHE/moodle_image).
CACHE = "/var/cache/moodle-platform/k8s"

@pytest.fixture(scope="module")
def standin_image() -> str:
    if shutil.which("docker") is None:
        pytest.fail("docker is required (make host)")
    return build_role_images(CACHE, timeout=1500)["moodle"]


def _docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=120)


def test_web_serves_8080_as_uid_33_read_only(standin_image):
    name = f"moodle-nonroot-test-{int(time.time())}"
    _docker(*chart_like_run(standin_image, "-d", "--name", name, "-p", "127.0.0.1::8080"))
    try:
        port = _docker("port", name, "8080/tcp").stdout.strip().splitlines()[0].rsplit(":", 1)[1]
        status, last = None, ""
        for _ in range(60):
            state = json.loads(_docker("inspect", name).stdout)[0]["State"]
            if not state["Running"]:
                break
            try:
                # version.php runs through mod_php and needs no database: 200 proves Apache + PHP.
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/version.php", timeout=5) as r:
                    status = r.status
                break
            except (urllib.error.URLError, ConnectionError) as exc:
                last = str(exc)
                time.sleep(1)
        logs = _docker("logs", name, check=False)
        assert status == 200, f"no HTTP 200 on 8080 ({last}); logs:\n{logs.stdout}{logs.stderr}"
        # Apache's processes really run as www-data, and nothing listens on 80.
        ps = _docker("exec", name, "sh", "-c", "id -u; cat /proc/1/status | grep ^Uid").stdout
        assert ps.splitlines()[0] == "33" and "\t33\t" in ps, ps
        listening = _docker("exec", name, "sh", "-c", "cat /proc/net/tcp /proc/net/tcp6").stdout
        ports = {int(line.split()[1].rsplit(":", 1)[1], 16)
                 for line in listening.splitlines()[1:] if line.split() and line.split()[3] == "0A"
                 and ":" in line.split()[1]}
        assert 8080 in ports and 80 not in ports, ports
    finally:
        _docker("rm", "-f", name, check=False)


def _session_class(image: str, *env: str) -> subprocess.CompletedProcess:
    # Evaluates the image's config.php without lib/setup.php (which would connect to the database).
    php = ("$s = file_get_contents('/var/www/moodle/config.php');"
           "$s = str_replace(\"require_once(__DIR__ . '/lib/setup.php');\", '', $s);"
           "eval('?>' . $s); echo $CFG->session_handler_class;")
    args = chart_like_run(image, *[a for e in env for a in ("-e", e)], "--rm", "--entrypoint", "php")
    return _docker(*args, "-r", php, check=False)


@pytest.mark.parametrize(("env", "expected"), [
    ((), "\\core\\session\\redis"),
    (("MOODLE_SESSION_HANDLER=file",), "\\core\\session\\file"),
    (("MOODLE_SESSION_HANDLER=redis",), "\\core\\session\\redis"),
    (("MOODLE_PHP_PROFILE=stock",), "\\core\\session\\file"),
    (("MOODLE_PHP_PROFILE=stock", "MOODLE_SESSION_HANDLER=redis"), "\\core\\session\\redis"),
    (("MOODLE_PHP_PROFILE=opcache",), "\\core\\session\\file"),
    (("MOODLE_PHP_PROFILE=tuned", "MOODLE_MUC_CONFIG=apcu"), "\\core\\session\\redis"),
])
def test_config_php_session_handler(standin_image, env, expected):
    r = _session_class(standin_image, *env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == expected


def test_config_php_rejects_unknown_session_handler(standin_image):
    r = _session_class(standin_image, "MOODLE_SESSION_HANDLER=memcached")
    assert r.returncode != 0
    assert "MOODLE_SESSION_HANDLER must be redis or file" in (r.stdout + r.stderr)


@pytest.mark.parametrize(("env", "message"), [
    ("MOODLE_PHP_PROFILE=fast", "MOODLE_PHP_PROFILE must be tuned, opcache or stock"),
    ("MOODLE_MUC_CONFIG=../muc", "MOODLE_MUC_CONFIG must match"),
])
def test_config_php_rejects_unknown_profile_and_muc_name(standin_image, env, message):
    r = _session_class(standin_image, env)
    assert r.returncode != 0
    assert message in (r.stdout + r.stderr)
