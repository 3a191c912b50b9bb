"""A KUBELET STAND-IN for tests: runs the containers of a Pod spec (as moodle-operator renders it)
with the local Docker engine, so the backup engine image is exercised exactly as a Job would start it.

It is not Kubernetes. It honours the parts of a Pod spec the operator's backup/restore Jobs use:
init containers then containers, in order; ``command``/``args``; ``env`` and ``envFrom`` Secrets
(from a dict given by the test); ``persistentVolumeClaim`` (mapped to Docker volumes or host
directories), ``secret`` volumes with ``items`` and ``defaultMode`` (files copied from the host, group
= ``fsGroup``), ``emptyDir`` (a host temp dir owned by ``fsGroup``); ``runAsUser``/``runAsGroup``,
``readOnlyRootFilesystem``, ``capabilities.drop``, ``allowPrivilegeEscalation``; the termination
message file (``/dev/termination-log``). Not honoured: resources, probes, service accounts, DNS
(the container joins a Docker network where the database answers under the name the spec uses).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path


class PodResult:
    def __init__(self, exit_code, message, logs):
        self.exit_code = exit_code
        self.message = message
        self.logs = logs

    def as_pod(self, container):
        """The Pod object the operator reads (status.containerStatuses[].state.terminated)."""
        return {"status": {"containerStatuses": [{"name": container, "state": {"terminated": {
            "exitCode": self.exit_code, "message": self.message, "finishedAt": "2026-11-24T00:00:00Z"}}}]}}


def run_pod(pod_template, *, network, pvcs, secrets, env_from, extra_mounts=(), timeout=1800):
    """Run ``pod_template`` (``{"metadata", "spec"}``); returns the PodResult of the last container.

    ``pvcs``: claim name -> Docker volume name or host directory. ``secrets``: secret name ->
    {key: host file}. ``env_from``: secret name -> {VAR: value}. ``extra_mounts``: (host, path) pairs
    standing in for what a cluster would provide otherwise (e.g. a local restic repository instead of
    an S3 bucket)."""
    spec = pod_template["spec"]
    pod_sc = spec.get("securityContext") or {}
    uid, gid = pod_sc.get("runAsUser", 0), pod_sc.get("runAsGroup", 0)
    fs_group = pod_sc.get("fsGroup", gid)
    scratch = Path(tempfile.mkdtemp(prefix="kubelet-standin-"))
    try:
        volumes = {}
        for volume in spec.get("volumes") or []:
            name = volume["name"]
            if "persistentVolumeClaim" in volume:
                claim = volume["persistentVolumeClaim"]
                volumes[name] = (pvcs[claim["claimName"]], bool(claim.get("readOnly")))
            elif "secret" in volume:
                target = scratch / f"secret-{name}"
                target.mkdir()
                source = secrets[volume["secret"]["secretName"]]
                items = volume["secret"].get("items") or [{"key": k, "path": k} for k in source]
                for item in items:
                    shutil.copyfile(source[item["key"]], target / item["path"])
                    os.chown(target / item["path"], 0, fs_group)
                    os.chmod(target / item["path"], volume["secret"].get("defaultMode", 0o644))
                os.chmod(target, 0o755)  # noqa: S103 - a Secret volume directory is world-traversable in Kubernetes too
                volumes[name] = (str(target), True)
            elif "emptyDir" in volume:
                target = scratch / f"empty-{name}"
                target.mkdir()
                os.chown(target, uid, fs_group)
                os.chmod(target, 0o2775)  # noqa: S103 - emptyDir with fsGroup, as the kubelet makes it
                volumes[name] = (str(target), False)
            else:
                raise ValueError(f"kubelet stand-in: volume type of {name} not supported")
        result = None
        for container in [*(spec.get("initContainers") or []), *spec["containers"]]:
            result = _run_container(container, uid, gid, volumes, network, env_from, extra_mounts, scratch, timeout)
            if result.exit_code != 0:
                return result
        return result
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _run_container(container, uid, gid, volumes, network, env_from, extra_mounts, scratch, timeout):
    sc = container.get("securityContext") or {}
    argv = ["docker", "run", "--name", f"kubelet-standin-{container['name']}-{os.getpid()}", "--network", network,
            "--user", f"{sc.get('runAsUser', uid)}:{sc.get('runAsGroup', gid)}"]
    if sc.get("readOnlyRootFilesystem"):
        argv.append("--read-only")
    if "ALL" in ((sc.get("capabilities") or {}).get("drop") or []):
        argv += ["--cap-drop", "ALL"]
    if sc.get("allowPrivilegeEscalation") is False:
        argv += ["--security-opt", "no-new-privileges"]
    env_file = scratch / f"env-{container['name']}"
    lines = []
    for source in container.get("envFrom") or []:
        lines += [f"{k}={v}" for k, v in env_from[source["secretRef"]["name"]].items()]
    for item in container.get("env") or []:
        lines.append(f"{item['name']}={item['value']}")
    env_file.write_text("\n".join(lines) + "\n")
    argv += ["--env-file", str(env_file)]
    for mount in container.get("volumeMounts") or []:
        source, read_only = volumes[mount["name"]]
        read_only = read_only or bool(mount.get("readOnly"))
        argv += ["-v", f"{source}:{mount['mountPath']}{':ro' if read_only else ''}"]
    for host, path in extra_mounts:
        argv += ["-v", f"{host}:{path}"]
    message_file = scratch / f"termination-{container['name']}"
    message_file.write_text("")
    os.chown(message_file, sc.get("runAsUser", uid), gid)
    argv += ["-v", f"{message_file}:{container.get('terminationMessagePath', '/dev/termination-log')}"]
    command = container.get("command") or []
    argv += ["--entrypoint", command[0]] if command else []
    argv.append(container["image"])
    argv += [*command[1:], *(container.get("args") or [])]
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
    finally:
        subprocess.run(["docker", "rm", "-f", argv[3]], capture_output=True, check=False)
    logs = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
    return PodResult(proc.returncode, message_file.read_text()[:4096], logs)
