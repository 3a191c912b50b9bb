"""moodle_config against a fake cfg.php that keeps Moodle's semantics (exit 3 = unset, 4 = hard-set)."""

import pytest
from ansible_collections.moodle.platform.plugins.module_utils._moodle_connection import CommandResult, MoodleConnection
from ansible_collections.moodle.platform.plugins.modules.moodle_config import MASK, MoodleConfig


class FakeCfgCli(MoodleConnection):
    """Stands in for `php admin/cli/cfg.php` inside a container: a dict of settings."""

    def __init__(self, settings=None, hard_set=()):
        super().__init__()
        self.settings = dict(settings or {})
        self.hard_set = set(hard_set)
        self.calls = []

    def run(self, argv, environment=None):
        self.calls.append(argv)
        assert argv[:2] == ["php", "/var/www/moodle/admin/cli/cfg.php"]
        opts = dict(a[2:].split("=", 1) if "=" in a else (a[2:], True) for a in argv[2:])
        key = (opts.get("component", "core"), opts["name"])
        if "set" in opts or "unset" in opts:
            if key in self.hard_set:
                return CommandResult(4, "", "The configuration variable is hard-set in the config.php, unable to change.")
            if "unset" in opts:
                self.settings.pop(key, None)
            else:
                self.settings[key] = opts["set"]
            return CommandResult(0, "", "")
        if key not in self.settings:
            return CommandResult(3, "", "No such configuration variable found.")
        return CommandResult(0, self.settings[key], "")


class Failed(Exception):
    pass


class FakeModule:
    def __init__(self, check_mode=False, diff=False, **params):
        self.params = dict(container="moodle-web-1", component="core", state="present", value=None, secret_value=None)
        self.params.update(params)
        self.check_mode = check_mode
        self._diff = diff

    def fail_json(self, msg, **kwargs):
        raise Failed(msg)


def writes(cli):
    return [c for c in cli.calls if any(a.startswith(("--set", "--unset")) for a in c)]


def test_sets_a_new_value_then_reports_no_change():
    cli = FakeCfgCli()
    first = MoodleConfig(FakeModule(name="forcelogin", value="1"), cli).run()
    second = MoodleConfig(FakeModule(name="forcelogin", value="1"), cli).run()
    assert first["changed"] is True and first["previous"] is None and first["value"] == "1"
    assert second["changed"] is False
    assert cli.settings[("core", "forcelogin")] == "1"
    assert len(writes(cli)) == 1


def test_plugin_settings_use_the_component():
    cli = FakeCfgCli({("tool_task", "enablerunnow"): "1"})
    result = MoodleConfig(FakeModule(name="enablerunnow", component="tool_task", value="0"), cli).run()
    assert result["changed"] is True
    assert "--component=tool_task" in writes(cli)[0]
    assert cli.settings[("tool_task", "enablerunnow")] == "0"


def test_check_mode_reports_but_does_not_write():
    cli = FakeCfgCli({("core", "theme"): "boost"})
    result = MoodleConfig(FakeModule(check_mode=True, name="theme", value="classic"), cli).run()
    assert result["changed"] is True
    assert cli.settings[("core", "theme")] == "boost"
    assert writes(cli) == []


def test_diff_shows_before_and_after():
    cli = FakeCfgCli({("core", "theme"): "boost"})
    result = MoodleConfig(FakeModule(diff=True, name="theme", value="classic"), cli).run()
    assert result["diff"]["before"] == "theme = boost\n"
    assert result["diff"]["after"] == "theme = classic\n"


def test_secret_values_are_masked_in_result_and_diff():
    cli = FakeCfgCli({("auth_ldap", "bind_pw"): "old-secret"})
    result = MoodleConfig(
        FakeModule(diff=True, name="bind_pw", component="auth_ldap", secret_value="new-secret"),  # noqa: S106 - test value
        cli,
    ).run()
    text = repr(result)
    assert "old-secret" not in text and "new-secret" not in text
    assert result["previous"] == MASK and result["value"] == MASK
    assert cli.settings[("auth_ldap", "bind_pw")] == "new-secret"


def test_absent_unsets_only_when_set():
    cli = FakeCfgCli({("core", "noemailever"): "1"})
    assert MoodleConfig(FakeModule(name="noemailever", state="absent"), cli).run()["changed"] is True
    assert ("core", "noemailever") not in cli.settings
    assert MoodleConfig(FakeModule(name="noemailever", state="absent"), cli).run()["changed"] is False


def test_hard_set_in_config_php_fails_with_an_actionable_message():
    cli = FakeCfgCli({("core", "wwwroot"): "http://x"}, hard_set=[("core", "wwwroot")])
    with pytest.raises(Failed, match=r"hard-set in config\.php"):
        MoodleConfig(FakeModule(name="wwwroot", value="http://y"), cli).run()


def test_unexpected_cfg_error_fails():
    class Broken(FakeCfgCli):
        def run(self, argv, environment=None):
            return CommandResult(1, "", "Database connection failed")

    with pytest.raises(Failed, match="Database connection failed"):
        MoodleConfig(FakeModule(name="theme", value="x"), Broken()).run()
