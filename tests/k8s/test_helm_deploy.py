"""The helm_deploy role and the tenants playbook against the real API server: first run changes,
second run changes nothing; bad values are refused before anything is created; deleting a tenant
keeps its data and backups.

The playbooks are moodle.platform.kubernetes and moodle.platform.tenants from the collection installed
offline from its tarball, run with the checkout hidden: the role finds its charts inside the installed
collection."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from .harness import REAL, installed_collection_env, wait_for, without_checkout

API = "platform.moodle.dev/v1alpha1"
VAULT_ADMIN_PASSWORD = "given-by-vault-0123456789"  # noqa: S105 - a test value standing in for a Vault secret


def playbook(name: str, extra: dict, kubeconfig: str, helm: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
               **installed_collection_env())
    env.pop("KUBECONFIG", None)  # only what the playbook is given
    variables = {"ansible_python_interpreter": sys.executable, "helm_deploy_binary": helm,
                 "helm_deploy_kubeconfig": kubeconfig, **extra}
    argv = ["ansible-playbook", "-i", "localhost,", f"moodle.platform.{name}", "-e", json.dumps(variables)]
    return subprocess.run(without_checkout(argv, tempfile.gettempdir()), env=env, capture_output=True, text=True,
                          check=False, timeout=600)


def recap(proc: subprocess.CompletedProcess) -> dict:
    match = re.search(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", proc.stdout)
    assert match, proc.stdout[-3000:] + proc.stderr[-3000:]
    return dict(zip(("ok", "changed", "unreachable", "failed"), map(int, match.groups()), strict=True))


SITE_VALUES = {"wwwroot": "https://k8s.example.org", "ingress": {"enabled": True, "host": "k8s.example.org"}}


def test_deploy_role_installs_the_chart_and_a_second_run_changes_nothing(cluster, helm):
    extra = {"helm_deploy_namespace": "deploy-role", "helm_deploy_release_name": "campus",
             # On a real cluster the chart's operator would run next to the in-process one: skip it there.
             "helm_deploy_values": SITE_VALUES, "helm_deploy_install_operator": not REAL,
             "helm_deploy_passwords": {"moodle_admin_password": VAULT_ADMIN_PASSWORD}}
    first = playbook("kubernetes", extra, cluster.kubeconfig, helm)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    assert recap(first)["changed"] >= 3
    web = cluster.get("apps/v1", "Deployment", "campus-web", "deploy-role")
    assert web["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    assert cluster.get("networking.k8s.io/v1", "Ingress", "campus", "deploy-role") is not None
    if not REAL:
        assert cluster.get("apps/v1", "Deployment", "moodle-operator", "moodle-operator") is not None
    secret = cluster.get("v1", "Secret", "campus-credentials", "deploy-role")
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert set(data) == {"db_password", "db_root_password", "redis_password", "moodle_admin_password"}
    assert data["moodle_admin_password"] == VAULT_ADMIN_PASSWORD
    assert all(len(v) >= 32 for k, v in data.items() if k != "moodle_admin_password")
    for value in data.values():  # no_log: no password in the output
        assert value not in first.stdout and value not in first.stderr

    second = playbook("kubernetes", extra, cluster.kubeconfig, helm)
    assert second.returncode == 0, second.stdout[-4000:]
    assert recap(second)["changed"] == 0, second.stdout[-4000:]
    again = cluster.get("v1", "Secret", "campus-credentials", "deploy-role")
    assert again["data"] == secret["data"]  # generated passwords are kept, never rotated by a re-run


@pytest.mark.parametrize(("extra", "message"), [
    ({"helm_deploy_values": {**SITE_VALUES, "replicaCount": 3}}, "needs persistence.accessMode=ReadWriteMany"),
    ({"helm_deploy_passwords": {"db_password": "short"}}, "each at least 16 characters"),
    ({"helm_deploy_namespace": "Bad_Namespace"}, "DNS-1123"),
])
def test_bad_input_is_refused_before_anything_is_created(cluster, helm, extra, message):
    ns = extra.get("helm_deploy_namespace", "refused-" + str(abs(hash(message)) % 10000))
    proc = playbook("kubernetes", {"helm_deploy_namespace": ns, **extra}, cluster.kubeconfig, helm)
    assert proc.returncode != 0
    assert message in proc.stdout, proc.stdout[-3000:]
    if ns.islower():
        assert cluster.get("v1", "Namespace", ns) is None  # nothing was created


TENANTS = [{"name": "school-a", "wwwroot": "https://a.example.org"},
           {"name": "school-b", "wwwroot": "https://b.example.org", "replicas": 2, "storage_access_mode": "ReadWriteMany"}]


def test_tenants_get_one_site_per_namespace_and_deleting_one_keeps_its_backups(cluster, helm, operator):
    first = playbook("tenants", {"moodle_tenants": TENANTS}, cluster.kubeconfig, helm)
    assert first.returncode == 0, first.stdout[-4000:]
    for tenant in ("school-a", "school-b"):
        ns = f"moodle-{tenant}"
        assert cluster.get(API, "MoodleSite", tenant, ns)["spec"]["secretRef"]["name"] == f"{tenant}-credentials"
        # The operator renders each tenant's own objects in its own namespace.
        wait_for(lambda n=ns, t=tenant: cluster.get("apps/v1", "Deployment", f"{t}-web", n), what=f"{tenant} web")
        assert cluster.get("networking.k8s.io/v1", "NetworkPolicy", f"{tenant}-db", ns) is not None
        assert cluster.get("v1", "PersistentVolumeClaim", f"{tenant}-moodledata", ns) is not None
    assert cluster.get(API, "MoodleSite", "school-b", "moodle-school-b")["spec"]["replicas"] == 2

    second = playbook("tenants", {"moodle_tenants": TENANTS}, cluster.kubeconfig, helm)
    assert recap(second)["changed"] == 0, second.stdout[-4000:]

    cluster.apply({"apiVersion": API, "kind": "Backup", "metadata": {"name": "before-leaving"},
                   "spec": {"site": "school-a", "destination": {"repository": "s3:https://s3.example.org/b/a",
                                                                "secretRef": {"name": "s3"}}}},
                  namespace="moodle-school-a")
    gone = playbook("tenants", {"moodle_tenants": [{"name": "school-a", "state": "absent"}, TENANTS[1]]},
                    cluster.kubeconfig, helm)
    assert gone.returncode == 0, gone.stdout[-4000:]
    assert cluster.get(API, "MoodleSite", "school-a", "moodle-school-a") is None
    assert cluster.get(API, "Backup", "before-leaving", "moodle-school-a") is not None
    assert cluster.get("v1", "PersistentVolumeClaim", "school-a-moodledata", "moodle-school-a") is not None
    assert cluster.get("v1", "Secret", "school-a-credentials", "moodle-school-a") is not None
    assert cluster.get(API, "MoodleSite", "school-b", "moodle-school-b") is not None


def test_tenant_with_replicas_but_no_rwx_is_refused(cluster, helm):
    proc = playbook("tenants", {"moodle_tenants": [{"name": "school-c", "wwwroot": "https://c.example.org",
                                                        "replicas": 2}]}, cluster.kubeconfig, helm)
    assert proc.returncode != 0 and "ReadWriteMany" in proc.stdout
    assert cluster.get("v1", "Namespace", "moodle-school-c") is None
