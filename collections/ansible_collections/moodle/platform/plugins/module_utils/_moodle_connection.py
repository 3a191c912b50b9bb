# Copyright (c) moodle.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How the Moodle modules reach a running Moodle: run a command inside its application container.

Only ``docker`` (exec into a Compose container through the Docker SDK) exists today; a
``kubernetes`` connection (exec into a pod with the kubernetes client's ``stream``) only has to
implement :meth:`MoodleConnection.run`.
"""

from __future__ import annotations

import copy

from ansible_collections.moodle.platform.plugins.module_utils._backup.moodle_version import (
    VERSION_PHP_CODE,
    VersionError,
    parse_version_json,
)

try:
    import docker
    from docker.errors import DockerException, NotFound

    HAS_DOCKER = True
except ImportError:  # pragma: no cover - reported through missing_required_lib
    HAS_DOCKER = False

# Shared argument spec, copied (not retyped) by every module that talks to Moodle.
CONNECTION_ARGUMENT_SPEC = dict(
    connection=dict(type="str", default="docker", choices=["docker"]),
    container=dict(type="str", default="moodle-web-1"),
    docker_host=dict(type="str", default="unix:///var/run/docker.sock"),
    user=dict(type="str", default="www-data"),
    moodle_dir=dict(type="path", default="/var/www/moodle"),
    php=dict(type="str", default="php"),
)


class MoodleConnectionError(Exception):
    """The container cannot be reached or a command could not be started."""


class CommandResult:
    def __init__(self, rc, stdout, stderr):
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr


class MoodleConnection:
    """Runs commands in the Moodle application container."""

    def __init__(self, moodle_dir="/var/www/moodle", php="php"):
        self.moodle_dir = moodle_dir.rstrip("/")
        self.php = php

    def run(self, argv, environment=None):  # pragma: no cover - abstract
        raise NotImplementedError

    def cli(self, script, *args, environment=None):
        """Run admin/cli/<script> with php."""
        return self.run([self.php, f"{self.moodle_dir}/admin/cli/{script}", *list(args)], environment)

    def php_code(self, code, environment=None):
        env = {"MOODLE_PLATFORM_DIR": self.moodle_dir}
        env.update(environment or {})
        return self.run([self.php, "-r", code], env)

    def code_version(self):
        """version/release/branch/major from version.php (the code, not the database), evaluated by the
        container's PHP with the collection's one version.php reader."""
        result = self.run([self.php, "-r", VERSION_PHP_CODE, f"{self.moodle_dir}/version.php"])
        if result.rc != 0:
            raise MoodleConnectionError(f"cannot read {self.moodle_dir}/version.php: {(result.stderr or result.stdout).strip()}")
        try:
            return parse_version_json(result.stdout)
        except VersionError as exc:
            raise MoodleConnectionError(f"unexpected output from {self.moodle_dir}/version.php: {exc}") from None


class DockerExecConnection(MoodleConnection):
    """docker exec into a (Compose) container."""

    def __init__(self, container, user="www-data", docker_host="unix:///var/run/docker.sock", **kwargs):
        super().__init__(**kwargs)
        self.container_name = container
        self.user = user
        self.docker_host = docker_host
        self._container = None

    def _get_container(self):
        if self._container is None:
            try:
                client = docker.DockerClient(base_url=self.docker_host)
                self._container = client.containers.get(self.container_name)
            except NotFound:
                raise MoodleConnectionError(f"container {self.container_name} does not exist") from None
            except DockerException as exc:
                raise MoodleConnectionError(f"cannot reach the Docker engine at {self.docker_host}: {exc}") from exc
            if self._container.status != "running":
                raise MoodleConnectionError(f"container {self.container_name} is {self._container.status}, not running")
        return self._container

    def run(self, argv, environment=None):
        container = self._get_container()
        try:
            rc, output = container.exec_run(argv, user=self.user, environment=environment or {}, demux=True)
        except DockerException as exc:
            raise MoodleConnectionError(f"docker exec in {self.container_name} failed: {exc}") from exc
        stdout, stderr = output if output else (b"", b"")
        return CommandResult(rc, (stdout or b"").decode("utf-8", "replace"), (stderr or b"").decode("utf-8", "replace"))


def connection_argument_spec(**extra):
    spec = copy.deepcopy(CONNECTION_ARGUMENT_SPEC)
    spec.update(extra)
    return spec


def connection_from_params(params):
    if params["connection"] == "docker":
        return DockerExecConnection(
            container=params["container"],
            user=params["user"],
            docker_host=params["docker_host"],
            moodle_dir=params["moodle_dir"],
            php=params["php"],
        )
    raise MoodleConnectionError("unsupported connection {}".format(params["connection"]))  # pragma: no cover
