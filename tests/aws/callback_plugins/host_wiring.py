"""Test harness callback (tests/aws): when a host becomes unreachable, record the variables the play's tasks gave it
(compose_stack_*, aws_docker_host_*, ...) into the JSON file named by MOODLE_PLATFORM_TEST_WIRING_FILE.

The moto AWS emulator's instances are records: moodle.platform.site (target aws) wires them, then fails at the
first task that needs a host, and ansible-playbook ends there - so the record is taken at that moment.
"""

from __future__ import annotations

import json
import os
import re

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: host_wiring
type: aggregate
short_description: record the wiring variables of unreachable hosts (moodle.platform tests only)
description: Writes compose_stack_*, aws_docker_host_*, moodle_platform_backups and upgrade_rollback of each host that
  becomes unreachable to the file MOODLE_PLATFORM_TEST_WIRING_FILE names.
requirements: [MOODLE_PLATFORM_TEST_WIRING_FILE in the environment]
"""

KEYS = re.compile(r"^(compose_stack_.*|aws_docker_host_.*|moodle_platform_backups|upgrade_rollback)$")


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "host_wiring"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._play = None
        self._wiring = {}

    def v2_playbook_on_play_start(self, play):
        self._play = play

    def v2_runner_on_unreachable(self, result):
        host = result._host
        variables = self._play.get_variable_manager().get_vars(play=self._play, host=host)
        self._wiring[host.name] = {key: value for key, value in variables.items() if KEYS.match(key)}

    def v2_playbook_on_stats(self, stats):
        path = os.environ.get("MOODLE_PLATFORM_TEST_WIRING_FILE")
        if path:
            with open(path, "w", encoding="utf-8") as handle:
                json.dump(self._wiring, handle, indent=1, sort_keys=True, default=str)
            os.chmod(path, 0o600)
