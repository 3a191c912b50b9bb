# Copyright (c) moodle.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The least-privilege table of the Compose services (roles/compose_stack/files/privileges.yml).

compose_settings() turns one row into the Compose keys the templates render (filter
moodle.platform.compose_privileges); drift() compares a running container (its `docker inspect` and its
PID 1's /proc status) with the same row and names every difference.  Pure functions, no Docker calls.
"""

from __future__ import annotations

import json
import os
import subprocess

SECURITY_OPT = ["no-new-privileges:true"]
TABLE_PATH = os.path.join(os.path.dirname(__file__), "..", "..", "roles", "compose_stack", "files", "privileges.yml")
ROW_KEYS = {"user", "runs_as", "read_only", "cap_add", "tmpfs", "sysctls", "why"}


def load_table(path=TABLE_PATH):
    """{service: row} from the table file (needs PyYAML, which Ansible itself requires)."""
    import yaml

    with open(path) as handle:
        services = yaml.safe_load(handle)["services"]
    for name, row in services.items():
        missing = ROW_KEYS - set(row)
        if missing:
            raise ValueError(f"privileges.yml: service {name} lacks {sorted(missing)}")
    return services


def user_for(row, source_mode="build"):
    """The Compose `user:` of a row in this source mode; None = keep the image's own (non-root) USER."""
    user = row.get("registry_user", row["user"]) if source_mode == "registry" else row["user"]
    return None if user == "image" else str(user)


def compose_settings(row, source_mode="build"):
    """The Compose service keys of one row: user, read_only, security_opt, cap_drop, cap_add, tmpfs, sysctls."""
    settings = {}
    user = user_for(row, source_mode)
    if user is not None:
        settings["user"] = user
    settings["read_only"] = bool(row["read_only"])
    settings["security_opt"] = list(SECURITY_OPT)
    settings["cap_drop"] = ["ALL"]
    if row["cap_add"]:
        settings["cap_add"] = sorted(row["cap_add"])
    if row["tmpfs"]:
        settings["tmpfs"] = [f"{path}:{options}" if options else path for path, options in row["tmpfs"].items()]
    if row["sysctls"]:
        settings["sysctls"] = {key: str(value) for key, value in row["sysctls"].items()}
    return settings


def _caps(values):
    return sorted({str(v).upper().removeprefix("CAP_") for v in values or []})


def _status_fields(status_text):
    fields = {}
    for line in status_text.splitlines():
        key, _sep, value = line.partition(":")
        fields[key.strip()] = value.split()
    return fields


def uid_of(name, passwd_text):
    """The uid of a user name (or a numeric uid) in an /etc/passwd text; None when unknown."""
    name = str(name).split(":", maxsplit=1)[0]
    if name.isdigit():
        return int(name)
    for line in passwd_text.splitlines():
        parts = line.split(":")
        if len(parts) > 2 and parts[0] == name:
            return int(parts[2])
    return None


def drift(row, inspect, pid1_status, passwd_text, source_mode="build"):
    """Every difference between a running container and its row, as sentences (empty list: none).

    inspect: the container's `docker inspect` object; pid1_status: the text of /proc/<PID 1>/status;
    passwd_text: the container's /etc/passwd (to resolve runs_as names such as mysql).
    """
    found = []
    config, host = inspect.get("Config") or {}, inspect.get("HostConfig") or {}
    expected_user = user_for(row, source_mode)
    if expected_user is not None and (config.get("User") or "") != expected_user:
        found.append(f"Config.User is {config.get('User')!r}, the table says {expected_user!r}")
    if bool(host.get("ReadonlyRootfs")) != bool(row["read_only"]):
        found.append(f"HostConfig.ReadonlyRootfs is {host.get('ReadonlyRootfs')}, the table says {row['read_only']}")
    if _caps(host.get("CapDrop")) != ["ALL"]:
        found.append(f"HostConfig.CapDrop is {host.get('CapDrop')}, expected [ALL]")
    if _caps(host.get("CapAdd")) != _caps(row["cap_add"]):
        found.append(f"HostConfig.CapAdd is {host.get('CapAdd')}, the table says {_caps(row['cap_add'])}")
    if sorted(host.get("SecurityOpt") or []) != SECURITY_OPT:
        found.append(f"HostConfig.SecurityOpt is {host.get('SecurityOpt')}, expected {SECURITY_OPT}")
    if (host.get("Tmpfs") or {}) != {path: options or "" for path, options in row["tmpfs"].items()}:
        found.append(f"HostConfig.Tmpfs is {host.get('Tmpfs')}, the table says {row['tmpfs']}")
    sysctls = {key: str(value) for key, value in row["sysctls"].items()}
    if (host.get("Sysctls") or {}) != sysctls:
        found.append(f"HostConfig.Sysctls is {host.get('Sysctls')}, the table says {sysctls}")
    status = _status_fields(pid1_status)
    want_uid = uid_of(row["runs_as"], passwd_text)
    uids = [int(u) for u in status.get("Uid", [])]
    if want_uid is None:
        found.append(f"runs_as {row['runs_as']!r} is no user of the image")
    elif not uids or any(u != want_uid for u in uids):
        found.append(f"PID 1 runs with Uid (real, effective, saved, fs) {uids}, the table says {want_uid} ({row['runs_as']})")
    if status.get("NoNewPrivs") != ["1"]:
        found.append(f"PID 1 has NoNewPrivs {status.get('NoNewPrivs')}, expected 1")
    # Services that drop from root keep nothing: capabilities are lost with the uid change.
    if status.get("CapEff") and int(status["CapEff"][0], 16) != 0 and (want_uid != 0 or not row["cap_add"]):
        found.append(f"PID 1 holds capabilities (CapEff {status['CapEff'][0]})")
    return found


def _docker(*args):
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True, timeout=60).stdout


def project_drift(project, db_type, source_mode="build", table=None, docker=_docker):
    """({service: container name}, {container name: [drift sentences]}) for every running container of a
    Compose project.  Reads `docker inspect` and, through the host's /proc/<pid>, PID 1's status and the
    container's /etc/passwd (run it as root on the Docker host).  The db service's row is db_<db_type>."""
    table = load_table() if table is None else table
    names = docker("ps", "--filter", f"label=com.docker.compose.project={project}", "--format", "{{.Names}}").split()
    seen, problems = {}, {}
    for name in sorted(names):
        inspect = json.loads(docker("inspect", name))[0]
        service = inspect["Config"]["Labels"].get("com.docker.compose.service", "")
        row_name = f"db_{db_type}" if service == "db" else service
        seen[service] = name
        if row_name not in table:
            problems[name] = [f"service {service} has no row ({row_name}) in privileges.yml"]
            continue
        pid = inspect["State"]["Pid"]
        with open(f"/proc/{pid}/status") as handle:
            status = handle.read()
        with open(f"/proc/{pid}/root/etc/passwd") as handle:
            passwd = handle.read()
        found = drift(table[row_name], inspect, status, passwd, source_mode)
        if found:
            problems[name] = found
    return seen, problems


DOC_BEGIN = "<!-- privileges table: generated from roles/compose_stack/files/privileges.yml (scripts/privileges_table.py) -->"
DOC_END = "<!-- end of privileges table -->"


def markdown_table(table):
    """The privilege table as the Markdown that docs/compose.md carries between DOC_BEGIN and DOC_END."""
    lines = [DOC_BEGIN,
             "| service | user (runs as) | read-only root | capabilities added (why) | tmpfs | sysctls | why root |",
             "|---|---|---|---|---|---|---|"]
    for name, row in table.items():
        user = str(row["user"])
        registry = row.get("registry_user")
        if registry is not None and str(registry) != user:
            user += f" (registry: {registry})"
        caps = "<br>".join(f"`{cap}`: {why}" for cap, why in sorted(row["cap_add"].items())) or "none"
        tmpfs = "<br>".join(f"`{path}`" for path in row["tmpfs"]) or "none"
        sysctls = "<br>".join(f"`{k}={v}`" for k, v in row["sysctls"].items()) or ""
        why = " ".join(str(row["why"]).split())
        lines.append(f"| {name} | `{user}` ({row['runs_as']}) | {'yes' if row['read_only'] else 'no'} | {caps} "
                     f"| {tmpfs} | {sysctls} | {why} |")
    lines.append(DOC_END)
    return "\n".join(lines) + "\n"
