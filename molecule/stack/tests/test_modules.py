"""moodle.platform.moodle_info / moodle_config against the running stand-in (through Ansible)."""

import pytest
from stack_helpers import PROJECT

CONTAINER = f"{PROJECT}-web-1"


def test_moodle_info_reports_the_site(host):
    result = host.ansible("moodle.platform.moodle_info", f"container={CONTAINER}", check=False)
    site = result["moodle"]
    assert result["changed"] is False
    assert site["installed"] is True
    assert site["code_release"] == "4.5 (stand-in A)"
    assert float(site["db_version"]) == float(site["code_version"])
    assert site["upgrade_pending"] is False
    assert site["maintenance"] is False
    assert site["application_cache_plugin"] == "file"  # cache topology local (one web host)
    assert site["last_cron_age"] is not None and site["last_cron_age"] < 120


@pytest.mark.parametrize("secret", [False, True])
def test_moodle_config_is_idempotent_with_check_mode_and_diff(host, secret):
    name = "standin_test_%s" % ("secret" if secret else "plain")
    value = f"s3cr3t-value-{name}"
    args = f"container={CONTAINER} name={name} {'secret_value' if secret else 'value'}={value}"
    host.ansible("moodle.platform.moodle_config", f"container={CONTAINER} name={name} state=absent", check=False)
    checked = host.ansible("moodle.platform.moodle_config", args, check=True)
    assert checked["changed"] is True
    before = host.ansible("moodle.platform.moodle_config", f"container={CONTAINER} name={name} value=other", check=True)
    assert before["previous"] is None  # check mode did not write
    first = host.ansible("moodle.platform.moodle_config", args, check=False)
    second = host.ansible("moodle.platform.moodle_config", args, check=False)
    assert first["changed"] is True and second["changed"] is False
    if secret:
        assert value not in str(first) and value not in str(second)
    else:
        assert second["value"] == value
    removed = host.ansible("moodle.platform.moodle_config", f"container={CONTAINER} name={name} state=absent", check=False)
    assert removed["changed"] is True


def test_setting_from_the_role_was_applied(host):
    result = host.ansible("moodle.platform.moodle_config", f"container={CONTAINER} name=standin_ci_setting value=42", check=True)
    assert result["changed"] is False


def test_secret_plugin_setting_from_the_role_was_applied(host):
    args = f"container={CONTAINER} component=auth_standin name=ci_bind_pw secret_value=standin-not-a-real-secret"
    result = host.ansible("moodle.platform.moodle_config", args, check=True)
    assert result["changed"] is False and result["value"] == "********"


def test_maintenance_mode_is_seen_by_moodle_info(host):
    web = host.docker(CONTAINER)
    assert web.is_running
    host.check_output(f"docker exec -u www-data {CONTAINER} php /var/www/moodle/admin/cli/maintenance.php --enable")
    try:
        assert host.ansible("moodle.platform.moodle_info", f"container={CONTAINER}", check=False)["moodle"]["maintenance"] is True
    finally:
        host.check_output(f"docker exec -u www-data {CONTAINER} php /var/www/moodle/admin/cli/maintenance.php --disable")
    assert host.ansible("moodle.platform.moodle_info", f"container={CONTAINER}", check=False)["moodle"]["maintenance"] is False
