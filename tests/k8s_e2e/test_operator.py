"""The operator as a cluster runs it: its image (make k8s-operator-image) imported into the cluster's
containerd and installed with its own chart (CRDs, ServiceAccount, RBAC, Deployment), talking to the
API server through the kubernetes Service with its ServiceAccount token. A MoodleSite (the in-chart
MariaDB and Redis, the stand-in Moodle image - not Moodle) must become Ready from what the kubelet and
the controllers report about real pods, not from status written by the test.

What the test still does by hand (as in test_chart.py): the PersistentVolumes (no dynamic provisioner
on this node) and the site installation (install_database.php in a Job built from the chart's upgrade
Job pod spec, rendered with exactly the values the operator computes)."""

from __future__ import annotations

import secrets
import tempfile
import time
from pathlib import Path

import yaml
from k8s.harness import CHARTS, kube_version, wait_for
from moodle_operator import desired

from .conftest import note
from .test_chart import WWWROOT, _bind_volumes, _describe, _helm, _install_site, _split, _wait_ready

API = "platform.moodle.dev/v1alpha1"
OPERATOR_NS = "moodle-operator"
NS = "e2e-operator"
SITE = "opsite"


def _operator_image() -> str:
    chart = yaml.safe_load((CHARTS / "moodle-operator" / "Chart.yaml").read_text())
    return f"moodle-platform/moodle-operator:{chart['appVersion']}"


def _site_spec(images: dict) -> dict:
    moodle, mariadb, redis = (_split(images[k]) for k in ("moodle", "mariadb", "redis"))
    return {"image": {"repository": moodle[0], "tag": moodle[1]}, "wwwroot": WWWROOT,
            "secretRef": {"name": f"{SITE}-credentials"},
            "chartValues": {"mariadb": {"image": {"repository": mariadb[0], "tag": mariadb[1]}},
                            "redis": {"image": {"repository": redis[0], "tag": redis[1]}},
                            # The probe runs every 5 s instead of 30 s: the test waits for it, not the behaviour.
                            "web": {"readinessProbe": {"periodSeconds": 5}}}}


def _ready(site: dict | None) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in ((site or {}).get("status") or {}).get("conditions", []))


def test_operator_in_cluster_makes_a_moodlesite_ready(cluster, images):
    started = time.monotonic()
    cluster.import_images(_operator_image())
    # The chart's CRDs, established, and the admin client's discovery refreshed (helm then keeps them).
    cluster.apply_crds()
    cluster.namespace(OPERATOR_NS)
    repo, tag = _split(_operator_image())
    _helm(cluster, "install", "moodle-operator", str(CHARTS / "moodle-operator"), "-n", OPERATOR_NS,
          "--set", f"image.repository={repo}", "--set-string", f"image.tag={tag}", "--set", "interval=2")
    op = wait_for(
        lambda: next((p for p in cluster.core.list_namespaced_pod(
            OPERATOR_NS, label_selector="app.kubernetes.io/name=moodle-operator").items
            if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])), None),
        timeout=120, interval=2, what="operator pod Ready")
    note(f"operator: helm install -> pod Ready in {time.monotonic() - started:.1f}s")

    started = time.monotonic()
    cluster.namespace(NS)
    cluster.secret(f"{SITE}-credentials", NS, {
        "db_password": secrets.token_urlsafe(18), "db_root_password": secrets.token_urlsafe(18),
        "redis_password": secrets.token_urlsafe(18), "moodle_admin_password": secrets.token_urlsafe(18)})
    spec = _site_spec(images)
    cluster.apply({"apiVersion": API, "kind": "MoodleSite", "metadata": {"name": SITE, "namespace": NS},
                   "spec": spec}, namespace=NS)
    # The operator's own chart values (its pure function), for the claims to bind and the install Job.
    with tempfile.TemporaryDirectory(prefix="k8s-e2e-operator-") as tmp:
        values_file = Path(tmp) / "values.yaml"
        values_file.write_text(yaml.safe_dump(desired.chart_values(SITE, spec)))
        manifest = _helm(cluster, "template", SITE, str(CHARTS / "moodle"), "-n", NS, "-f", str(values_file),
                         "--kube-version", kube_version())
        docs = [d for d in yaml.safe_load_all(manifest) if d]
        claims = sum(1 for d in docs if d["kind"] == "PersistentVolumeClaim") + sum(
            len(d["spec"].get("volumeClaimTemplates", [])) for d in docs if d["kind"] == "StatefulSet")
        _bind_volumes(cluster, Path(cluster.state_dir), claims, ns=NS)
        _wait_ready(cluster, "db", ns=NS, release=SITE)
        note(f"operator: MoodleSite applied -> in-chart MariaDB Ready in {time.monotonic() - started:.1f}s")
        # Not Ready yet: the web pod's readiness probe (upgrade.php --is-pending) fails on an empty database.
        assert not _ready(cluster.get(API, "MoodleSite", SITE, NS))
        _install_site(cluster, images, ns=NS, release=SITE, values=["-f", str(values_file)])

    try:
        site = wait_for(lambda: (s := cluster.get(API, "MoodleSite", SITE, NS)) and _ready(s) and s,
                        timeout=240, interval=2, what="MoodleSite Ready=True")
    except AssertionError as exc:
        log = cluster.pod_log(op.metadata.name, OPERATOR_NS)[-3000:]
        raise AssertionError(f"{exc}\n{_describe(cluster, 'web', NS, SITE)}\noperator log:\n{log}") from None
    note(f"operator: MoodleSite applied -> Ready in {time.monotonic() - started:.1f}s")
    assert site["status"]["availableReplicas"] >= 1
    assert site["status"]["image"] == images["moodle"]
    # The objects are the operator's (server-side apply field manager), and real pods back them.
    web = cluster.get("apps/v1", "Deployment", f"{SITE}-web", NS)
    assert any(m["manager"] == "moodle-operator" for m in web["metadata"]["managedFields"])
    for component in ("web", "cron", "db", "redis"):
        pod = _wait_ready(cluster, component, ns=NS, release=SITE, timeout=60)
        assert pod.status.phase == "Running", (component, pod.status.phase)
    log = cluster.pod_log(op.metadata.name, OPERATOR_NS)
    assert "Forbidden" not in log, log[-3000:]
