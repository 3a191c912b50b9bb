# Copyright (c) moodle.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A secret given to moodle_config never reaches the managed host's syslog/journal, output or diff.

Runs the module's real entry point in a child Python (args JSON on stdin, as Ansible sends them)
through moodle_config_logging_harness.py, which records what AnsibleModule hands to syslog or the
journal. The non-secret cases show the recorder does see the values, so these tests can fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).with_name("moodle_config_logging_harness.py")
SECRET = "s3cr3t-Bind-Pw-7f2c"  # noqa: S105 - a test value that must not show up in the log
PLAIN = "plain-value-91ab"
SINKS = ["syslog", "journal"]


def run_module(tmp_path, sink, args, settings=None, check_mode=False, diff=True):
    log_file = tmp_path / "log.jsonl"
    log_file.unlink(missing_ok=True)
    module_args = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(p for p in sys.path if p),
        MOODLE_CONFIG_TEST_LOG=str(log_file),
        MOODLE_CONFIG_TEST_SINK=sink,
        MOODLE_CONFIG_TEST_SETTINGS=json.dumps(settings or {}),
    )
    proc = subprocess.run(
        [sys.executable, str(HARNESS)],
        input=json.dumps({"ANSIBLE_MODULE_ARGS": module_args}),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.stdout.strip(), f"module printed nothing (rc={proc.returncode}): {proc.stderr}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    logged = log_file.read_text(encoding="utf-8") if log_file.exists() else ""
    return result, logged, proc


@pytest.mark.parametrize("sink", SINKS)
def test_a_plain_value_is_logged_so_the_recorder_works(tmp_path, sink):
    result, logged, _proc = run_module(tmp_path, sink, {"name": "theme", "value": PLAIN})
    assert result.get("failed") is not True, result
    assert result["changed"] is True and result["value"] == PLAIN
    assert f'"sink": "{sink}"' in logged
    assert "Invoked with" in logged and PLAIN in logged


@pytest.mark.parametrize("sink", SINKS)
def test_a_secret_value_is_never_logged_output_or_diffed(tmp_path, sink):
    old = "old-" + SECRET
    args = {"component": "auth_ldap", "name": "bind_pw", "secret_value": SECRET}
    result, logged, proc = run_module(tmp_path, sink, args, settings={"auth_ldap/bind_pw": old})
    assert result.get("failed") is not True, result
    assert result["changed"] is True
    assert result["previous"] == "********" and result["value"] == "********"
    assert result["diff"]["after"] == "auth_ldap/bind_pw = ********\n"
    assert "Invoked with" in logged and "bind_pw" in logged  # the invocation was logged ...
    for text in (logged, proc.stdout, proc.stderr):  # ... without the secret, old or new
        assert SECRET not in text


@pytest.mark.parametrize("sink", SINKS)
def test_check_mode_with_a_secret_reports_the_change_without_the_secret(tmp_path, sink):
    args = {"component": "auth_ldap", "name": "bind_pw", "secret_value": SECRET}
    result, logged, proc = run_module(tmp_path, sink, args, check_mode=True)
    assert result["changed"] is True and result["previous"] is None
    assert result["diff"]["before"] == "" and result["diff"]["after"] == "auth_ldap/bind_pw = ********\n"
    assert SECRET not in logged and SECRET not in proc.stdout


def test_an_unchanged_secret_reports_no_change(tmp_path):
    args = {"component": "auth_ldap", "name": "bind_pw", "secret_value": SECRET}
    result, logged, proc = run_module(tmp_path, "syslog", args, settings={"auth_ldap/bind_pw": SECRET})
    assert result["changed"] is False and result["value"] == "********"
    assert SECRET not in logged and SECRET not in proc.stdout


def test_the_removed_secret_flag_fails_before_anything_is_logged(tmp_path):
    # The pre-0.1.0 way (value + secret=true) must not reach the log: validation fails first.
    result, logged, _proc = run_module(tmp_path, "syslog", {"name": "bind_pw", "value": SECRET, "secret": True})
    assert result["failed"] is True
    assert "Unsupported parameters" in result["msg"] and "secret_value" in result["msg"]
    assert logged == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"name": "bind_pw", "value": PLAIN, "secret_value": SECRET}, "mutually exclusive: value|secret_value"),
        ({"name": "bind_pw"}, "any of the following are missing: value, secret_value"),
        ({"name": "bind_pw", "state": "absent", "secret_value": SECRET}, "only used with state=present"),
    ],
)
def test_misuse_fails_clearly_without_leaking_the_secret(tmp_path, args, message):
    result, logged, proc = run_module(tmp_path, "syslog", args)
    assert result["failed"] is True
    assert message in result["msg"]
    assert SECRET not in logged and SECRET not in proc.stdout
