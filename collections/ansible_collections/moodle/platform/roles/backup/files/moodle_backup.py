#!/usr/bin/env python3
# Copyright: moodle.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""moodle-backup: the backup engine of moodle.platform on a Docker host (Compose stacks).

Installed by the ``moodle.platform.backup`` role as ``/usr/local/lib/moodle-platform/moodle_backup.py``
next to ``backup_manifest.py`` (a copy of the collection's ``_backup_manifest.py``); run by the
playbooks and by the systemd timer.  One JSON config file per site (rendered by the role).

* database: ``mariadb-dump --single-transaction`` inside the ``db`` container, streamed through this
  process (sha256 + per-table row counts) into ``restic backup --stdin`` (restic compresses + dedups);
* moodledata: ``restic backup`` of the volume, Moodle's rebuildable caches excluded;
* manifest (docs/backup-manifest.md) written last, as its own snapshot;
* a Prometheus textfile status after every run.

Secrets: the restic password is a file (RESTIC_PASSWORD_FILE); S3 keys come from an env file read
here and passed only in restic's environment; the DB password is read from the secret file inside
the db container.  None of them is ever on a command line or printed.

Why the docker CLI and not the Docker SDK: dumps and restores are multi-GB byte streams, which
``docker exec -i`` pipes with back-pressure; the Debian host needs no extra Python packages.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
for _candidate in (_HERE, _HERE.parents[2] / "plugins" / "module_utils"):
    if (_candidate / "backup_manifest.py").exists() or (_candidate / "_backup_manifest.py").exists():
        sys.path.insert(0, str(_candidate))
        break
try:
    import backup_manifest as bm  # installed copy
except ImportError:  # running from the collection tree (tests)
    import _backup_manifest as bm

CHUNK = 1 << 20
INSERT_RE = re.compile(rb"^INSERT INTO `([^`]+)` VALUES ?")
SQL_STRING_RE = re.compile(rb"'(?:[^'\\]|\\.)*'", re.DOTALL)
MAINTENANCE_FILE = "climaintenance.html"  # what admin/cli/maintenance.php --enable writes
MAINTENANCE_PAGE = ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Maintenance</title></head>"
                    "<body><h1>This site is being restored from a backup</h1>"
                    "<p>Please come back in a few minutes.</p></body></html>\n")
DUMP_OPTIONS = ("--single-transaction", "--quick", "--routines", "--triggers", "--events", "--hex-blob",
                "--default-character-set=utf8mb4", "--skip-dump-date")


class EngineError(Exception):
    """A failure with a message an operator can act on."""


def log(message):
    print(f"[moodle-backup {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# configuration
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
    "excludes": list(bm.MOODLEDATA_EXCLUDES),
    "sample_size": 50,
    "retention": {"daily": 7, "weekly": 4, "monthly": 12},
    "textfile_dir": "/var/lib/prometheus/node-exporter",
    "env_file": "",
    "restic": "restic",
}
REQUIRED_KEYS = ("project", "repository", "password_file", "state_dir", "moodledata_volume")


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


# ---------------------------------------------------------------------------------------------
# restic
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
        return [self.config["restic"], "--no-lock", *args] if args and args[0] in ("snapshots", "ls", "dump", "cat") \
            else [self.config["restic"], *args]

    def run(self, *args, stdin=None, check=True, cwd=None):
        proc = subprocess.run(self.cmd(*args), env=self.env, input=stdin, capture_output=True, cwd=cwd, check=False)
        if check and proc.returncode != 0:
            raise EngineError(f"restic {args[0]} failed (exit {proc.returncode}): {_tail(proc.stderr)}")
        return proc

    def json(self, *args):
        out = self.run(*args, "--json").stdout
        return json.loads(out or b"null")

    def popen(self, *args, **kwargs):
        return subprocess.Popen(self.cmd(*args), env=self.env, **kwargs)

    def ensure_repository(self):
        probe = self.run("cat", "config", check=False)
        if probe.returncode == 0:
            return False
        err = probe.stderr.decode(errors="replace")
        if "wrong password" in err or "no key found" in err:
            raise EngineError("the restic repository exists but the password file does not open it")
        if "Is there a repository at the following location" not in err and "does not exist" not in err \
                and "unable to open config file" not in err and "NoSuchKey" not in err:
            raise EngineError(f"cannot reach the restic repository: {_tail(probe.stderr)}")
        log(f"initialising restic repository {redact(self.repository)}")
        if self.repository != self.config["repository"]:
            # same chunker parameters as the local repository, so copies deduplicate
            self.run("init", "--repository-version", "2", "--copy-chunker-params", "--from-repo",
                     self.config["repository"], "--from-password-file", self.config["password_file"])
        else:
            self.run("init", "--repository-version", "2")
        return True

    def snapshots(self, *tags):
        args = ["snapshots", "--host", self.config["project"]]
        if tags:
            args += ["--tag", ",".join(tags)]
        return self.json(*args) or []

    def dump(self, snapshot, path):
        return self.popen("dump", snapshot, path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def read_env_file(path):
    values = {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise EngineError(f"cannot read the environment file {path}: {exc.strerror}") from exc
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip().strip('"').strip("'")
    return values


def redact(url):
    return re.sub(r"//[^/@]*@", "//***@", url)


def _tail(data, lines=6):
    text = data.decode(errors="replace") if isinstance(data, bytes) else str(data)
    return " | ".join(text.strip().splitlines()[-lines:]) or "(no output)"


# ---------------------------------------------------------------------------------------------
# docker
def docker(*args, check=True, stdin=None):
    proc = subprocess.run(["docker", *args], input=stdin, capture_output=True, check=False)
    if check and proc.returncode != 0:
        raise EngineError(f"docker {args[0]} failed (exit {proc.returncode}): {_tail(proc.stderr)}")
    return proc


def find_container(project, service, running=True):
    args = ["ps", "-q", "--filter", f"label=com.docker.compose.project={project}",
            "--filter", f"label=com.docker.compose.service={service}"]
    if not running:
        args.insert(1, "-a")
    ids = docker(*args).stdout.decode().split()
    if not ids:
        raise EngineError(f"no {'running ' if running else ''}'{service}' container in Compose project '{project}'")
    return ids[0]


def volume_mountpoint(name):
    proc = docker("volume", "inspect", "--format", "{{.Mountpoint}}", name, check=False)
    if proc.returncode != 0:
        raise EngineError(f"Docker volume {name} does not exist")
    path = proc.stdout.decode().strip()
    if not Path(path).is_dir():
        raise EngineError(f"mountpoint {path} of volume {name} is not reachable from this host (rootless Docker?)")
    return path


def db_exec_argv(config, container, *command, interactive=False):
    # The password goes from the secret file inside the container into MYSQL_PWD of the client only:
    # not on any command line, not in `docker inspect`.
    script = 'MYSQL_PWD="$(cat "$0")"; export MYSQL_PWD; exec "$@"'
    argv = ["docker", "exec", "--user", "0"]  # compose secret files are root-only inside the container
    if interactive:
        argv.append("-i")
    return [*argv, container, "sh", "-c", script, config["db_admin_password_file"], *command]


def db_query(config, container, sql, database=None):
    argv = db_exec_argv(config, container, "mariadb", f"--user={config['db_admin_user']}", "--batch",
                        "--skip-column-names", *([database] if database else []), "-e", sql)
    proc = subprocess.run(argv, capture_output=True, check=False)
    if proc.returncode != 0:
        raise EngineError(f"query in the database container failed: {_tail(proc.stderr)}")
    return [line.split("\t") for line in proc.stdout.decode().splitlines()]


def _ident(name):
    """A table/database name from a manifest, safe to put between backticks."""
    if not re.match(r"^[A-Za-z0-9_]+$", str(name)):
        raise EngineError(f"unexpected SQL identifier {name!r} in the manifest")
    return name


VERSION_PHP_CODE = bm.VERSION_PHP_CODE


def _version_from_json(text, where):
    try:
        info = json.loads(text)
    except ValueError as exc:
        raise EngineError(f"cannot evaluate version.php of {where}: {text.strip()[:200]}") from exc
    if not info.get("branch"):
        info["branch"] = bm.parse_version_php(f"$version = {info['version']};\n$release = '{info['release']}';")["branch"]
    info["major"] = bm.branch_to_major(info["branch"])
    return info


def container_version(config, container):
    proc = docker("exec", container, "php", "-r", VERSION_PHP_CODE, f"{config['moodle_dirroot']}/version.php",
                  check=False)
    if proc.returncode != 0:
        raise EngineError(f"cannot read version.php in container {container[:12]}: {_tail(proc.stderr or proc.stdout)}")
    return _version_from_json(proc.stdout.decode(errors="replace"), f"container {container[:12]}")


def web_file(container, path):
    proc = docker("exec", container, "cat", path, check=False)
    if proc.returncode != 0:
        raise EngineError(f"cannot read {path} in the web container: {_tail(proc.stderr)}")
    return proc.stdout.decode(errors="replace")


# ---------------------------------------------------------------------------------------------
# where the site is: a Compose project on this host (docker CLI), or "direct" (the engine runs next
# to the site: a Kubernetes Job, or the scheduler container on the Compose network) and reaches the
# database over TCP and moodledata at a mounted path.
class ComposeSite:
    """The engine on the Docker host: ``docker exec`` into the db/web containers of the project."""

    def __init__(self, config):
        self.config = config
        self.project = config.get("compose_project", config["project"])
        self._db = None

    @property
    def db(self):
        if self._db is None:
            self._db = find_container(self.project, self.config["db_service"])
        return self._db

    def dataroot(self, volume=None):
        return volume_mountpoint(volume or self.config["moodledata_volume"])

    def query(self, sql, database=None):
        return db_query(self.config, self.db, sql, database)

    def dump_argv(self):
        return db_exec_argv(self.config, self.db, "mariadb-dump", f"--user={self.config['db_admin_user']}",
                            *DUMP_OPTIONS, self.config["db_name"])

    def load_argv(self, name):
        return db_exec_argv(self.config, self.db, "mariadb", f"--user={self.config['db_admin_user']}",
                            "--default-character-set=utf8mb4", name, interactive=True)

    def describe(self):
        web = find_container(self.project, self.config["web_service"])
        moodle = container_version(self.config, web)
        image_ref, image_id = docker("inspect", "--format", "{{.Config.Image}} {{.Image}}", web).stdout.decode().split()
        stack = {"db_image": docker("inspect", "--format", "{{.Config.Image}}", self.db).stdout.decode().strip()}
        try:
            redis = find_container(self.project, self.config.get("redis_service", "redis"))
            stack["redis_image"] = docker("inspect", "--format", "{{.Config.Image}}", redis).stdout.decode().strip()
        except EngineError:
            pass
        return {"moodle": moodle, "image": {"reference": image_ref, "id": image_id},
                "config_php": web_file(web, f"{self.config['moodle_dirroot']}/config.php"), "stack": stack}


class DirectSite:
    """The engine beside the site: MariaDB over TCP, moodledata mounted at ``dataroot``.

    The password comes from a file and reaches the clients through a 0600 option file
    (``--defaults-extra-file``): never on a command line or in an environment.
    """

    def __init__(self, config):
        self.config = config
        self._option_file = None
        for key in ("db_host", "dataroot"):
            if not config.get(key):
                raise EngineError(f"direct mode needs {key} (MOODLE_DB_HOST / --dataroot)")
        password_file = config.get("db_password_file") or ""
        if not Path(password_file).is_file():
            raise EngineError(f"database password file {password_file!r} does not exist (MOODLE_DB_PASSWORD_FILE)")

    def option_file(self):
        if self._option_file is None:
            password = Path(self.config["db_password_file"]).read_text(encoding="utf-8").strip()
            fd, path = tempfile.mkstemp(prefix="moodle-backup-db.", suffix=".cnf")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write("[client]\npassword=\"{}\"\n".format(password.replace("\\", "\\\\").replace('"', '\\"')))
            self._option_file = path
            atexit.register(self.close)
        return self._option_file

    def close(self):
        if self._option_file:
            with contextlib.suppress(OSError):
                os.unlink(self._option_file)
            self._option_file = None

    def _client(self, program):
        return [program, f"--defaults-extra-file={self.option_file()}", f"--host={self.config['db_host']}",
                f"--port={int(self.config.get('db_port') or 3306)}", f"--user={self.config['db_user']}"]

    def dataroot(self, volume=None):
        path = Path(self.config["dataroot"])
        if not path.is_dir():
            raise EngineError(f"moodledata directory {path} does not exist (is the volume mounted?)")
        return str(path)

    def query(self, sql, database=None):
        argv = [*self._client("mariadb"), "--batch", "--skip-column-names", *([database] if database else []),
                "-e", sql]
        proc = subprocess.run(argv, capture_output=True, check=False)
        if proc.returncode != 0:
            raise EngineError(f"query on {self.config['db_host']} failed: {_tail(proc.stderr)}")
        return [line.split("\t") for line in proc.stdout.decode().splitlines()]

    def dump_argv(self):
        return [*self._client("mariadb-dump"), *DUMP_OPTIONS, self.config["db_name"]]

    def load_argv(self, name):
        return [*self._client("mariadb"), "--default-character-set=utf8mb4", name]

    def moodle_version(self):
        """version.php when the caller lends it (Kubernetes: an init container copies it from the
        Moodle image), else what the database records (``version``/``release`` in the config table,
        i.e. the code version the schema was last upgraded to)."""
        version_json = self.config.get("version_json")
        if version_json:
            try:
                return _version_from_json(Path(version_json).read_text(encoding="utf-8"), version_json)
            except OSError as exc:
                raise EngineError(f"cannot read {version_json}: {exc}") from exc
        version_php = self.config.get("version_php")
        if version_php:
            if shutil.which("php"):
                proc = subprocess.run(["php", "-r", VERSION_PHP_CODE, version_php], capture_output=True, check=False)
                if proc.returncode == 0:
                    return _version_from_json(proc.stdout.decode(errors="replace"), version_php)
            try:
                info = bm.parse_version_php(Path(version_php).read_text(encoding="utf-8"))
            except OSError as exc:
                raise EngineError(f"cannot read {version_php}: {exc}") from exc
            info["source"] = "version.php"
            return info
        prefix = _ident(self.config["db_prefix"])
        rows = dict(self.query(f"SELECT name, value FROM `{prefix}config` WHERE name IN ('version', 'release')",  # noqa: S608
                               self.config["db_name"]))
        if "version" not in rows:
            raise EngineError(f"{prefix}config has no 'version' row: is Moodle installed in {self.config['db_name']}?")
        info = bm.parse_version_php(f"$version = {rows['version']};\n$release = '{rows.get('release', '')}';")
        info["source"] = "database"
        return info

    def image_reference(self):
        """--image, else the web service's image in the Compose file the scheduler container mounts
        (re-rendered by every deploy and upgrade, so it names the image that runs now)."""
        if self.config.get("image"):
            return self.config["image"]
        compose_file = self.config.get("compose_file")
        if not compose_file:
            return "unknown"
        try:
            import yaml  # python3-yaml in the image

            services = (yaml.safe_load(Path(compose_file).read_text(encoding="utf-8")) or {}).get("services") or {}
        except (OSError, ImportError, ValueError) as exc:
            raise EngineError(f"cannot read the web image from {compose_file}: {exc}") from exc
        image = (services.get(self.config["web_service"]) or {}).get("image")
        if not image:
            raise EngineError(f"{compose_file} has no image for service {self.config['web_service']!r}")
        return image

    def describe(self):
        moodle = self.moodle_version()
        image = {"reference": self.image_reference(), "id": self.config.get("image_id") or ""}
        return {"moodle": moodle, "image": image, "config_php": None,
                "stack": {"db_host": self.config["db_host"]}}


def site_for(config):
    return DirectSite(config) if config.get("access") == "direct" else ComposeSite(config)


# ---------------------------------------------------------------------------------------------
# helpers
@contextlib.contextmanager
def run_lock(state_dir):
    Path(state_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(Path(state_dir) / "lock", "w", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise EngineError("another moodle-backup run holds the lock for this site") from exc
        yield


def write_atomic(path, text, mode=0o644):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


class DumpScanner:
    """sha256, size and per-table row counts of a mariadb-dump stream, as it passes through.

    mariadb-dump escapes newlines inside strings, so lines are safe boundaries; an INSERT may span
    many lines (MariaDB 10.11 writes one row per line).  Outside string literals a dump row is
    ``(v, v, ...)`` with no nested parentheses, so each ``(`` starts one row.
    """

    def __init__(self):
        self.sha = hashlib.sha256()
        self.size = 0
        self.rows = {}
        self._rest = b""
        self._table = None

    def feed(self, block):
        self.sha.update(block)
        self.size += len(block)
        data = self._rest + block
        lines = data.split(b"\n")
        self._rest = lines.pop()
        for line in lines:
            self._line(line)

    def close(self):
        if self._rest:
            self._line(self._rest)
            self._rest = b""

    def _line(self, line):
        if self._table is None:
            if line.startswith(b"CREATE TABLE `"):
                self.rows.setdefault(line[14:line.index(b"`", 14)].decode(), 0)
                return
            match = INSERT_RE.match(line)
            if not match:
                return
            self._table = match.group(1).decode()
            line = line[match.end():]
        body = SQL_STRING_RE.sub(b"''", line)
        self.rows[self._table] = self.rows.get(self._table, 0) + body.count(b"(")
        if body.rstrip().endswith(b";"):
            self._table = None


def pipe_through(source, sink, scanner):
    while True:
        block = source.read(CHUNK)
        if not block:
            break
        scanner.feed(block)
        sink.write(block)
    scanner.close()


# ---------------------------------------------------------------------------------------------
# backup
def cmd_backup(config, args):
    restic = Restic(config)
    project = config["project"]
    with run_lock(config["state_dir"]):
        started = bm.utcnow()
        try:
            manifest, added = _backup(config, restic, started, args)
        except Exception:
            _write_status(config, success=False)
            raise
        offsite = None
        if config.get("offsite_repository"):
            try:
                offsite = _copy_offsite(config, manifest["backup_id"])
            except EngineError as exc:
                _write_status(config, success=False)
                raise EngineError(f"backup {manifest['backup_id']} is complete locally, but the off-site copy "
                                  f"failed: {exc}") from exc
        _write_status(config, success=True, manifest=manifest, added=added)
        if args.forget:
            _forget(config, restic, dry_run=False)
            if offsite:
                _forget(config, Restic(config, offsite=True), dry_run=False)
        if config.get("drill_after_backup"):
            _, problems = verify(config, restic, manifest["backup_id"], force=True)
            if problems:
                raise EngineError("post-backup verification failed: " + "; ".join(p["message"] for p in problems))
    log(f"backup {manifest['backup_id']} of {project} complete in {manifest['duration_seconds']}s")
    return manifest


def _backup(config, restic, started, args):
    project = config["project"]
    backup_id = bm.new_backup_id(started, project)
    when = started.strftime("%Y-%m-%d %H:%M:%S")
    base_tags = [bm.TAG_PLATFORM, f"backup:{backup_id}"]
    restic.ensure_repository()

    site = site_for(config)
    described = site.describe()  # first: "the site does not run" is the clearest error
    mountpoint = site.dataroot()
    moodle, stack, config_php = described["moodle"], described["stack"], described["config_php"]
    moodle.pop("major", None)
    image_ref, image_id = described["image"]["reference"], described["image"]["id"]
    server_version = site.query("SELECT VERSION()")[0][0]
    log(f"backup {backup_id} ({config['platform']}): Moodle {moodle['release']} ({moodle['version']}), image {image_ref}")

    # 1. database: mariadb-dump -> (sha256, row counts) -> restic --stdin
    log("dumping the database (mariadb-dump --single-transaction) into restic")
    dump_argv = site.dump_argv()
    # restic's and mariadb-dump's own output go to files: a full pipe must never stall the stream.
    store_log = tempfile.TemporaryFile()
    dump_log = tempfile.TemporaryFile()
    dump = subprocess.Popen(dump_argv, stdout=subprocess.PIPE, stderr=dump_log)
    store = restic.popen("backup", "--quiet", "--host", project, "--time", when, "--stdin", "--stdin-filename",
                         bm.DB_DUMP_FILENAME, "--tag", ",".join([*base_tags, bm.KIND_TAGS["database"]]),
                         stdin=subprocess.PIPE, stdout=store_log, stderr=store_log)
    scanner = DumpScanner()
    try:
        pipe_through(dump.stdout, store.stdin, scanner)
    finally:
        store.stdin.close()
    dump_rc = dump.wait()
    store.wait()
    dump_log.seek(0)
    store_log.seek(0)
    dump_err, store_err = dump_log.read(), store_log.read()
    if dump_rc != 0 or store.returncode != 0:
        _forget_ids(restic, _snapshot_ids(restic, backup_id))
        raise EngineError(f"database dump failed (mariadb-dump exit {dump_rc}: {_tail(dump_err)}; "
                          f"restic exit {store.returncode}: {_tail(store_err)}); nothing was recorded")
    if scanner.size == 0 or not scanner.rows:
        _forget_ids(restic, _snapshot_ids(restic, backup_id))
        raise EngineError("the database dump is empty; is Moodle installed?")
    prefix = config["db_prefix"]
    tables = {name: count for name, count in sorted(scanner.rows.items()) if name.startswith(prefix)}
    log(f"database: {scanner.size} bytes, {len(tables)} tables, sha256 {scanner.sha.hexdigest()[:16]}")

    # 2. moodledata
    log(f"backing up moodledata ({mountpoint}) with restic")
    excludes = []
    for name in config["excludes"]:
        excludes += ["--exclude", f"{mountpoint}/{name}"]
    files = restic.run("backup", "--json", "--host", project, "--time", when, "--tag",
                       ",".join([*base_tags, bm.KIND_TAGS["moodledata"]]), *excludes, ".", cwd=mountpoint)
    summary = [json.loads(line) for line in files.stdout.decode().splitlines() if '"summary"' in line][-1]

    snaps = restic.snapshots(f"backup:{backup_id}")
    db_snap = _kind_snapshot(snaps, "database")
    files_snap = _kind_snapshot(snaps, "moodledata")
    sample = _sample(restic, files_snap, mountpoint, config["sample_size"])
    completed = bm.utcnow()
    wwwroot = re.search(r"""\$CFG->wwwroot\s*=\s*(.+?);""", config_php or "")
    manifest = bm.build_manifest(
        backup_id=backup_id, project=project, platform=config["platform"], started=started, completed=completed,
        host=config.get("host_name") or os.uname().nodename, tool={"name": "moodle-backup", "restic": _restic_version(restic)},
        moodle=moodle,
        image={"reference": image_ref, "id": image_id},
        database={"engine": "mariadb", "server_version": server_version, "name": config["db_name"],
                  "prefix": prefix, "dump_file": bm.DB_DUMP_FILENAME, "sha256": scanner.sha.hexdigest(),
                  "size_bytes": scanner.size, "snapshot_id": db_snap, "table_count": len(tables), "tables": tables},
        moodledata={"snapshot_id": files_snap, "file_count": int(summary.get("total_files_processed", 0)),
                    "size_bytes": int(summary.get("total_bytes_processed", 0)),
                    "added_bytes": int(summary.get("data_added", 0)), "excludes": list(config["excludes"]),
                    "sample": sample},
        stack=stack,
        config={"wwwroot_expression": wwwroot.group(1).strip() if wwwroot else "", "dbprefix": prefix,
                "config_php_sha256": hashlib.sha256(config_php.encode()).hexdigest() if config_php else ""},
    )
    # 3. the manifest, last: a backup without one does not exist
    restic.run("backup", "--host", project, "--time", when, "--stdin", "--stdin-filename", bm.MANIFEST_FILENAME,
               "--tag", ",".join([*base_tags, bm.KIND_TAGS["manifest"]]), stdin=bm.dumps(manifest).encode())
    write_atomic(Path(config["state_dir"]) / "manifests" / f"{backup_id}.json", bm.dumps(manifest), 0o600)
    return manifest, int(summary.get("data_added", 0))


def _copy_offsite(config, backup_id):
    local = Restic(config)
    remote = Restic(config, offsite=True)
    remote.ensure_repository()
    ids = _snapshot_ids(local, backup_id)
    log(f"copying {len(ids)} snapshots of {backup_id} to {redact(remote.repository)}")
    # RESTIC_PASSWORD_FILE is the same for both repositories; the source password file is passed
    # as a file too.
    remote.run("copy", "--from-repo", config["repository"], "--from-password-file", config["password_file"], *ids)
    copied = [s for s in remote.snapshots(f"backup:{backup_id}")]
    if len(copied) < len(ids):
        raise EngineError(f"only {len(copied)} of {len(ids)} snapshots arrived in the off-site repository")
    return {"repository": redact(remote.repository), "snapshots": len(copied)}


def _kind_snapshot(snaps, kind):
    for snap in snaps:
        if bm.KIND_TAGS[kind] in snap.get("tags", []):
            return snap["id"]
    raise EngineError(f"restic did not record the {kind} snapshot")


def _snapshot_ids(restic, backup_id):
    return [s["id"] for s in restic.snapshots(f"backup:{backup_id}")]


def _forget_ids(restic, ids):
    if ids:
        restic.run("forget", *ids, check=False)


def _restic_version(restic):
    out = restic.run("version").stdout.decode().split()
    return out[1] if len(out) > 1 else "unknown"


def _sample(restic, snapshot, mountpoint, count):
    listing = restic.run("ls", "--json", snapshot).stdout.decode().splitlines()
    files = []
    for line in listing:
        node = json.loads(line)
        if node.get("struct_type") == "node" and node.get("type") == "file" and node["path"].startswith("/filedir/"):
            files.append((node["path"].lstrip("/"), int(node.get("size", 0))))
    files.sort()
    if not files or count <= 0:
        return []
    step = max(1, len(files) // count)
    sample = []
    for rel, size in files[::step][:count]:
        path = Path(mountpoint) / rel
        if path.is_file():  # filedir is content-addressed: a file that still exists is unchanged
            sample.append({"path": rel, "sha256": bm.sha256_file(path), "size_bytes": size})
    return sample


def _write_status(config, success, manifest=None, added=0):
    if not config.get("textfile_dir"):
        return
    path = Path(config["textfile_dir"]) / f"moodle_backup_{config['project']}.prom"
    previous = bm.parse_textfile(path.read_text(encoding="utf-8")) if path.exists() else {}
    text = bm.render_backup_textfile(config["project"], last_run=int(time.time()), success=success,
                                     previous=previous, manifest=manifest, added_bytes=added)
    try:
        write_atomic(path, text, 0o644)
    except OSError as exc:
        log(f"could not write the status file {path}: {exc}")


# ---------------------------------------------------------------------------------------------
# listing, showing, verifying
def _manifest_snapshots(restic):
    return sorted(restic.snapshots(bm.TAG_PLATFORM, bm.KIND_TAGS["manifest"]), key=lambda s: s["time"])


def _backup_id_of(snapshot):
    for tag in snapshot.get("tags", []):
        if tag.startswith("backup:"):
            return tag[len("backup:"):]
    return None


def load_manifest(restic, backup_id):
    """(manifest, all snapshots) for ``backup_id`` or 'latest'; EngineError when there is no such backup."""
    manifests = _manifest_snapshots(restic)
    if backup_id in (None, "", "latest"):
        if not manifests:
            raise EngineError("the repository holds no complete backup of this site")
        chosen = manifests[-1]
    else:
        if not bm.valid_backup_id(backup_id):
            raise EngineError(f"'{backup_id}' is not a backup id (like 20261124T020000Z-moodle) or 'latest'")
        found = [s for s in manifests if _backup_id_of(s) == backup_id]
        if not found:
            raise EngineError(f"backup {backup_id} does not exist in the repository (or has no manifest: incomplete)")
        chosen = found[-1]
    proc = restic.run("dump", chosen["id"], "/" + bm.MANIFEST_FILENAME)
    return bm.loads(proc.stdout.decode())


def cmd_list(config, args):
    restic = Restic(config)
    result = []
    for snap in _manifest_snapshots(restic):
        result.append({"backup_id": _backup_id_of(snap), "time": snap["time"], "manifest_snapshot": snap["id"]})
    return {"backups": result}


def cmd_show(config, args):
    return load_manifest(Restic(config), args.backup_id)


def local_snapshot(restic, manifest, kind):
    """The id, in this repository, of the manifest's ``kind`` snapshot (itself, or its restic copy)."""
    wanted = manifest[kind]["snapshot_id"]
    for snap in restic.snapshots(f"backup:{manifest['backup_id']}"):
        if wanted in (snap["id"], snap.get("original")):
            return snap["id"]
    return wanted


def _stream_sha(restic, snapshot, path):
    errlog = tempfile.TemporaryFile()
    proc = restic.popen("dump", snapshot, path, stdout=subprocess.PIPE, stderr=errlog)
    digest = hashlib.sha256()
    for block in iter(lambda: proc.stdout.read(CHUNK), b""):
        digest.update(block)
    rc = proc.wait()
    errlog.seek(0)
    err = errlog.read()
    if rc != 0:
        return None, f"restic could not read {path} of snapshot {snapshot[:8]}: {_tail(err)}"
    return digest.hexdigest(), None


def verify(config, restic, backup_id, target=None, force=False):
    """(manifest or None, problems as dicts): everything that makes a backup unusable, read-only."""
    try:
        manifest = load_manifest(restic, backup_id)
    except (EngineError, bm.ManifestError) as exc:
        return None, [{"code": "incomplete" if "does not exist" in str(exc) or "no complete" in str(exc)
                       else "malformed", "message": str(exc), "forceable": False}]
    problems = bm.validate_manifest(manifest)
    if problems:
        return manifest, [p.as_dict() for p in problems]
    snapshots = restic.snapshots()
    # `restic copy` gives copies new ids and records the source id in `original`.
    available = [s["id"] for s in snapshots] + [s["original"] for s in snapshots if s.get("original")]
    problems = bm.check_restorable(manifest, target=target, available_snapshots=available,
                                   allow_other_major=force)
    if not problems:
        log(f"verifying the database dump of {manifest['backup_id']} against its checksum")
        sha, err = _stream_sha(restic, local_snapshot(restic, manifest, "database"), "/" + bm.DB_DUMP_FILENAME)
        if err:
            problems.append(bm.Problem("incomplete", f"backup {manifest['backup_id']}: {err}"))
        else:
            problems = bm.check_restorable(manifest, dump_sha256=sha)
    return manifest, [p.as_dict() for p in problems]


def image_version(config, image):
    """version.php of a Moodle image, read in a throwaway container without network."""
    proc = docker("run", "--rm", "--network", "none", "--entrypoint", "php", image, "-r", VERSION_PHP_CODE,
                  f"{config['moodle_dirroot']}/version.php", check=False)
    if proc.returncode != 0:
        raise EngineError(f"cannot read version.php from image {image}: {_tail(proc.stderr or proc.stdout)}")
    return _version_from_json(proc.stdout.decode(errors="replace"), f"image {image}")


def cmd_image_version(config, args):
    return image_version(config, args.image)


def cmd_verify(config, args):
    restic = Restic(config)
    target = None
    if args.target_version_php:
        target = bm.parse_version_php(Path(args.target_version_php).read_text(encoding="utf-8"))
    elif args.target_image:
        target = image_version(config, args.target_image)
    elif args.target_container:
        target = container_version(config, args.target_container)
    manifest, problems = verify(config, restic, args.backup_id, target=target, force=args.force)
    if args.read_data and not problems:
        proc = restic.run("check", "--read-data", check=False)
        if proc.returncode != 0:
            problems.append({"code": "repository", "message": f"restic check --read-data failed: {_tail(proc.stderr)}",
                             "forceable": False})
    return {"backup_id": manifest["backup_id"] if manifest else args.backup_id, "ok": not problems,
            "problems": problems, "manifest": manifest}


# ---------------------------------------------------------------------------------------------
# restore (the playbooks put the site into maintenance and stop web/cron around these)
def cmd_restore_db(config, args):
    restic = Restic(config)
    manifest, problems = verify(config, restic, args.backup_id, force=True)
    if problems:
        raise EngineError("refusing to restore: " + "; ".join(p["message"] for p in problems))
    return _restore_db(config, restic, manifest, getattr(args, "db_container", None))


def _restore_db(config, restic, manifest, db_container=None):
    site = site_for(config)
    if db_container:
        site._db = db_container
    # the dump is loaded into the database the site uses (Kubernetes may name it differently)
    name = _ident(config["db_name"] if config.get("access") == "direct" else manifest["database"]["name"])
    log(f"restoring database {name} from {manifest['backup_id']} ({config['platform']})")
    site.query(f"DROP DATABASE IF EXISTS `{name}`; CREATE DATABASE `{name}` "
               "DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    src_log, sink_log = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    source = restic.popen("dump", local_snapshot(restic, manifest, "database"), "/" + bm.DB_DUMP_FILENAME,
                          stdout=subprocess.PIPE, stderr=src_log)
    sink = subprocess.Popen(site.load_argv(name), stdin=subprocess.PIPE, stdout=sink_log, stderr=sink_log)
    scanner = DumpScanner()
    try:
        pipe_through(source.stdout, sink.stdin, scanner)
    finally:
        sink.stdin.close()
    src_rc, sink_rc = source.wait(), sink.wait()
    src_log.seek(0)
    sink_log.seek(0)
    src_err, sink_err = src_log.read(), sink_log.read()
    if src_rc != 0 or sink_rc != 0:
        raise EngineError(f"database restore failed: restic {_tail(src_err)}; mariadb {_tail(sink_err)}")
    if scanner.sha.hexdigest() != manifest["database"]["sha256"]:
        raise EngineError("the dump read during the restore does not match the manifest checksum")
    return {"backup_id": manifest["backup_id"], "database": name, "bytes": scanner.size,
            "tables": len(manifest["database"]["tables"])}


def cmd_restore_files(config, args):
    restic = Restic(config)
    manifest, problems = verify(config, restic, args.backup_id, force=True)
    if problems:
        raise EngineError("refusing to restore: " + "; ".join(p["message"] for p in problems))
    return _restore_files(config, restic, manifest, getattr(args, "volume", None))


def _restore_files(config, restic, manifest, volume=None):
    site = site_for(config)
    volume = volume or config.get("moodledata_volume") or config.get("dataroot")
    mountpoint = Path(site.dataroot(volume))
    staging = mountpoint / ".moodle-platform-restore"
    replaced = mountpoint / ".moodle-platform-replaced"
    for leftover in (staging, replaced):
        if leftover.exists():
            shutil.rmtree(leftover)
    log(f"restoring moodledata of {manifest['backup_id']} into {volume}")
    restic.run("restore", local_snapshot(restic, manifest, "moodledata"), "--target", str(staging))
    # Moodle's CLI maintenance mode is this file in the dataroot: a site in maintenance stays in it.
    if (mountpoint / MAINTENANCE_FILE).is_file() and not (staging / MAINTENANCE_FILE).exists():
        shutil.copy2(mountpoint / MAINTENANCE_FILE, staging / MAINTENANCE_FILE)
    # Swap by renames on one filesystem: the old content is removed only after the new one is in place.
    replaced.mkdir()
    for entry in mountpoint.iterdir():
        if entry not in (staging, replaced):
            entry.rename(replaced / entry.name)
    for entry in staging.iterdir():
        entry.rename(mountpoint / entry.name)
    staging.rmdir()
    shutil.rmtree(replaced)
    return {"backup_id": manifest["backup_id"], "volume": volume,
            "file_count": manifest["moodledata"]["file_count"]}


def cmd_restore(config, args):
    """Direct mode's one-step restore (a Kubernetes Job, the scheduler container): verify against the
    code's version.php, maintenance on, database, moodledata, maintenance off if asked."""
    if config.get("access") != "direct":
        raise EngineError("`restore` is the one-step restore of direct mode (Kubernetes Job, scheduler container); "
                          "on a Docker host run playbooks/restore.yml")
    started = time.time()
    restic = Restic(config)
    with run_lock(config["state_dir"]):
        site = site_for(config)
        target = site.moodle_version() if config.get("version_php") or config.get("version_json") else None
        manifest, problems = verify(config, restic, args.backup_id, target=target, force=args.force)
        if problems:  # nothing was touched
            raise EngineError("refusing to restore: " + "; ".join(p["message"] for p in problems))
        dataroot = Path(site.dataroot())
        write_atomic(dataroot / MAINTENANCE_FILE, MAINTENANCE_PAGE, 0o644)
        database = _restore_db(config, restic, manifest)
        files = _restore_files(config, restic, manifest)
        if args.maintenance_off:
            (dataroot / MAINTENANCE_FILE).unlink(missing_ok=True)
        else:
            write_atomic(dataroot / MAINTENANCE_FILE, MAINTENANCE_PAGE, 0o644)
    return {"backup_id": manifest["backup_id"], "restored": True, "database": database["database"],
            "database_bytes": database["bytes"], "file_count": files["file_count"],
            "moodle_release": manifest["moodle"]["release"], "moodle_version": manifest["moodle"]["version"],
            "maintenance": "off" if args.maintenance_off else "on",
            "duration_seconds": round(time.time() - started, 3)}


# ---------------------------------------------------------------------------------------------
# migration of an existing site (PRD 12): old dump, old moodledata, old config.php
CONFIG_ASSIGN_RE = re.compile(r"""\$CFG->(\w+)\s*=\s*(['"])(.*?)\2\s*;""")


def parse_config_php(text):
    """Plain string settings of an old config.php ($CFG->prefix, wwwroot, dataroot, dbname, ...)."""
    values = {}
    for name, _, value in CONFIG_ASSIGN_RE.findall(text):
        values.setdefault(name, value)
    return values


def inspect_source(source, config_php=None):
    """What a migration source holds: layout (bitnami|plain|archive), dataroot dir, config.php values."""
    src = Path(source)
    info = {"source": str(src), "layout": None, "dataroot": None, "config_php": None, "config": {}}
    if not src.exists():
        raise EngineError(f"migration source {src} does not exist")
    if src.is_file():
        if not re.search(r"\.(tar|tar\.gz|tgz|tar\.zst)$", src.name):
            raise EngineError(f"{src} is neither a directory nor a .tar/.tar.gz/.tgz archive of moodledata")
        info["layout"] = "archive"
    elif (src / "moodledata").is_dir() and (src / "moodle" / "config.php").is_file():
        # Bitnami's Moodle image keeps /bitnami/moodle (code + config.php) and /bitnami/moodledata.
        info.update(layout="bitnami", dataroot=str(src / "moodledata"), config_php=str(src / "moodle" / "config.php"))
    elif (src / "filedir").is_dir():
        info.update(layout="plain", dataroot=str(src))
    else:
        raise EngineError(f"{src} does not look like a moodledata directory (no filedir/) nor a Bitnami volume "
                          "(moodle/config.php + moodledata/)")
    if config_php:
        info["config_php"] = config_php
    if info["config_php"]:
        try:
            info["config"] = parse_config_php(Path(info["config_php"]).read_text(encoding="utf-8", errors="replace"))
        except OSError as exc:
            raise EngineError(f"cannot read {info['config_php']}: {exc.strerror}") from exc
    return info


def cmd_inspect_migration(config, args):
    info = inspect_source(args.source, args.config_php)
    dump = Path(args.dump)
    if not dump.is_file():
        raise EngineError(f"database dump {dump} does not exist")
    with open(dump, "rb") as handle:
        head = handle.read(2)
    info["dump"] = {"path": str(dump), "compressed": head == b"\x1f\x8b", "size_bytes": dump.stat().st_size}
    info["prefix"] = info["config"].get("prefix", "mdl_")
    return info


def cmd_import_db(config, args):
    dump = Path(args.dump)
    name = _ident(args.database)
    with open(dump, "rb") as handle:
        compressed = handle.read(2) == b"\x1f\x8b"
    log(f"importing {dump} into database {name} of container {args.db_container[:12]}")
    db_query(config, args.db_container, f"DROP DATABASE IF EXISTS `{name}`; CREATE DATABASE `{name}` "
             "DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    sink_log = tempfile.TemporaryFile()
    sink = subprocess.Popen(db_exec_argv(config, args.db_container, "mariadb", f"--user={config['db_admin_user']}",
                                         "--default-character-set=utf8mb4", name, interactive=True),
                            stdin=subprocess.PIPE, stdout=sink_log, stderr=sink_log)
    import gzip

    opener = gzip.open if compressed else open
    scanner = DumpScanner()
    try:
        with opener(dump, "rb") as source:
            pipe_through(source, sink.stdin, scanner)
    finally:
        sink.stdin.close()
    if sink.wait() != 0:
        sink_log.seek(0)
        raise EngineError(f"importing the dump failed: {_tail(sink_log.read())}")
    return {"database": name, "bytes": scanner.size, "tables": len(scanner.rows),
            "rows": sum(scanner.rows.values())}


def cmd_import_files(config, args):
    info = inspect_source(args.source)
    mountpoint = Path(volume_mountpoint(args.volume))
    staging = mountpoint / ".moodle-platform-restore"
    replaced = mountpoint / ".moodle-platform-replaced"
    for leftover in (staging, replaced):
        if leftover.exists():
            shutil.rmtree(leftover)
    staging.mkdir()
    skip = set(config["excludes"])
    if info["layout"] == "archive":
        log(f"unpacking {args.source} into volume {args.volume}")
        proc = subprocess.run(["tar", "-xf", args.source, "-C", str(staging), "--numeric-owner"],
                              capture_output=True, check=False)
        if proc.returncode != 0:
            raise EngineError(f"unpacking {args.source} failed: {_tail(proc.stderr)}")
        inner = [p for p in staging.iterdir()]
        # accept archives of the directory itself (moodledata/...) as well as of its content
        if len(inner) == 1 and inner[0].is_dir() and (inner[0] / "filedir").is_dir():
            for entry in inner[0].iterdir():
                entry.rename(staging / entry.name)
            inner[0].rmdir()
        if not (staging / "filedir").is_dir():
            raise EngineError(f"{args.source} holds no filedir/: not a moodledata archive")
        for name in skip:
            if (staging / name).exists():
                shutil.rmtree(staging / name)
    else:
        log(f"copying {info['dataroot']} ({info['layout']} layout) into volume {args.volume}")
        source = Path(info["dataroot"])
        for entry in source.iterdir():
            if entry.name in skip:
                continue
            if entry.is_dir():
                shutil.copytree(entry, staging / entry.name, symlinks=True)
            else:
                shutil.copy2(entry, staging / entry.name)
    # the web server user of the image owns the dataroot (Debian www-data = 33)
    for root, dirs, files in os.walk(staging):
        for name in dirs + files:
            os.lchown(os.path.join(root, name), args.uid, args.uid)
    replaced.mkdir()
    for entry in mountpoint.iterdir():
        if entry not in (staging, replaced):
            entry.rename(replaced / entry.name)
    for entry in staging.iterdir():
        entry.rename(mountpoint / entry.name)
    staging.rmdir()
    shutil.rmtree(replaced)
    count = sum(len(files) for _, _, files in os.walk(mountpoint))
    return {"volume": args.volume, "layout": info["layout"], "files": count}


# ---------------------------------------------------------------------------------------------
# drill checks (the playbook creates and removes the throwaway project)
def cmd_drill_check(config, args):
    started = time.time()
    restic = Restic(config)
    checks = []

    def check(name, ok, detail=""):
        checks.append({"check": name, "ok": bool(ok), "detail": detail})

    manifest, problems = verify(config, restic, args.backup_id, force=True)
    check("backup verifies (manifest, snapshots, dump checksum)", not problems,
          "; ".join(p["message"] for p in problems))
    if manifest and not bm.validate_manifest(manifest):
        try:
            prefix = _ident(manifest["database"]["prefix"])
            tables_sql = ("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() "  # noqa: S608
                          f"AND table_name LIKE '{prefix}%'")  # prefix checked by _ident()
            rows = db_query(config, args.db_container, tables_sql, manifest["database"]["name"])
            restored = sorted(r[0] for r in rows)
            want = sorted(manifest["database"]["tables"])
            check("table count equals the manifest", restored == want,
                  f"restored {len(restored)}, manifest {len(want)}")
            key = [t for t in args.key_tables if t in manifest["database"]["tables"]] or want[:20]
            for table in key:
                count = db_query(config, args.db_container, f"SELECT COUNT(*) FROM `{_ident(table)}`",  # noqa: S608
                                 manifest["database"]["name"])[0][0]
                check(f"row count of {table}", int(count) == manifest["database"]["tables"][table],
                      f"restored {count}, manifest {manifest['database']['tables'][table]}")
        except EngineError as exc:
            check("database reachable", False, str(exc))
        try:
            mountpoint = Path(volume_mountpoint(args.volume))
            bad = []
            for entry in manifest["moodledata"]["sample"]:
                path = mountpoint / entry["path"]
                if not path.is_file() or bm.sha256_file(path) != entry["sha256"]:
                    bad.append(entry["path"])
            check("moodledata sample present with recorded hashes", not bad,
                  f"{len(manifest['moodledata']['sample']) - len(bad)}/{len(manifest['moodledata']['sample'])} ok"
                  + (f"; bad: {bad[:5]}" if bad else ""))
        except EngineError as exc:
            check("moodledata volume", False, str(exc))
    if args.web_status is not None:
        check(f"web answers 200 on {args.web_path}", args.web_status == "200", f"HTTP {args.web_status or 'none'}")
    elif args.web_container:
        probe = docker("exec", args.web_container, "php", "-r",
                       '$c = @file_get_contents("http://127.0.0.1' + args.web_path + '"); '
                       'echo isset($http_response_header[0]) ? $http_response_header[0] : "no response";',
                       check=False)
        status = probe.stdout.decode().strip()
        check(f"web answers 200 on {args.web_path}", " 200" in status, status or _tail(probe.stderr))
    failed = [c for c in checks if not c["ok"]]
    finished = time.time()
    report = {"backup_id": manifest["backup_id"] if manifest else args.backup_id, "project": config["project"],
              "success": not failed, "checks": checks, "checks_failed": len(failed),
              "finished": bm.isoformat(dt.datetime.fromtimestamp(finished, dt.UTC)),
              "duration_seconds": round(finished - started + args.extra_seconds, 3)}
    write_atomic(Path(config["state_dir"]) / "drills" / "last.json", json.dumps(report, indent=2) + "\n", 0o600)
    textfile = Path(config["textfile_dir"]) / f"moodle_restore_drill_{config['project']}.prom"
    try:
        write_atomic(textfile, bm.render_drill_textfile(config["project"], success=not failed, finished=int(finished),
                                                        duration=report["duration_seconds"],
                                                        checks_failed=len(failed)))
    except OSError as exc:
        log(f"could not write {textfile}: {exc}")
    return report


# ---------------------------------------------------------------------------------------------
# retention
def _forget(config, restic, dry_run):
    keep = config["retention"]
    result = {}
    for kind, tag in bm.KIND_TAGS.items():
        args = ["forget", "--json", "--host", config["project"], "--group-by", "host", "--tag",
                f"{bm.TAG_PLATFORM},{tag}", "--keep-daily", str(keep["daily"]), "--keep-weekly",
                str(keep["weekly"]), "--keep-monthly", str(keep["monthly"])]
        if dry_run:
            args.append("--dry-run")
        out = restic.run(*args).stdout.decode().strip()
        groups = json.loads(out or "[]") or []
        result[kind] = {"keep": sum(len(g.get("keep") or []) for g in groups),
                        "remove": sum(len(g.get("remove") or []) for g in groups),
                        "reasons": [r for g in groups for r in (g.get("reasons") or [])]}
    if not dry_run:
        log("pruning unreferenced data from the repository")
        restic.run("prune")
    return result


def cmd_forget(config, args):
    restic = Restic(config)
    with run_lock(config["state_dir"]):
        return _forget(config, restic, args.dry_run)


def next_run(now, times, delay=0):
    """The next UTC datetime after ``now`` matching one of the daily ``HH:MM`` times."""
    candidates = []
    for text in times:
        hour, minute = (int(x) for x in text.split(":"))
        when = now.replace(hour=hour, minute=minute, second=0, microsecond=0) + dt.timedelta(seconds=delay)
        if when <= now:
            when += dt.timedelta(days=1)
        candidates.append(when)
    return min(candidates)


def cmd_schedule(config, args):
    """Background scheduler for hosts without systemd (started by the role with start-stop-daemon)."""
    import random

    times = config.get("times") or ["02:15"]
    while True:
        delay = random.randint(0, int(config.get("randomized_delay_seconds", 0)))  # noqa: S311 - not crypto
        when = next_run(dt.datetime.now(dt.UTC), times, delay)
        log(f"next backup at {bm.isoformat(when)}")
        while dt.datetime.now(dt.UTC) < when:
            time.sleep(min(60, max(1, (when - dt.datetime.now(dt.UTC)).total_seconds())))
        try:
            cmd_backup(config, argparse.Namespace(forget=True))
        except (EngineError, bm.ManifestError) as exc:
            log(f"ERROR: scheduled backup failed: {exc}")


def cmd_init(config, args):
    return {"initialised": Restic(config).ensure_repository()}


# ---------------------------------------------------------------------------------------------
DIRECT_ENV = {"db_host": "MOODLE_DB_HOST", "db_port": "MOODLE_DB_PORT", "db_name": "MOODLE_DB_NAME",
              "db_user": "MOODLE_DB_USER", "db_password_file": "MOODLE_DB_PASSWORD_FILE",
              "db_prefix": "MOODLE_DB_PREFIX"}


def _direct_parent():
    """Options of direct mode (no --config): what a Kubernetes Job passes; the database comes from
    MOODLE_DB_HOST/PORT/NAME/USER/PASSWORD_FILE/PREFIX, restic's credentials from its own variables."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("direct mode (no --config: Kubernetes Jobs, the scheduler container)")
    group.add_argument("--platform", choices=["kubernetes", "compose"], help="recorded in the manifest")
    group.add_argument("--project", help="site name: restic host and backup id suffix")
    group.add_argument("--repository", help="restic repository (default: RESTIC_REPOSITORY)")
    group.add_argument("--dataroot", help="moodledata directory (mounted)")
    group.add_argument("--version-php", dest="version_php", help="the Moodle code's version.php")
    group.add_argument("--version-json", dest="version_json",
                       help="version.php as evaluated by the Moodle image's PHP (JSON: version, release, branch)")
    group.add_argument("--image", help="Moodle image reference the site runs (recorded in the manifest)")
    group.add_argument("--state-dir", dest="state_dir", help="lock + restic cache (default: $TMPDIR/moodle-backup)")
    group.add_argument("--textfile-dir", dest="textfile_dir", help="write the Prometheus status file here")
    group.add_argument("--keep-daily", dest="keep_daily", type=int)
    group.add_argument("--keep-weekly", dest="keep_weekly", type=int)
    group.add_argument("--keep-monthly", dest="keep_monthly", type=int)
    group.add_argument("--summary-file", dest="summary_file",
                       help="write a JSON summary (<= 4 KiB) here, e.g. /dev/termination-log")
    return parent


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
    for kind in ("daily", "weekly", "monthly"):
        value = getattr(args, f"keep_{kind}", None)
        if value is not None:
            if value < 0:
                raise EngineError(f"--keep-{kind} must be >= 0, not {value}")
            retention[kind] = value
            args.forget = True
    config["retention"] = retention
    if config.get("access") == "direct":
        missing = [flag for flag, key in (("--project", "project"), ("--repository or RESTIC_REPOSITORY", "repository"),
                                          ("--dataroot", "dataroot"), ("MOODLE_DB_HOST", "db_host"),
                                          ("MOODLE_DB_PASSWORD_FILE", "db_password_file")) if not config.get(key)]
        if missing:
            raise EngineError("direct mode needs " + ", ".join(missing))
        if not re.match(r"^[a-z0-9][a-z0-9_.-]{0,62}$", config["project"]):
            raise EngineError(f"project {config['project']!r} must be lower-case letters, digits, '.', '_' or '-'")
    return config


def write_summary(path, result):
    """The result for whoever started the run (Kubernetes: the termination message, <= 4 KiB)."""
    if isinstance(result, dict) and result.get("format") == bm.FORMAT:
        result = bm.summarize_manifest(result)
    text = json.dumps(result, sort_keys=True, separators=(",", ":"))
    if len(text.encode()) > 4096:
        text = json.dumps({"failed": result.get("failed", False), "msg": str(result.get("msg", ""))[:3000]})
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="moodle-backup", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="JSON config rendered by the moodle.platform.backup role "
                                         "(without it: direct mode from options and MOODLE_DB_* variables)")
    parser.add_argument("--offsite", action="store_true", help="work on the off-site (S3) repository instead")
    direct = _direct_parent()
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("init", parents=[direct], help="create the restic repository if it does not exist")
    p = sub.add_parser("backup", parents=[direct], help="database + moodledata + manifest, then status file")
    p.add_argument("--forget", action="store_true", help="apply retention (forget --prune) afterwards")
    sub.add_parser("list", parents=[direct], help="complete backups in the repository")
    p = sub.add_parser("show", parents=[direct], help="print a manifest")
    p.add_argument("backup_id", nargs="?", default="latest")
    p = sub.add_parser("restore", parents=[direct], help="direct mode: verify, maintenance on, database + moodledata")
    p.add_argument("--backup-id", dest="backup_id", default="latest")
    p.add_argument("--force", action="store_true", help="accept a different Moodle major version")
    p.add_argument("--maintenance-off", dest="maintenance_off", action="store_true",
                   help="leave maintenance mode when done (else the site stays in maintenance for checks)")
    p = sub.add_parser("verify", parents=[direct], help="refuse-or-accept checks of a backup (read-only)")
    p.add_argument("backup_id", nargs="?", default="latest")
    p.add_argument("--target-container", help="web container whose version.php the backup must match")
    p.add_argument("--target-version-php", help="a version.php file the backup must match")
    p.add_argument("--target-image", help="a Moodle image whose version.php the backup must match")
    p.add_argument("--force", action="store_true", help="accept a different Moodle major version")
    p.add_argument("--read-data", action="store_true", help="also run restic check --read-data")
    p = sub.add_parser("restore-db", help="replace the database with the backup's dump")
    p.add_argument("backup_id")
    p.add_argument("--db-container")
    p = sub.add_parser("restore-files", help="replace moodledata with the backup's snapshot")
    p.add_argument("backup_id")
    p.add_argument("--volume")
    p = sub.add_parser("drill-check", help="checks of a restored throwaway copy; JSON report + textfile metric")
    p.add_argument("backup_id")
    p.add_argument("--db-container", required=True)
    p.add_argument("--volume", required=True)
    p.add_argument("--web-container")
    p.add_argument("--web-path", default="/login/index.php")
    p.add_argument("--web-status", help="HTTP status the caller measured (instead of probing --web-container)")
    p.add_argument("--key-tables", nargs="*", default=["mdl_config", "mdl_user", "mdl_course", "mdl_files",
                                                       "mdl_context", "mdl_course_modules"])
    p.add_argument("--extra-seconds", type=float, default=0.0, help="time already spent restoring (for the metric)")
    p = sub.add_parser("inspect-migration", help="what a migration source holds (layout, config.php, dump)")
    p.add_argument("--source", required=True, help="moodledata directory, Bitnami volume or .tar(.gz) archive")
    p.add_argument("--dump", required=True)
    p.add_argument("--config-php")
    p = sub.add_parser("import-db", help="load an old SQL dump (.sql or .sql.gz) into a database container")
    p.add_argument("--dump", required=True)
    p.add_argument("--db-container", required=True)
    p.add_argument("--database", default="moodle")
    p = sub.add_parser("import-files", help="copy old moodledata (dir, Bitnami volume, archive) into a volume")
    p.add_argument("--source", required=True)
    p.add_argument("--volume", required=True)
    p.add_argument("--uid", type=int, default=33)
    p = sub.add_parser("image-version", help="version.php of a Moodle image (JSON)")
    p.add_argument("image")
    p = sub.add_parser("schedule", parents=[direct],
                       help="run forever: a backup (with retention) at each daily time of the config")
    p = sub.add_parser("forget", parents=[direct], help="apply retention (keep daily/weekly/monthly) and prune")
    p.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    handlers = {"init": cmd_init, "backup": cmd_backup, "list": cmd_list, "show": cmd_show, "verify": cmd_verify,
                "restore": cmd_restore, "restore-db": cmd_restore_db, "restore-files": cmd_restore_files,
                "drill-check": cmd_drill_check,
                "forget": cmd_forget, "schedule": cmd_schedule,
                "image-version": cmd_image_version, "inspect-migration": cmd_inspect_migration,
                "import-db": cmd_import_db, "import-files": cmd_import_files}
    summary_file = getattr(args, "summary_file", None)
    try:
        if args.config:
            config = load_config(args.config)
            if config.get("access") == "direct" or any(getattr(args, k, None) for k in ("keep_daily", "keep_weekly",
                                                                                          "keep_monthly")):
                config = direct_config(args, base=config)
        else:
            config = direct_config(args)
        if args.offsite:
            if not config.get("offsite_repository"):
                raise EngineError("no off-site repository is configured (backup_s3_enabled)")
            config["repository"], config["env_file"] = config["offsite_repository"], config.get("offsite_env_file", "")
            config["offsite_repository"] = ""
        result = handlers[args.command](config, args)
    except (EngineError, bm.ManifestError, OSError) as exc:
        if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError | PermissionError):
            exc = EngineError(f"{exc} (is the state directory, TMPDIR or the repository writable?)")
        print(json.dumps({"failed": True, "msg": str(exc)}))
        log(f"ERROR: {exc}")
        if summary_file:
            with contextlib.suppress(OSError):
                write_summary(summary_file, {"failed": True, "msg": str(exc)})
        return 1
    if summary_file:
        write_summary(summary_file, result)
    print(json.dumps(result, indent=2, sort_keys=True))
    if isinstance(result, dict) and (result.get("ok") is False or result.get("success") is False):
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
