"""Test harness for the Kubernetes suite: a real kube-apiserver (scripts/k8s/start-apiserver.sh), or a
real cluster from $KUBECONFIG when MOODLE_K8S_REAL=1, plus helpers that stand in for the kubelet and
the controllers this API server runs without (they write Deployment/Job/Pod status by hand)."""

from __future__ import annotations

import base64
import datetime as dt
import functools
import os
import subprocess
import sys
import time
from pathlib import Path

import kubernetes
import yaml
from kubernetes.dynamic import DynamicClient

ROOT = Path(__file__).resolve().parents[2]
COLLECTION = ROOT / "collections" / "ansible_collections" / "moodle" / "platform"
CHARTS = COLLECTION / "charts"  # the charts ship inside the collection
SCRIPTS = ROOT / "scripts" / "k8s"
REAL = os.environ.get("MOODLE_K8S_REAL") == "1"
COLLECTION_HELPER = [sys.executable, str(ROOT / "scripts" / "collection.py")]


@functools.cache
def installed_collection_env() -> dict:
    """ANSIBLE_COLLECTIONS_PATH (only the collection installed offline from its tarball, outside the
    checkout) and ANSIBLE_CONFIG (not the repository's): the deploy tests run what users install."""
    out = subprocess.run([*COLLECTION_HELPER, "env"], capture_output=True, text=True, check=True, timeout=600).stdout
    return dict(line.split("=", 1) for line in out.splitlines())


def without_checkout(argv: list[str], cwd: str) -> list[str]:
    """argv run in cwd with the repository checkout hidden (scripts/collection.py run-hidden)."""
    return [*COLLECTION_HELPER, "run-hidden", "--cwd", cwd, "--", *argv]


def versions() -> dict:
    out = {}
    for line in (SCRIPTS / "versions.env").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            out[key] = value.split("${")[0] if not value.startswith("${") else value
    cache = os.environ.get("K8S_CACHE_DIR", "/var/cache/moodle-platform/k8s")
    out["K8S_CACHE_DIR"] = cache
    return out


def helm_bin() -> str:
    v = versions()
    path = Path(v["K8S_CACHE_DIR"]) / f"helm-{v['HELM_VERSION']}-r{v['HELM_REV']}" / "helm"
    if not path.exists():
        raise RuntimeError(f"{path} missing: run scripts/k8s/build-tools.sh (make k8s-tools)")
    return str(path)


def kube_version() -> str:
    return versions()["K8S_VERSION"]


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# 60 s: under `make test` this suite shares two cores with two other lanes of Compose stacks, where the
# in-process operator's reactions take several times longer than on a quiet machine.
def wait_for(predicate, timeout: float = 60, interval: float = 0.25, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class Cluster:
    """One API server for the session: admin client, helpers to apply and to simulate status."""

    def __init__(self, kubeconfig: str, state_dir: str | None):
        self.kubeconfig = kubeconfig
        self.state_dir = state_dir
        self.client = kubernetes.config.new_client_from_config(config_file=kubeconfig)
        self.dyn = DynamicClient(self.client)
        self.core = kubernetes.client.CoreV1Api(self.client)

    # -- generic
    def res(self, api_version: str, kind: str):
        return self.dyn.resources.get(api_version=api_version, kind=kind)

    def apply(self, obj: dict, namespace: str | None = None):
        ns = namespace or obj.get("metadata", {}).get("namespace")
        return self.res(obj["apiVersion"], obj["kind"]).server_side_apply(
            body=obj, namespace=ns, field_manager="moodle-platform-tests", force_conflicts=True)

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None):
        from kubernetes.dynamic.exceptions import NotFoundError
        try:
            return self.res(api_version, kind).get(name=name, namespace=namespace).to_dict()
        except NotFoundError:
            return None

    def namespace(self, name: str) -> str:
        self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        # No controller-manager here: the "default" ServiceAccount that pods need is ours to make.
        if not REAL:
            self.apply({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": name}})
        return name

    def apply_crds(self):
        crd_dir = CHARTS / "moodle-operator" / "crds"
        for path in sorted(crd_dir.glob("*.yaml")):
            self.apply(yaml.safe_load(path.read_text()))
        for path in sorted(crd_dir.glob("*.yaml")):
            name = yaml.safe_load(path.read_text())["metadata"]["name"]
            wait_for(lambda n=name: any(c["type"] == "Established" and c["status"] == "True" for c in
                                        (self.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", n) or {})
                                        .get("status", {}).get("conditions", [])), what=f"CRD {name} established")
        self.dyn = DynamicClient(self.client)  # rediscover the new kinds

    def token_for(self, namespace: str, service_account: str) -> str:
        req = kubernetes.client.AuthenticationV1TokenRequest(
            spec=kubernetes.client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600))
        return self.core.create_namespaced_service_account_token(service_account, namespace, req).status.token

    def kubeconfig_for_token(self, token: str, path: Path) -> str:
        cfg = yaml.safe_load(Path(self.kubeconfig).read_text())
        cfg["users"] = [{"name": "sa", "user": {"token": token}}]
        cfg["contexts"][0]["context"]["user"] = "sa"
        path.write_text(yaml.safe_dump(cfg))
        path.chmod(0o600)
        return str(path)

    # -- stand-ins for the kubelet and the controllers (not running here)
    def mark_deployment_available(self, name: str, namespace: str, available: bool = True):
        dep = self.get("apps/v1", "Deployment", name, namespace)
        replicas = dep["spec"].get("replicas", 1)
        status = {
            "observedGeneration": dep["metadata"]["generation"],
            "replicas": replicas, "updatedReplicas": replicas,
            "readyReplicas": replicas if available else 0,
            "availableReplicas": replicas if available else 0,
            "conditions": [{"type": "Available", "status": "True" if available else "False",
                            "reason": "TestStandIn", "message": "set by the test (no kubelet)",
                            "lastUpdateTime": now(), "lastTransitionTime": now()}],
        }
        self.res("apps/v1", "Deployment").status.patch(
            name=name, namespace=namespace, body={"status": status}, content_type="application/merge-patch+json")

    def finish_job(self, name: str, namespace: str, *, succeeded: bool, message: str | None = None):
        """Stand in for the Job controller and kubelet: a terminated pod (with the termination
        message the real container would write) and the Job's final conditions."""
        job = self.get("batch/v1", "Job", name, namespace)
        template = job["spec"]["template"]
        labels = dict(template["metadata"].get("labels") or {})
        labels.update({"job-name": name, "batch.kubernetes.io/job-name": name})
        container = template["spec"]["containers"][0]["name"]
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": f"{name}-standin", "namespace": namespace, "labels": labels},
               "spec": template["spec"]}
        self.res("v1", "Pod").create(body=pod, namespace=namespace)
        started = now()
        terminated = {"exitCode": 0 if succeeded else 1, "reason": "Completed" if succeeded else "Error",
                      "startedAt": started, "finishedAt": started}
        if message is not None:
            terminated["message"] = message
        self.res("v1", "Pod").status.patch(
            name=f"{name}-standin", namespace=namespace, content_type="application/merge-patch+json", body={
            "status": {"phase": "Succeeded" if succeeded else "Failed", "startTime": started,
                       "containerStatuses": [{"name": container, "image": template["spec"]["containers"][0]["image"],
                                              "imageID": "", "ready": False, "restartCount": 0,
                                              "state": {"terminated": terminated}}]}})
        t = now()
        if succeeded:
            status = {"startTime": started, "completionTime": t, "succeeded": 1, "active": 0, "failed": 0,
                      "conditions": [
                          {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached",
                           "message": "Reached expected number of succeeded pods", "lastProbeTime": t, "lastTransitionTime": t},
                          {"type": "Complete", "status": "True", "reason": "CompletionsReached",
                           "message": "Reached expected number of succeeded pods", "lastProbeTime": t, "lastTransitionTime": t}]}
        else:
            status = {"startTime": started, "failed": 1, "active": 0, "succeeded": 0,
                      "conditions": [
                          {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded",
                           "message": "Job has reached the specified backoff limit", "lastProbeTime": t, "lastTransitionTime": t},
                          {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                           "message": "Job has reached the specified backoff limit",
                           "lastProbeTime": t, "lastTransitionTime": t}]}
        self.res("batch/v1", "Job").status.patch(name=name, namespace=namespace, body={"status": status},
                                                 content_type="application/merge-patch+json")

    def secret(self, name: str, namespace: str, data: dict):
        self.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
                    "type": "Opaque",
                    "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}})


def start_apiserver(state_dir: Path) -> None:
    subprocess.run(["bash", str(SCRIPTS / "start-apiserver.sh"), str(state_dir)], check=True)


def stop_apiserver(state_dir: Path) -> None:
    subprocess.run(["bash", str(SCRIPTS / "stop-apiserver.sh"), str(state_dir)], check=False)
