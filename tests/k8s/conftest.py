"""Fixtures for the Kubernetes suite. The API server is real (started here, or $KUBECONFIG with
MOODLE_K8S_REAL=1); the operator runs in-process under kopf's KopfRunner as its own ServiceAccount,
bound only by the operator chart's RBAC."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from .harness import CHARTS, REAL, Cluster, helm_bin, kube_version, start_apiserver, stop_apiserver

# The in-process operator's identity uses its own release, namespace and peering name, so the deploy
# role's test can install the operator chart for real without colliding with it.
OPERATOR_NS = "moodle-operator-test"
OPERATOR_RELEASE = "moodle-operator-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def cluster():
    if REAL:
        cl = Cluster(os.environ["KUBECONFIG"], None)
        cl.apply_crds()  # needs cluster-admin, like installing the operator chart
        yield cl
        return
    state = Path(tempfile.mkdtemp(prefix="moodle-k8s-"))
    started = time.monotonic()
    start_apiserver(state)
    print(f"\n[k8s] API server up in {time.monotonic() - started:.1f}s (state {state})")
    try:
        cl = Cluster(str(state / "admin.kubeconfig"), str(state))
        cl.apply_crds()
        yield cl
    finally:
        stop_apiserver(state)
        if os.environ.get("MOODLE_K8S_KEEP_STATE") != "1":  # keep logs and etcd data for debugging
            shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="session")
def helm():
    return helm_bin()


@pytest.fixture(scope="session")
def operator_kubeconfig(cluster, helm, tmp_path_factory):
    """Install the operator chart's ServiceAccount, RBAC and peering object (not its Deployment:
    the operator runs in this process) and return a kubeconfig holding that ServiceAccount's token."""
    import subprocess

    cluster.namespace(OPERATOR_NS)
    out = subprocess.run([helm, "template", OPERATOR_RELEASE, str(CHARTS / "moodle-operator"),
                          "--namespace", OPERATOR_NS, "--kube-version", kube_version(),
                          "--set", f"peering.name={OPERATOR_RELEASE}"],
                         check=True, capture_output=True, text=True).stdout
    for doc in yaml.safe_load_all(out):
        if doc and doc["kind"] not in ("Deployment", "Service"):
            cluster.apply(doc, namespace=OPERATOR_NS if doc["kind"] == "ServiceAccount" else None)
    token = cluster.token_for(OPERATOR_NS, "moodle-operator")
    return cluster.kubeconfig_for_token(token, tmp_path_factory.mktemp("op") / "operator.kubeconfig")


@pytest.fixture(scope="session")
def operator(cluster, helm, operator_kubeconfig):
    """The operator, in-process, as its ServiceAccount. Yields the metrics port."""
    from kopf.testing import KopfRunner

    port = _free_port()
    os.environ.update({
        "KUBECONFIG": operator_kubeconfig,
        "MOODLE_OPERATOR_INTERVAL": "0.5",
        "MOODLE_OPERATOR_METRICS_PORT": str(port),
        "MOODLE_OPERATOR_HELM": helm,
        "MOODLE_OPERATOR_PEERING": OPERATOR_RELEASE,
    })
    import moodle_operator.handlers  # noqa: F401  (registers the handlers with INTERVAL from env)

    with KopfRunner(["run", "--all-namespaces", "--verbose", "-m", "moodle_operator.handlers"],
                    timeout=60) as runner:
        time.sleep(2)  # let kopf start its watches and take the peering
        yield port
    print(runner.output[-4000:])
    assert runner.exception is None, runner.exception
    # RBAC gaps show up as retried 403s in kopf's log, not as test failures: fail on them here.
    # (Only kopf's own lines: the RBAC test provokes 403s on purpose with the same identity.)
    forbidden = [line for line in runner.output.splitlines() if " kopf." in line and "Forbidden" in line]
    assert not forbidden, "the operator hit RBAC denials:\n" + "\n".join(forbidden[:5])
