# Copyright: moodle.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine's configuration: the JSON file the moodle.platform.backup role renders, or direct mode
(no file: a Kubernetes Job, the scheduler container) from options and MOODLE_DB_* variables."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ansible_collections.moodle.platform.plugins.module_utils._backup.common import EngineError
from ansible_collections.moodle.platform.plugins.module_utils._backup.manifest import MOODLEDATA_EXCLUDES

DEFAULTS = {
    "platform": "compose",
    "web_service": "web",
    "db_service": "db",
    "cron_service": "cron",
    "moodle_dirroot": "/var/www/moodle",
    "db_name": "moodle",
    "db_prefix": "mdl_",
    "db_admin_user": "root",
    "db_admin_password_file": "/run/secrets/db_root_password",
    "excludes": list(MOODLEDATA_EXCLUDES),
    "sample_size": 50,
    "retention": {"daily": 7, "weekly": 4, "monthly": 12, "last": 3},
    "textfile_dir": "/var/lib/prometheus/node-exporter",
    "env_file": "",
    "restic": "restic",
}
REQUIRED_KEYS = ("project", "repository", "password_file", "state_dir", "moodledata_volume")
# Direct-mode commands that only read or maintain the repository: no database or moodledata settings needed.
REPOSITORY_ONLY_COMMANDS = frozenset({"init", "list", "show", "verify", "forget"})
DIRECT_ENV = {"db_host": "MOODLE_DB_HOST", "db_port": "MOODLE_DB_PORT", "db_name": "MOODLE_DB_NAME",
              "db_user": "MOODLE_DB_USER", "db_password_file": "MOODLE_DB_PASSWORD_FILE",
              "db_prefix": "MOODLE_DB_PREFIX", "db_type": "MOODLE_DB_TYPE"}


def load_config(path):
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError as exc:
        raise EngineError(f"config file {path} does not exist (run the moodle.platform.backup role first)") from exc
    except ValueError as exc:
        raise EngineError(f"config file {path} is not valid JSON: {exc}") from exc
    missing = [key for key in REQUIRED_KEYS if not data.get(key)]
    if missing:
        raise EngineError(f"config file {path} lacks {', '.join(missing)}")
    config = dict(DEFAULTS)
    config.update(data)
    return config


def direct_config(args, base=None):
    """The engine config of direct mode from the command line and the environment."""
    config = dict(DEFAULTS) if base is None else dict(base)
    if base is None:
        config.update(platform="kubernetes", access="direct", inherit_env=True, password_file="", textfile_dir="",
                      repository=os.environ.get("RESTIC_REPOSITORY", ""),
                      state_dir=str(Path(os.environ.get("TMPDIR") or "/tmp") / "moodle-backup"))  # noqa: S108
        for key, env in DIRECT_ENV.items():
            if os.environ.get(env):
                config[key] = os.environ[env]
        config.setdefault("db_user", "moodle")
    for key in ("platform", "project", "repository", "dataroot", "version_php", "version_json", "image", "state_dir",
                "textfile_dir"):
        if getattr(args, key, None):
            config[key] = getattr(args, key)
    retention = dict(config.get("retention") or {})
    for kind in ("daily", "weekly", "monthly", "last"):
        value = getattr(args, f"keep_{kind}", None)
        if value is not None:
            if value < 0:
                raise EngineError(f"--keep-{kind} must be >= 0, not {value}")
            retention[kind] = value
            args.forget = True
    config["retention"] = retention
    if config.get("access") == "direct":
        needed = [("--project", "project"), ("--repository or RESTIC_REPOSITORY", "repository")]
        if getattr(args, "command", None) not in REPOSITORY_ONLY_COMMANDS:  # these read/write the site too
            needed += [("--dataroot", "dataroot"), ("MOODLE_DB_HOST", "db_host"),
                       ("MOODLE_DB_PASSWORD_FILE", "db_password_file")]
        missing = [flag for flag, key in needed if not config.get(key)]
        if missing:
            raise EngineError("direct mode needs " + ", ".join(missing))
        if not re.match(r"^[a-z0-9][a-z0-9_.-]{0,62}$", config["project"]):
            raise EngineError(f"project {config['project']!r} must be lower-case letters, digits, '.', '_' or '-'")
    return config
