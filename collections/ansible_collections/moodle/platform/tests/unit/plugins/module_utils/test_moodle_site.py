"""site_state(): parsing what PHP/Moodle's CLI print, through a scripted connection."""

import json

import pytest
from ansible_collections.moodle.platform.plugins.module_utils._backup.moodle_version import VERSION_PHP_CODE
from ansible_collections.moodle.platform.plugins.module_utils._moodle_connection import (
    CommandResult,
    MoodleConnection,
    MoodleConnectionError,
    connection_argument_spec,
)
from ansible_collections.moodle.platform.plugins.module_utils._moodle_site import MARKER, site_state


class ScriptedMoodle(MoodleConnection):
    """Answers like a container would: version.php, the state snippet, upgrade.php --is-pending."""

    def __init__(self, state, pending_rc=0, version_rc=0):
        super().__init__()
        self.state = state
        self.pending_rc = pending_rc
        self.version_rc = version_rc
        self.calls = []

    def run(self, argv, environment=None):
        self.calls.append(argv)
        if argv[1:3] == ["-r", VERSION_PHP_CODE]:
            assert argv[3] == "/var/www/moodle/version.php"
            # what VERSION_PHP_CODE prints for Moodle 4.5.6
            out = json.dumps({"version": "2024100706.00", "release": "4.5.6 (Build: 20250811)", "branch": "405",
                              "maturity": "200"})
            return CommandResult(
                self.version_rc,
                out if self.version_rc == 0 else "",
                "" if self.version_rc == 0 else "PHP Warning: include(): Failed",
            )
        if argv[1] == "-r":
            assert environment["MOODLE_PLATFORM_MARKER"] == MARKER
            return CommandResult(0, "Notice: noise before\n" + MARKER + json.dumps(self.state), "")
        if argv[1].endswith("admin/cli/upgrade.php"):
            return CommandResult(self.pending_rc, "", "")
        raise AssertionError(argv)


INSTALLED = {
    "installed": True,
    "db_version": "2024100700.00",
    "db_release": "4.5",
    "maintenance": False,
    "last_cron_start": "1000",
    "stores": {"default_application": "file", "redis": "redis"},
    "mappings": [[1, "redis"], [2, "default_session"], [4, "default_request"]],
    "wwwroot": "http://127.0.0.1:8080",
    "dataroot": "/var/www/moodledata",
}


def test_installed_site_with_pending_upgrade():
    facts = site_state(ScriptedMoodle(INSTALLED, pending_rc=2), now=1030)
    assert facts["installed"] is True
    assert facts["code_release"] == "4.5.6 (Build: 20250811)"
    assert facts["code_version"] == 2024100706.0 and facts["branch"] == "405"
    assert facts["db_version"] == "2024100700.00"
    assert facts["upgrade_pending"] is True
    assert facts["last_cron_start"] == 1000 and facts["last_cron_age"] == 30
    assert facts["application_cache_plugin"] == "redis"
    assert facts["cache_mappings"]["session"] == ["default_session"]


def test_not_installed_site_skips_the_upgrade_check():
    state = dict(INSTALLED, installed=False, db_version=None, db_release=None, last_cron_start=False, stores={}, mappings=[])
    conn = ScriptedMoodle(state)
    facts = site_state(conn)
    assert facts["installed"] is False and facts["upgrade_pending"] is None
    assert facts["last_cron_start"] is None and facts["application_cache_plugin"] == "file (default)"
    assert not any(c[1].endswith("upgrade.php") for c in conn.calls)


def test_upgrade_check_error_is_reported():
    with pytest.raises(MoodleConnectionError, match=r"upgrade\.php --is-pending failed"):
        site_state(ScriptedMoodle(INSTALLED, pending_rc=1))


def test_unreadable_version_php_is_reported():
    with pytest.raises(MoodleConnectionError, match=r"cannot read /var/www/moodle/version\.php"):
        site_state(ScriptedMoodle(INSTALLED, version_rc=255))


def test_connection_argument_spec_is_a_copy():
    spec = connection_argument_spec(name=dict(type="str"))
    spec["container"]["default"] = "changed"
    assert connection_argument_spec()["container"]["default"] == "moodle-web-1"
    assert "name" in spec and "name" not in connection_argument_spec()
