# Copyright (c) moodle.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run moodle_config's real ``main()`` as Ansible does (module args JSON on stdin) and record what
AnsibleModule sends to the managed host's log.

AnsibleModule logs its invocation through ``syslog.syslog`` or, on a systemd host with python3-systemd,
``systemd.journal.send``. This harness replaces exactly those two calls with recorders that append
one JSON line per call to ``$MOODLE_CONFIG_TEST_LOG`` (``$MOODLE_CONFIG_TEST_SINK`` = ``syslog`` or
``journal`` picks the path). Everything else (argument parsing, validation, logging, the module, its
output and diff) is the real code; only the Moodle container is a stand-in (``StandinCfgPhp``: a
dict behind cfg.php's exit codes, seeded from ``$MOODLE_CONFIG_TEST_SETTINGS``).
"""

from __future__ import annotations

import json
import os
import sys
import syslog
import types

LOG_FILE = os.environ["MOODLE_CONFIG_TEST_LOG"]


def record(sink, payload):
    with open(LOG_FILE, "a", encoding="utf-8") as log:
        log.write(json.dumps({"sink": sink, "payload": payload}) + "\n")


def install_log_recorders(sink):
    if sink == "journal":
        # What `from systemd import journal, daemon` finds on a host running systemd.
        journal = types.ModuleType("systemd.journal")
        journal.sendv = lambda *args: record("journal", list(args))
        journal.send = lambda **fields: record("journal", fields)
        daemon = types.ModuleType("systemd.daemon")
        daemon.booted = lambda: True
        package = types.ModuleType("systemd")
        package.journal, package.daemon = journal, daemon
        sys.modules.update({"systemd": package, "systemd.journal": journal, "systemd.daemon": daemon})
    syslog.openlog = lambda *args: None
    syslog.syslog = lambda *args: record("syslog", [str(a) for a in args])


def main():
    install_log_recorders(os.environ.get("MOODLE_CONFIG_TEST_SINK", "syslog"))

    # Imported only now, so AnsibleModule sees the journal stand-in when one was requested.
    from ansible.module_utils import basic
    from ansible_collections.moodle.platform.plugins.module_utils._moodle_connection import CommandResult, MoodleConnection
    from ansible_collections.moodle.platform.plugins.modules import moodle_config

    if (os.environ.get("MOODLE_CONFIG_TEST_SINK") == "journal") != basic.has_journal:
        raise SystemExit("AnsibleModule did not pick the requested log sink")

    settings = {tuple(k.split("/", 1)): v for k, v in json.loads(os.environ.get("MOODLE_CONFIG_TEST_SETTINGS", "{}")).items()}

    class StandinCfgPhp(MoodleConnection):
        """Stand-in for admin/cli/cfg.php in the Moodle container (exit 3 = unset)."""

        def run(self, argv, environment=None):
            opts = dict(a[2:].split("=", 1) if "=" in a else (a[2:], True) for a in argv[2:])
            key = (opts.get("component", "core"), opts["name"])
            if "set" in opts:
                settings[key] = opts["set"]
            elif "unset" in opts:
                settings.pop(key, None)
            elif key not in settings:
                return CommandResult(3, "", "No such configuration variable found.")
            else:
                return CommandResult(0, settings[key], "")
            return CommandResult(0, "", "")

    moodle_config.connection_from_params = lambda params: StandinCfgPhp()
    moodle_config.main()


if __name__ == "__main__":
    main()
