#!/usr/bin/python
# Copyright (c) moodle.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: moodle_config
short_description: Set a Moodle core or plugin setting idempotently
description:
  - Reads the setting with C(admin/cli/cfg.php) first and only writes it (C(--set) or C(--unset)) when it differs.
  - A secret goes in O(secret_value), never in O(value). O(secret_value) is declared C(no_log), so Ansible masks it
    before it logs the module invocation on the managed host (syslog or journal), and the module output and diff show
    a placeholder. Note that C(cfg.php) receives the value as an argument inside the container for the moment it runs.
version_added: 0.1.0
author: moodle.platform maintainers (@moodle-platform)
extends_documentation_fragment:
  - moodle.platform.moodle_connection
  - moodle.platform.attributes
  - moodle.platform.attributes.actiongroup_moodle
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  name:
    description: Setting name.
    type: str
    required: true
  component:
    description: Frankenstyle component (e.g. V(tool_task)); empty or V(core) for core settings.
    type: str
    default: core
  value:
    description:
      - Value to set; Moodle stores strings. It is logged and shown in the output and diff, so never put a secret here.
      - With O(state=present) exactly one of O(value) and O(secret_value) is required.
    type: str
  secret_value:
    description:
      - Value to set that is a secret (a password, an API key). It is never logged, and the output and diff show
        V(********) instead of it (and of the previous value).
      - Mutually exclusive with O(value).
    type: str
  state:
    description: V(present) sets the value, V(absent) unsets the setting.
    type: str
    default: present
    choices: [present, absent]
"""

EXAMPLES = r"""
- name: Force users to log in
  moodle.platform.moodle_config:
    name: forcelogin
    value: "1"

- name: Set a plugin setting that holds a secret
  moodle.platform.moodle_config:
    component: auth_ldap
    name: bind_pw
    secret_value: "{{ vault_ldap_bind_pw }}"
"""

RETURN = r"""
previous:
  description: Value before the change (null when unset; V(********) with O(secret_value)).
  returned: success
  type: str
value:
  description: Value after the change (null when unset; V(********) with O(secret_value)).
  returned: success
  type: str
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.moodle.platform.plugins.module_utils._moodle_connection import (
    HAS_DOCKER,
    MoodleConnectionError,
    connection_argument_spec,
    connection_from_params,
)

MASK = "********"


class MoodleConfig:
    def __init__(self, module, connection):
        self.module = module
        self.connection = connection
        self.params = module.params
        component = self.params["component"]
        self.component_args = [] if component in (None, "", "core", "moodle") else [f"--component={component}"]
        self.label = ("{}/{}".format(component, self.params["name"])) if self.component_args else self.params["name"]

    def fail(self, msg):
        self.module.fail_json(msg=msg)

    @property
    def secret(self):
        return self.params["secret_value"] is not None

    @property
    def wanted(self):
        return self.params["secret_value"] if self.secret else self.params["value"]

    def shown(self, value):
        if value is None or not self.secret:
            return value
        return MASK

    def cfg(self, *args):
        try:
            return self.connection.cli("cfg.php", "--name={}".format(self.params["name"]), *(self.component_args + list(args)))
        except MoodleConnectionError as exc:
            self.fail("Cannot run cfg.php in {}: {}".format(self.params["container"], exc))

    def current(self):
        result = self.cfg("--no-eol")
        if result.rc == 0:
            return result.stdout
        if result.rc == 3:  # "No such configuration variable found."
            return None
        self.fail(f"cfg.php could not read {self.label} (rc={result.rc}): {result.stderr.strip() or result.stdout.strip()}")

    def write(self, *args):
        result = self.cfg(*args)
        if result.rc == 4:
            self.fail(f"{self.label} is hard-set in config.php; change it there (moodle_image_config_extra) instead.")
        if result.rc != 0:
            self.fail(f"cfg.php could not change {self.label} (rc={result.rc}): {result.stderr.strip() or result.stdout.strip()}")

    def present(self, before):
        value = self.wanted
        if before == value:
            return False
        if not self.module.check_mode:
            self.write(f"--set={value}")
        return True

    def absent(self, before):
        if before is None:
            return False
        if not self.module.check_mode:
            self.write("--unset")
        return True

    def run(self):
        before = self.current()
        if self.params["state"] == "present":
            changed = self.present(before)
            after = self.wanted
        else:
            changed = self.absent(before)
            after = None
        result = dict(changed=changed, previous=self.shown(before), value=self.shown(after))
        if self.module._diff:
            result["diff"] = dict(
                before=f"{self.label} = {self.shown(before)}\n" if before is not None else "",
                after=f"{self.label} = {self.shown(after)}\n" if after is not None else "",
                before_header=self.label,
                after_header=self.label,
            )
        return result


def main():
    argument_spec = connection_argument_spec(
        name=dict(type="str", required=True),
        component=dict(type="str", default="core"),
        value=dict(type="str"),
        # no_log here (not no_log_values after the fact): AnsibleModule logs its arguments to the
        # managed host's syslog/journal while it is being constructed.
        secret_value=dict(type="str", no_log=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[("value", "secret_value")],
        required_if=[("state", "present", ("value", "secret_value"), True)],
        supports_check_mode=True,
    )
    if module.params["state"] == "absent" and (module.params["value"] is not None or module.params["secret_value"] is not None):
        module.fail_json(msg="value and secret_value are only used with state=present; state=absent unsets the setting.")
    if module.params["connection"] == "docker" and not HAS_DOCKER:
        module.fail_json(msg=missing_required_lib("docker"))
    module.exit_json(**MoodleConfig(module, connection_from_params(module.params)).run())


if __name__ == "__main__":
    main()
