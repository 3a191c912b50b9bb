# Copyright: moodle.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where the site is: a Compose project on this host (docker CLI), or "direct" (the engine runs next to
the site: a Kubernetes Job, or the scheduler container on the Compose network) and reaches the
database over TCP and moodledata at a mounted path.

Why the docker CLI and not the Docker SDK: dumps and restores are multi-GB byte streams, which
``docker exec -i`` pipes with back-pressure; the Debian host needs no extra Python packages.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from ansible_collections.moodle.platform.plugins.module_utils._backup.common import EngineError, sql_ident, tail
from ansible_collections.moodle.platform.plugins.module_utils._backup.moodle_version import (
    VERSION_PHP_CODE,
    VersionError,
    parse_version_json,
    parse_version_php,
    version_info,
)

DUMP_OPTIONS = ("--single-transaction", "--quick", "--routines", "--triggers", "--events", "--hex-blob",
                "--default-character-set=utf8mb4", "--skip-dump-date")
# pg_dump reads one snapshot of the database (one repeatable-read transaction): consistent by itself.
# Plain SQL with COPY blocks, no owners/grants (the restore creates everything as the site's user).
PG_DUMP_OPTIONS = ("--format=plain", "--no-owner", "--no-privileges", "--encoding=UTF8")
# psql for one query (tab-separated rows, no headers) and for loading a dump; both stop at the first error.
PSQL_QUERY_OPTIONS = ("-X", "-q", "--no-align", "--tuples-only", "--field-separator=\t", "-v", "ON_ERROR_STOP=1")
PSQL_LOAD_OPTIONS = ("-X", "-q", "-v", "ON_ERROR_STOP=1")


def db_engine(config):
    """The engine of the site's database as a manifest names it: ``mariadb`` or ``postgresql``
    (config ``db_type``: Moodle's dbtype, ``mariadb`` or ``pgsql``)."""
    db_type = config.get("db_type") or "mariadb"
    if db_type not in ("mariadb", "pgsql"):
        raise EngineError(f"db_type {db_type!r} is not one the engine knows (mariadb or pgsql)")
    return "postgresql" if db_type == "pgsql" else "mariadb"


def mariadb_recreate_sql(name):
    return (f"DROP DATABASE IF EXISTS `{sql_ident(name)}`; CREATE DATABASE `{sql_ident(name)}` "
            "DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")


def quote_ident(config, name):
    """A checked table/database name quoted for the site's database."""
    name = sql_ident(name)
    return f'"{name}"' if db_engine(config) == "postgresql" else f"`{name}`"


# ---------------------------------------------------------------------------------------------
# docker
def docker(*args, check=True, stdin=None):
    proc = subprocess.run(["docker", *args], input=stdin, capture_output=True, check=False)
    if check and proc.returncode != 0:
        raise EngineError(f"docker {args[0]} failed (exit {proc.returncode}): {tail(proc.stderr)}")
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


def pg_exec_argv(container, *command, interactive=False):
    # PostgreSQL: the postgres superuser over the container's Unix socket (peer authentication), so no
    # password is handled at all.
    return ["docker", "exec", *(["-i"] if interactive else []), "--user", "postgres", container, *command]


def pg_query_argv(container, sql, database=None):
    return pg_exec_argv(container, "psql", *PSQL_QUERY_OPTIONS, f"--dbname={database or 'postgres'}", "-c", sql)


def server_version_sql(engine):
    return "SHOW server_version" if engine == "postgresql" else "SELECT VERSION()"


def pg_major(version):
    """The major version of a PostgreSQL ``server_version_num`` (170006 -> 17) or of a client's
    ``--version`` line (``pg_dump (PostgreSQL) 15.18 (Debian ...)`` -> 15)."""
    match = re.search(r"\(PostgreSQL\) (\d+)", version)
    if match:
        return int(match.group(1))
    if re.fullmatch(r"\d{5,6}", version.strip()):
        return int(version.strip()) // 10000
    raise EngineError(f"cannot read a PostgreSQL major version from {version.strip()!r}")


def pg_server_major(site):
    """The major version of the PostgreSQL server a site (ComposeSite or DirectSite) runs."""
    return pg_major(site.query("SHOW server_version_num")[0][0])


def db_query(config, container, sql, database=None):
    if db_engine(config) == "postgresql":
        argv = pg_query_argv(container, sql, database)
    else:
        argv = db_exec_argv(config, container, "mariadb", f"--user={config['db_admin_user']}", "--batch",
                            "--skip-column-names", *([database] if database else []), "-e", sql)
    proc = subprocess.run(argv, capture_output=True, check=False)
    if proc.returncode != 0:
        raise EngineError(f"query in the database container failed: {tail(proc.stderr)}")
    return [line.split("\t") for line in proc.stdout.decode().splitlines()]


# ---------------------------------------------------------------------------------------------
# which Moodle: version.php evaluated by the site's PHP (moodle_version.VERSION_PHP_CODE)
def evaluated_version(text, where):
    try:
        return parse_version_json(text)
    except VersionError as exc:
        raise EngineError(f"cannot evaluate version.php of {where}: {exc}") from exc


def container_version(config, container):
    proc = docker("exec", container, "php", "-r", VERSION_PHP_CODE, f"{config['moodle_dirroot']}/version.php",
                  check=False)
    if proc.returncode != 0:
        raise EngineError(f"cannot read version.php in container {container[:12]}: {tail(proc.stderr or proc.stdout)}")
    return evaluated_version(proc.stdout.decode(errors="replace"), f"container {container[:12]}")


def image_version(config, image):
    """version.php of a Moodle image, read in a throwaway container without network."""
    proc = docker("run", "--rm", "--network", "none", "--entrypoint", "php", image, "-r", VERSION_PHP_CODE,
                  f"{config['moodle_dirroot']}/version.php", check=False)
    if proc.returncode != 0:
        raise EngineError(f"cannot read version.php from image {image}: {tail(proc.stderr or proc.stdout)}")
    return evaluated_version(proc.stdout.decode(errors="replace"), f"image {image}")


def web_file(container, path):
    proc = docker("exec", container, "cat", path, check=False)
    if proc.returncode != 0:
        raise EngineError(f"cannot read {path} in the web container: {tail(proc.stderr)}")
    return proc.stdout.decode(errors="replace")


# ---------------------------------------------------------------------------------------------
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

    @db.setter
    def db(self, container):
        self._db = container

    def dataroot(self, volume=None):
        return volume_mountpoint(volume or self.config["moodledata_volume"])

    @property
    def engine(self):
        return db_engine(self.config)

    def query(self, sql, database=None):
        return db_query(self.config, self.db, sql, database)

    def server_version(self):
        return self.query(server_version_sql(self.engine))[0][0]

    def dump_argv(self):
        if self.engine == "postgresql":
            return pg_exec_argv(self.db, "pg_dump", *PG_DUMP_OPTIONS, self.config["db_name"])
        return db_exec_argv(self.config, self.db, "mariadb-dump", f"--user={self.config['db_admin_user']}",
                            *DUMP_OPTIONS, self.config["db_name"])

    def recreate_database(self, name):
        """An empty database ``name`` for the dump (the old one, if any, dropped)."""
        if self.engine == "postgresql":
            owner = quote_ident(self.config, self.config.get("db_user") or "moodle")
            # two statements: DROP/CREATE DATABASE cannot run inside one (implicit) transaction
            self.query(f"DROP DATABASE IF EXISTS {quote_ident(self.config, name)} WITH (FORCE)")
            self.query(f"CREATE DATABASE {quote_ident(self.config, name)} OWNER {owner} ENCODING 'UTF8' "
                       "TEMPLATE template0")
            return
        self.query(mariadb_recreate_sql(name))

    def load_argv(self, name):
        if self.engine == "postgresql":
            # Loaded by the superuser acting as the site's user, so every object belongs to that user.
            owner = quote_ident(self.config, self.config.get("db_user") or "moodle")
            return pg_exec_argv(self.db, "psql", *PSQL_LOAD_OPTIONS, f"--dbname={sql_ident(name)}",
                                "-c", f"SET ROLE {owner}", "-f", "-", interactive=True)
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
    """The engine beside the site: MariaDB or PostgreSQL over TCP as the site's own database user,
    moodledata mounted at ``dataroot``.

    The password comes from a file and reaches the clients through a 0600 file: MariaDB's option file
    (``--defaults-extra-file``), libpq's password file (``passfile`` in the connection string); never on
    a command line or in an environment.
    """

    def __init__(self, config):
        self.config = config
        self._secret_file = None
        for key in ("db_host", "dataroot"):
            if not config.get(key):
                raise EngineError(f"direct mode needs {key} (MOODLE_DB_HOST / --dataroot)")
        self.engine = db_engine(config)
        password_file = config.get("db_password_file") or ""
        if not Path(password_file).is_file():
            raise EngineError(f"database password file {password_file!r} does not exist (MOODLE_DB_PASSWORD_FILE)")

    def secret_file(self):
        if self._secret_file is None:
            password = Path(self.config["db_password_file"]).read_text(encoding="utf-8").strip()
            if self.engine == "postgresql":  # libpq password file: host:port:db:user:password, \ and : escaped
                text = "*:*:*:*:{}\n".format(password.replace("\\", "\\\\").replace(":", "\\:"))
            else:
                text = "[client]\npassword=\"{}\"\n".format(password.replace("\\", "\\\\").replace('"', '\\"'))
            fd, path = tempfile.mkstemp(prefix="moodle-backup-db.", suffix=".pass")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            self._secret_file = path
            atexit.register(self.close)
        return self._secret_file

    def close(self):
        if self._secret_file:
            with contextlib.suppress(OSError):
                os.unlink(self._secret_file)
            self._secret_file = None

    @property
    def port(self):
        return int(self.config.get("db_port") or (5432 if self.engine == "postgresql" else 3306))

    def _client(self, program, database=None):
        """argv of a client of the site's database (PostgreSQL: connected to ``database``)."""
        if self.engine == "postgresql":
            def value(text):
                return "'{}'".format(str(text).replace("\\", "\\\\").replace("'", "\\'"))
            conninfo = {"host": self.config["db_host"], "port": self.port, "user": self.config["db_user"],
                        "dbname": database or self.config["db_name"], "passfile": self.secret_file(),
                        "connect_timeout": 15, "application_name": "moodle-backup"}
            return [program, "--dbname=" + " ".join(f"{key}={value(text)}" for key, text in conninfo.items())]
        return [program, f"--defaults-extra-file={self.secret_file()}", f"--host={self.config['db_host']}",
                f"--port={self.port}", f"--user={self.config['db_user']}"]

    # same signature as ComposeSite.dataroot(); the mounted directory is the only one
    def dataroot(self, volume=None):  # pylint: disable=unused-argument
        path = Path(self.config["dataroot"])
        if not path.is_dir():
            raise EngineError(f"moodledata directory {path} does not exist (is the volume mounted?)")
        return str(path)

    def query(self, sql, database=None):
        if self.engine == "postgresql":
            argv = [*self._client("psql", database), *PSQL_QUERY_OPTIONS, "-c", sql]
        else:
            argv = [*self._client("mariadb"), "--batch", "--skip-column-names", *([database] if database else []),
                    "-e", sql]
        proc = subprocess.run(argv, capture_output=True, check=False)
        if proc.returncode != 0:
            raise EngineError(f"query on {self.config['db_host']} failed: {tail(proc.stderr)}")
        return [line.split("\t") for line in proc.stdout.decode().splitlines()]

    def server_version(self):
        return self.query(server_version_sql(self.engine))[0][0]

    def check_pg_client(self, program):
        """Refuse a PostgreSQL client older than the server (pg_dump cannot dump a newer server)."""
        server = pg_major(self.query("SHOW server_version_num")[0][0])
        proc = subprocess.run([program, "--version"], capture_output=True, check=False)
        if proc.returncode != 0:
            raise EngineError(f"{program} does not run here: {tail(proc.stderr)}")
        client = pg_major(proc.stdout.decode(errors="replace"))
        if client < server:
            raise EngineError(f"{program} is PostgreSQL {client} but the server {self.config['db_host']} runs "
                              f"PostgreSQL {server}: {program} must be at least the server's major version (use a "
                              f"backup image whose Debian suite ships PostgreSQL >= {server}); nothing was written")

    def dump_argv(self):
        if self.engine == "postgresql":
            self.check_pg_client("pg_dump")
            return [*self._client("pg_dump"), *PG_DUMP_OPTIONS]
        return [*self._client("mariadb-dump"), *DUMP_OPTIONS, self.config["db_name"]]

    def recreate_database(self, name):
        """An empty database ``name`` for the dump.  PostgreSQL: the site's user owns the database but
        may not create databases, so its ``public`` schema is replaced instead (what the dump loads into),
        as initdb makes it: owned by pg_database_owner, usable by everyone, the standard comment - so a
        restored database dumps like the original."""
        if self.engine == "postgresql":
            try:
                self.query("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public; "
                           "ALTER SCHEMA public OWNER TO pg_database_owner; GRANT USAGE ON SCHEMA public TO PUBLIC; "
                           "COMMENT ON SCHEMA public IS 'standard public schema'", name)
            except EngineError as exc:
                raise EngineError(f"cannot empty database {name} as {self.config['db_user']} (the site's user must "
                                  f"own the database and its public schema): {exc}") from exc
            return
        self.query(mariadb_recreate_sql(name))

    def load_argv(self, name):
        if self.engine == "postgresql":
            return [*self._client("psql", name), *PSQL_LOAD_OPTIONS, "-f", "-"]
        return [*self._client("mariadb"), "--default-character-set=utf8mb4", name]

    def moodle_version(self):
        """version.php when the caller lends it (Kubernetes: an init container copies it from the
        Moodle image), else what the database records (``version``/``release`` in the config table,
        i.e. the code version the schema was last upgraded to)."""
        version_json = self.config.get("version_json")
        if version_json:
            try:
                return evaluated_version(Path(version_json).read_text(encoding="utf-8"), version_json)
            except OSError as exc:
                raise EngineError(f"cannot read {version_json}: {exc}") from exc
        version_php = self.config.get("version_php")
        if version_php:
            if shutil.which("php"):
                proc = subprocess.run(["php", "-r", VERSION_PHP_CODE, version_php], capture_output=True, check=False)
                if proc.returncode == 0:
                    return evaluated_version(proc.stdout.decode(errors="replace"), version_php)
            try:
                info = parse_version_php(Path(version_php).read_text(encoding="utf-8"))
            except OSError as exc:
                raise EngineError(f"cannot read {version_php}: {exc}") from exc
            except VersionError as exc:
                raise EngineError(f"cannot read {version_php}: {exc}") from exc
            info["source"] = "version.php"
            return info
        prefix = sql_ident(self.config["db_prefix"])
        table = quote_ident(self.config, f"{prefix}config")
        rows = dict(self.query(f"SELECT name, value FROM {table} WHERE name IN ('version', 'release')",  # noqa: S608
                               self.config["db_name"]))
        if "version" not in rows:
            raise EngineError(f"{prefix}config has no 'version' row: is Moodle installed in {self.config['db_name']}?")
        try:
            info = version_info(rows["version"], rows.get("release", ""))
        except VersionError as exc:
            raise EngineError(f"the database records no usable Moodle version: {exc}") from exc
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
            # python3-yaml is in the image; only the scheduler container's path needs it
            import yaml  # pylint: disable=import-outside-toplevel

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
