"""The packaged operator image (moodle-platform/moodle-operator), run as a container with the host's
network against the harness API server, as its ServiceAccount: it renders the chart it carries,
applies the objects, reports Ready, and serves metrics and liveness. Run by `make k8s-image-test`
after `make k8s-operator-image` (separately from tests/k8s, so only one operator acts at a time)."""

from __future__ import annotations

import base64
import socket
import time
import urllib.request
from pathlib import Path

import docker
import pytest
import yaml

from ..harness import CHARTS, wait_for

API = "platform.moodle.dev/v1alpha1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _image_tag() -> str:
    chart = yaml.safe_load((CHARTS / "moodle-operator" / "Chart.yaml").read_text())
    return f"moodle-platform/moodle-operator:{chart['appVersion']}"


@pytest.fixture(scope="module")
def operator_container(cluster, operator_kubeconfig, tmp_path_factory):
    client = docker.from_env()
    try:
        client.images.get(_image_tag())
    except docker.errors.ImageNotFound:
        pytest.fail(f"{_image_tag()} is missing: run `make k8s-operator-image` first")
    # One self-contained kubeconfig (CA inlined) the container's uid can read.
    cfg = yaml.safe_load(Path(operator_kubeconfig).read_text())
    cluster_cfg = cfg["clusters"][0]["cluster"]
    cluster_cfg["certificate-authority-data"] = base64.b64encode(
        Path(cluster_cfg.pop("certificate-authority")).read_bytes()).decode()
    mount = tmp_path_factory.mktemp("image-kubeconfig")
    mount.chmod(0o755)
    (mount / "config").write_text(yaml.safe_dump(cfg))
    (mount / "config").chmod(0o644)
    metrics, health = _free_port(), _free_port()
    container = client.containers.run(
        _image_tag(), detach=True, network_mode="host", name=f"moodle-operator-image-test-{metrics}",
        volumes={str(mount): {"bind": "/kube", "mode": "ro"}},
        environment={"KUBECONFIG": "/kube/config", "MOODLE_OPERATOR_METRICS_PORT": str(metrics),
                     "MOODLE_OPERATOR_INTERVAL": "1", "MOODLE_OPERATOR_PEERING": "moodle-operator-test"},
        command=["run", "--all-namespaces", f"--liveness=http://127.0.0.1:{health}/healthz",
                 "-m", "moodle_operator.handlers"])
    try:
        yield {"metrics": metrics, "health": health, "container": container}
    finally:
        logs = container.logs().decode(errors="replace")
        container.remove(force=True)
        print(logs[-3000:])
        assert "Forbidden" not in logs, "the operator image hit RBAC denials"


def test_operator_image_reconciles_a_site(cluster, operator_container):
    ns = cluster.namespace("image-e2e")
    cluster.apply({"apiVersion": API, "kind": "MoodleSite", "metadata": {"name": "boxed"},
                   "spec": {"image": {"tag": "4.5.6"}, "wwwroot": "https://boxed.example.org",
                            "secretRef": {"name": "boxed-creds"}}}, namespace=ns)
    web = wait_for(lambda: cluster.get("apps/v1", "Deployment", "boxed-web", ns), timeout=60, what="web Deployment")
    assert any(m["manager"] == "moodle-operator" for m in web["metadata"]["managedFields"])
    cluster.mark_deployment_available("boxed-web", ns)
    wait_for(lambda: cluster.get("apps/v1", "Deployment", "boxed-cron", ns), what="cron Deployment")
    cluster.mark_deployment_available("boxed-cron", ns)
    wait_for(lambda: any(c["type"] == "Ready" and c["status"] == "True" for c in
                         (cluster.get(API, "MoodleSite", "boxed", ns).get("status") or {}).get("conditions", [])),
             timeout=30, what="Ready=True from the containerised operator")
    deadline = time.monotonic() + 10
    text = ""
    while time.monotonic() < deadline and "moodle_operator_reconciles_total" not in text:
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{operator_container['metrics']}/metrics",
                                          timeout=3).read().decode()
        except OSError:
            time.sleep(0.5)
    assert 'moodle_operator_reconciles_total{kind="MoodleSite"}' in text
    health = urllib.request.urlopen(f"http://127.0.0.1:{operator_container['health']}/healthz", timeout=3)
    assert health.status == 200
