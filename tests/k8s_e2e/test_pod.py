"""A pod really runs on the single-node cluster: scheduled, its image (built here FROM our base image,
imported from Docker) started by the kubelet through containerd and runc, its readiness probe
answered over the pod network, its log read through the API, and a Service (ClusterIP and NodePort,
kube-proxy's iptables rules) answering."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
from k8s.harness import wait_for

from .conftest import build_image

HERE = Path(__file__).resolve().parent
NS = "e2e-hello"


@pytest.fixture(scope="module")
def hello(cluster):
    image = build_image(HERE / "hello", "moodle-platform/k8s-e2e-hello")
    cluster.import_images(image)
    cluster.namespace(NS)
    labels = {"app": "hello"}
    cluster.apply({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "hello", "namespace": NS, "labels": labels},
        "spec": {
            "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "hello", "image": image, "imagePullPolicy": "Never",
                "ports": [{"containerPort": 8080}],
                "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 1},
                "securityContext": {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                                    "capabilities": {"drop": ["ALL"]}},
            }],
        }})
    cluster.apply({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "hello", "namespace": NS},
        "spec": {"type": "NodePort", "selector": labels, "ports": [{"port": 80, "targetPort": 8080}]}})
    return cluster


def _ready(cluster):
    pod = cluster.core.read_namespaced_pod("hello", NS)
    for status in pod.status.container_statuses or []:
        if status.restart_count:  # it crashed: fail now, with its log
            previous = cluster.core.read_namespaced_pod_log("hello", NS, previous=True)
            raise AssertionError(f"container restarted: {status.last_state.to_dict()}\nlog: {previous}")
    ready = any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
    return pod if pod.status.phase == "Running" and ready else None


def test_pod_runs_ready_and_logs_through_the_api(hello):
    pod = wait_for(lambda: _ready(hello), timeout=120, interval=1, what="pod hello Running and Ready")
    assert pod.spec.node_name == "moodle-k8s-node"
    assert pod.status.pod_ip and pod.status.pod_ip.startswith("10.244.0."), pod.status.pod_ip
    # The readiness probe (the kubelet over the pod network) shows up in the container's own log.
    log = wait_for(lambda: (lg := hello.pod_log("hello", NS)) and "GET /ready" in lg and lg, timeout=30,
                   what="the probe's request in the pod log")
    assert "hello-server listening on 8080 as uid 65534" in log, log


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 (http to the test cluster)
        return r.read().decode()


def test_service_cluster_ip_and_node_port_answer(hello):
    wait_for(lambda: _ready(hello), timeout=120, interval=1, what="pod hello Ready")
    svc = hello.core.read_namespaced_service("hello", NS)
    cluster_ip, node_port = svc.spec.cluster_ip, svc.spec.ports[0].node_port

    def answer(url):
        try:
            return _get(url)
        except OSError:
            return None
    assert wait_for(lambda: answer(f"http://{cluster_ip}/"), timeout=60, what="ClusterIP") == "hello from hello\n"
    assert wait_for(lambda: answer(f"http://{hello.node_ip}:{node_port}/"), timeout=60,
                    what="NodePort") == "hello from hello\n"
    assert "served: GET / HTTP" in hello.pod_log("hello", NS)


CLIENT = r"""
use IO::Socket::INET;
my ($host, $port) = @ARGV;
my $s = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port, Timeout => 5) or die "connect $host:$port: $@\n";
print $s "GET /from-pod HTTP/1.0\r\nHost: hello\r\n\r\n";
print while <$s>;
"""


def _client(cluster, name: str, host: str, port: int) -> tuple[str, str]:
    """Run a one-shot client pod (the hello image, perl) that GETs /from-pod from HOST:PORT."""
    image = cluster.core.read_namespaced_pod("hello", NS).spec.containers[0].image
    cluster.apply({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS},
        "spec": {"restartPolicy": "Never", "automountServiceAccountToken": False,
                 "securityContext": {"runAsNonRoot": True, "runAsUser": 65534},
                 "containers": [{"name": "client", "image": image, "imagePullPolicy": "Never",
                                 "command": ["/usr/bin/perl", "-e", CLIENT, host, str(port)]}]}})
    phase = wait_for(lambda: (p := cluster.core.read_namespaced_pod(name, NS).status.phase) in ("Succeeded", "Failed")
                     and p, timeout=90, interval=1, what=f"{name} pod finished")
    return phase, cluster.pod_log(name, NS)


def test_pod_reaches_service_by_cluster_dns_name(hello):
    """CoreDNS (the cluster DNS) resolves the Service's name inside a pod, and kube-proxy routes the
    pod's connection to the ClusterIP back to the hello pod on the same bridge."""
    wait_for(lambda: _ready(hello), timeout=120, interval=1, what="pod hello Ready")
    phase, log = _client(hello, "client-dns", "hello.e2e-hello.svc.cluster.local", 80)
    assert phase == "Succeeded" and "hello from hello" in log, (phase, log)
    assert "served: GET /from-pod HTTP/1.0" in hello.pod_log("hello", NS)


def test_pod_reaches_pod_ip_directly(hello):
    """Pod to pod on the bridge without a Service (what a headless Service gives a client): the CNI
    firewall plugin accepts it in FORWARD, where this host's Docker sets the policy to DROP."""
    pod = wait_for(lambda: _ready(hello), timeout=120, interval=1, what="pod hello Ready")
    phase, log = _client(hello, "client-direct", pod.status.pod_ip, 8080)
    assert phase == "Succeeded" and "hello from hello" in log, (phase, log)
