"""Fixtures for the real-pod suite: ONE single-node cluster (scripts/k8s/start-cluster.sh: etcd,
kube-apiserver, controller-manager, scheduler, kubelet, kube-proxy, its own containerd) for every
scenario, stopped and cleaned up at the end. Images come from the local Docker engine
(scripts/k8s/cluster-image.sh import), never from a registry. Prints the cluster's start time and
each scenario's time."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from k8s.harness import Cluster
from k8s.role_images import build_role_images

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts" / "k8s"
STATE = Path(os.environ.get("K8S_E2E_STATE", "/var/lib/moodle-k8s/cluster"))
# Own role build caches (not the other suites'): the image tags are content hashes, so a hit is exact.
IMAGE_CACHE = Path("/var/cache/moodle-platform/k8s-e2e")
TIMES: dict[str, float] = {}  # per scenario: set-up (its fixtures: image builds, helm install) + call + teardown


NOTES: list[str] = []  # stage times inside fixtures (image builds, helm install, ...), printed at the end


def note(line: str) -> None:
    NOTES.append(line)


def pytest_runtest_logreport(report):
    TIMES[report.nodeid] = TIMES.get(report.nodeid, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    tr = terminalreporter
    for line in (STATE / "timings").read_text().splitlines() if (STATE / "timings").exists() else []:
        tr.write_line(f"[k8s-e2e] {line}")
    for line in NOTES:
        tr.write_line(f"[k8s-e2e] {line}")
    for nodeid, seconds in TIMES.items():
        tr.write_line(f"[k8s-e2e] scenario {nodeid}: {seconds:.1f}s")


class RealCluster(Cluster):
    """The admin client of the real cluster, plus image import and the node's address."""

    def __init__(self, state: Path):
        super().__init__(str(state / "admin.kubeconfig"), str(state))
        self.node_ip = (state / "node-ip").read_text().strip()

    def import_images(self, *refs: str) -> None:
        subprocess.run(["bash", str(SCRIPTS / "cluster-image.sh"), "import", *refs], check=True, timeout=600)

    def pod_log(self, name: str, namespace: str, container: str | None = None) -> str:
        kwargs = {"container": container} if container else {}
        return self.core.read_namespaced_pod_log(name, namespace, **kwargs)


@pytest.fixture(scope="session")
def cluster():
    if os.geteuid() != 0:
        pytest.fail("the single-node cluster runs as root (kubelet, containerd, CNI, iptables)")
    if os.environ.get("K8S_E2E_REUSE") == "1":  # a cluster already up in STATE (make k8s-cluster-up): debugging
        yield RealCluster(STATE)
        return
    started = time.monotonic()
    proc = subprocess.run(["bash", str(SCRIPTS / "start-cluster.sh"), str(STATE)], timeout=600,
                          env={**os.environ, "PYTHON": sys.executable})
    if proc.returncode != 0:
        pytest.fail(f"start-cluster.sh failed (exit {proc.returncode}); logs in {STATE}")
    (STATE / "timings").write_text(f"cluster start (processes up to a Ready node): {time.monotonic() - started:.1f}s\n")
    try:
        yield RealCluster(STATE)
    finally:
        stopped = time.monotonic()
        subprocess.run(["bash", str(SCRIPTS / "stop-cluster.sh"), str(STATE)], timeout=300, check=False)
        with (STATE / "timings").open("a") as f:
            f.write(f"cluster stop and clean-up: {time.monotonic() - stopped:.1f}s\n")


@pytest.fixture(scope="session")
def images(cluster) -> dict:
    """The Moodle image (FROM the stand-in) and service_images' MariaDB and Redis, built by the roles
    and imported into the cluster's containerd; shared by every scenario."""
    started = time.monotonic()
    refs = build_role_images(IMAGE_CACHE, services=True)
    built = time.monotonic()
    cluster.import_images(*refs.values())
    note(f"images built/checked in {built - started:.1f}s, imported in {time.monotonic() - built:.1f}s")
    return refs


def build_image(context: Path, name: str) -> str:
    """docker build CONTEXT as NAME:<content hash> unless that tag exists (built once, then cached)."""
    digest = hashlib.sha256()
    for path in sorted(context.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(context).as_posix().encode() + b"\0" + path.read_bytes())
    ref = f"{name}:{digest.hexdigest()[:16]}"
    if subprocess.run(["docker", "image", "inspect", ref], capture_output=True).returncode != 0:
        subprocess.run(["docker", "build", "-q", "-t", ref, "--label", "org.moodle-platform.test=k8s-e2e", str(context)],
                       check=True, capture_output=True, timeout=600)
    return ref
