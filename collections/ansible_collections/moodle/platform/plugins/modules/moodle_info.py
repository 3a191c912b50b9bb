#!/usr/bin/python
# Copyright (c) moodle.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: moodle_info
short_description: Facts about a running Moodle site
description:
  - Reads the state of a Moodle site by running PHP and Moodle's CLI inside its application container
    (C(version.php), C(config.php), C(admin/cli/upgrade.php --is-pending), the MUC configuration file).
  - Never changes anything.
version_added: 0.1.0
author: moodle.platform maintainers (@moodle-platform)
extends_documentation_fragment:
  - moodle.platform.moodle_connection
  - moodle.platform.attributes
  - moodle.platform.attributes.info_module
  - moodle.platform.attributes.actiongroup_moodle
options: {}
"""

EXAMPLES = r"""
- name: Read the site state of the Compose stack
  moodle.platform.moodle_info:
    container: moodle-web-1
  register: site

- name: Install only when needed
  ansible.builtin.debug:
    msg: "Moodle {{ site.moodle.code_release }} installed={{ site.moodle.installed }}"
"""

RETURN = r"""
moodle:
  description: Site facts.
  returned: success
  type: dict
  contains:
    installed:
      description: The database is installed.
      returned: always
      type: bool
    code_version:
      description: C($version) of the code (version.php).
      returned: always
      type: float
    code_release:
      description: C($release) of the code.
      returned: always
      type: str
    branch:
      description: C($branch) of the code.
      returned: always
      type: str
    db_version:
      description: Version recorded in the database (null before install).
      returned: always
      type: str
    db_release:
      description: Release recorded in the database.
      returned: always
      type: str
    upgrade_pending:
      description: The code is newer than the database (null before install).
      returned: always
      type: bool
    maintenance:
      description: CLI or web maintenance mode is on.
      returned: always
      type: bool
    last_cron_start:
      description: Unix time the last cron run started (null if never).
      returned: always
      type: int
    last_cron_age:
      description: Seconds since then.
      returned: always
      type: int
    cache_stores:
      description: MUC store instances, name to plugin.
      returned: always
      type: dict
    cache_mappings:
      description: Stores mapped to the application, session and request modes.
      returned: always
      type: dict
    application_cache_plugin:
      description: Plugin of the first application store (e.g. V(redis)).
      returned: always
      type: str
    wwwroot:
      description: The site's wwwroot.
      returned: always
      type: str
    dataroot:
      description: The site's dataroot.
      returned: always
      type: str
  sample:
    installed: true
    code_release: "4.5.6 (Build: 20250811)"
    upgrade_pending: false
    application_cache_plugin: redis
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.moodle.platform.plugins.module_utils._moodle_connection import (
    HAS_DOCKER,
    MoodleConnectionError,
    connection_argument_spec,
    connection_from_params,
)
from ansible_collections.moodle.platform.plugins.module_utils._moodle_site import site_state


class MoodleInfo:
    def __init__(self, module, connection):
        self.module = module
        self.connection = connection

    def fail(self, msg):
        self.module.fail_json(msg=msg)

    def run(self):
        try:
            return site_state(self.connection)
        except MoodleConnectionError as exc:
            self.fail("Cannot read the Moodle site in {}: {}".format(self.module.params["container"], exc))


def main():
    module = AnsibleModule(argument_spec=connection_argument_spec(), supports_check_mode=True)
    if module.params["connection"] == "docker" and not HAS_DOCKER:
        module.fail_json(msg=missing_required_lib("docker"))
    facts = MoodleInfo(module, connection_from_params(module.params)).run()
    module.exit_json(changed=False, moodle=facts)


if __name__ == "__main__":
    main()
