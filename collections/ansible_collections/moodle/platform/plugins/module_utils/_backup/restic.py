# Copyright: moodle.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""restic, run as a subprocess with its credentials in its environment only (never on a command line).

Host mode: the repository password is a file (RESTIC_PASSWORD_FILE), S3 keys come from an env file.
Direct mode (``inherit_env``): restic's own variables come from the Secret the container was given.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from ansible_collections.moodle.platform.plugins.module_utils._backup.common import EngineError, log, read_env_file, redact, tail


class Restic:
    def __init__(self, config, offsite=False):
        self.config = config
        self.repository = config["offsite_repository"] if offsite else config["repository"]
        self.env = dict(os.environ)
        if config.get("inherit_env"):
            # direct mode (a Kubernetes Job, the scheduler container): restic's own variables
            # (RESTIC_PASSWORD[_FILE], AWS_*) come from the Secret the container was given.
            self.env["RESTIC_REPOSITORY"] = self.repository
            self.env.setdefault("RESTIC_CACHE_DIR", str(Path(config["state_dir"]) / "restic-cache"))
            if config.get("password_file"):
                self.env.pop("RESTIC_PASSWORD", None)
                self.env["RESTIC_PASSWORD_FILE"] = config["password_file"]
            if not (self.env.get("RESTIC_PASSWORD") or self.env.get("RESTIC_PASSWORD_FILE")):
                raise EngineError("no restic password: set RESTIC_PASSWORD (from a Secret) or RESTIC_PASSWORD_FILE")
            if self.env.get("RESTIC_PASSWORD_FILE") and not Path(self.env["RESTIC_PASSWORD_FILE"]).is_file():
                raise EngineError(f"restic password file {self.env['RESTIC_PASSWORD_FILE']} does not exist")
            return
        for key in list(self.env):
            if key.startswith(("RESTIC_", "AWS_")):
                del self.env[key]
        self.env["RESTIC_REPOSITORY"] = self.repository
        self.env["RESTIC_PASSWORD_FILE"] = config["password_file"]
        self.env["RESTIC_CACHE_DIR"] = str(Path(config["state_dir"]) / "restic-cache")
        env_file = config.get("offsite_env_file") if offsite else config.get("env_file")
        if env_file:
            self.env.update(read_env_file(env_file))
        if not Path(config["password_file"]).is_file():
            raise EngineError(f"restic password file {config['password_file']} does not exist")

    def cmd(self, *args):
        if args and args[0] in ("snapshots", "ls", "dump", "cat"):
            return [self.config["restic"], "--no-lock", *args]
        return [self.config["restic"], *args]

    def run(self, *args, stdin=None, check=True, cwd=None):
        proc = subprocess.run(self.cmd(*args), env=self.env, input=stdin, capture_output=True, cwd=cwd, check=False)
        if check and proc.returncode != 0:
            raise EngineError(f"restic {args[0]} failed (exit {proc.returncode}): {tail(proc.stderr)}")
        return proc

    def json(self, *args):
        out = self.run(*args, "--json").stdout
        return json.loads(out or b"null")

    def popen(self, *args, **kwargs):
        return subprocess.Popen(self.cmd(*args), env=self.env, **kwargs)  # pylint: disable=consider-using-with

    def ensure_repository(self):
        probe = self.run("cat", "config", check=False)
        if probe.returncode == 0:
            return False
        err = probe.stderr.decode(errors="replace")
        if "wrong password" in err or "no key found" in err:
            raise EngineError("the restic repository exists but the password file does not open it")
        if "Is there a repository at the following location" not in err and "does not exist" not in err \
                and "unable to open config file" not in err and "NoSuchKey" not in err:
            raise EngineError(f"cannot reach the restic repository: {tail(probe.stderr)}")
        log(f"initialising restic repository {redact(self.repository)}")
        if self.repository != self.config["repository"]:
            # same chunker parameters as the local repository, so copies deduplicate
            self.run("init", "--repository-version", "2", "--copy-chunker-params", "--from-repo",
                     self.config["repository"], "--from-password-file", self.config["password_file"])
        else:
            self.run("init", "--repository-version", "2")
        return True

    def snapshots(self, *tags, any_host=False):
        """This site's snapshots (restic host = project) with all of TAGS.  ``any_host``: whatever site wrote
        them - for one backup named by its id (unique in a repository: time and project), e.g. a Compose
        site's backup restored into a Kubernetes site of another name."""
        args = ["snapshots"] if any_host else ["snapshots", "--host", self.config["project"]]
        if tags:
            args += ["--tag", ",".join(tags)]
        return self.json(*args) or []

    def version(self):
        out = self.run("version").stdout.decode().split()
        return out[1] if len(out) > 1 else "unknown"

    def snapshot_ids(self, backup_id):
        """Every snapshot of one backup (database, moodledata, manifest)."""
        return [s["id"] for s in self.snapshots(f"backup:{backup_id}", any_host=True)]

    def forget_ids(self, ids):
        if ids:
            self.run("forget", *ids, check=False)
