# Copyright (c) moodle.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compose helpers for the day-2 roles that redeploy a running stack (upgrade, restore, db_upgrade)."""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError
from ansible_collections.moodle.platform.plugins.module_utils._privileges import compose_settings

# The files compose_stack renders itself for every deployment.
_OWN = re.compile(r"(^|/)compose(\.(dev|prod|bench))?\.yml$")
_LABEL = "com.docker.compose.project.config_files"


def compose_extra_files(container):
    """The Compose files a running service was deployed with beyond compose_stack's own (compose.monitoring.yml ...).

    A day-2 role that redeploys the stack passes them as compose_stack_extra_files: without them, the stack's
    remove_orphans would delete the overlay's services.  Input: the `container` of docker_container_info (or its
    Labels), None or {} for "no container" (returns []).
    """
    if not container:
        return []
    if not isinstance(container, dict):
        raise AnsibleFilterError(f"compose_extra_files expects a container (dict), got {type(container).__name__}")
    labels = container.get("Config", {}).get("Labels") if "Config" in container else container
    files = (labels or {}).get(_LABEL, "")
    return [f for f in files.split(",") if f and not _OWN.search(f)]


def compose_privileges(row, source_mode="build"):
    """The Compose keys (user, read_only, security_opt, cap_drop, cap_add, tmpfs, sysctls) of one row of
    roles/compose_stack/files/privileges.yml."""
    if not isinstance(row, dict) or "read_only" not in row:
        raise AnsibleFilterError(f"compose_privileges expects a row of privileges.yml, got {row!r}")
    return compose_settings(row, source_mode)


class FilterModule:
    def filters(self):
        return {"compose_extra_files": compose_extra_files, "compose_privileges": compose_privileges}
