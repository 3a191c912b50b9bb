"""The API server itself rejects invalid custom resources (OpenAPI schema + CEL rules in the CRDs)
with messages a person can act on; printer columns and the status subresource are declared."""

from __future__ import annotations

import json

import pytest
from kubernetes.dynamic.exceptions import DynamicApiError

API = "platform.moodle.dev/v1alpha1"
SITE = {"image": {"tag": "4.5.6"}, "wwwroot": "https://a.example.org", "secretRef": {"name": "creds"}}
DEST = {"repository": "s3:https://s3.example.org/b/a", "secretRef": {"name": "s3"}}


@pytest.fixture(scope="module")
def ns(cluster):
    return cluster.namespace("crd-validation")


def create(cluster, ns, kind, name, spec):
    body = {"apiVersion": API, "kind": kind, "metadata": {"name": name}, "spec": spec}
    return cluster.res(API, kind).create(body=body, namespace=ns)


@pytest.mark.parametrize(("kind", "spec", "message"), [
    ("MoodleSite", {**SITE, "replicas": 3}, "replicas > 1 needs storage.accessMode ReadWriteMany and sessions redis"),
    ("MoodleSite", {**SITE, "replicas": 3, "storage": {"accessMode": "ReadWriteMany"}, "sessions": "file"},
     "replicas > 1 needs storage.accessMode ReadWriteMany and sessions redis"),
    ("MoodleSite", {**SITE, "replicas": 0}, "should be greater than or equal to 1"),
    ("MoodleSite", {**SITE, "image": {"tag": "bad tag!"}}, "spec.image.tag"),
    ("MoodleSite", {**SITE, "wwwroot": "moodle.example.org"}, "spec.wwwroot"),
    ("MoodleSite", {k: v for k, v in SITE.items() if k != "secretRef"}, "spec.secretRef: Required value"),
    ("MoodleSite", {**SITE, "sessions": "memcached"}, 'supported values: "redis", "file"'),
    ("MoodleSite", {**SITE, "storage": {"size": "lots"}}, "spec.storage.size"),
    ("Backup", {"site": "a"}, "spec.destination: Required value"),
    ("Backup", {"site": "a", "destination": DEST, "schedule": "every day"}, "spec.schedule"),
    ("Backup", {"site": "a", "destination": {**DEST, "repository": "ftp://x"}}, "spec.destination.repository"),
    ("UpgradePlan", {"site": "a", "targetTag": "4.5.7"}, "spec.backup: Required value"),
    ("Restore", {"site": "a", "backupId": "20261204T020000Z-a"}, "spec.source: Required value"),
    ("Restore", {"site": "a", "backupId": "latest", "source": DEST}, "spec.backupId"),
    ("Restore", {"site": "a", "backupId": "20261204T020000Z-a", "source": {**DEST, "repository": "ftp://x"}},
     "spec.source.repository"),
])
def test_invalid_resources_are_rejected_with_a_clear_message(cluster, ns, kind, spec, message):
    with pytest.raises(DynamicApiError) as err:
        create(cluster, ns, kind, "bad", spec)
    assert err.value.status == 422
    text = json.loads(err.value.body)["message"]
    assert message in text, text


def test_valid_site_gets_defaults(cluster, ns):
    obj = create(cluster, ns, "MoodleSite", "defaults", SITE).to_dict()
    assert obj["spec"]["replicas"] == 1
    assert obj["spec"]["sessions"] == "redis"
    assert obj["spec"]["storage"] == {"accessMode": "ReadWriteOnce", "size": "20Gi"}
    assert obj["spec"]["image"]["repository"] == "moodle-platform/moodle"


def test_upgrade_plan_is_immutable(cluster, ns):
    create(cluster, ns, "UpgradePlan", "frozen", {"site": "a", "targetTag": "4.5.7", "backup": DEST})
    with pytest.raises(DynamicApiError) as err:
        cluster.res(API, "UpgradePlan").patch(name="frozen", namespace=ns, content_type="application/merge-patch+json",
                                              body={"spec": {"targetTag": "4.5.8"}})
    assert "an UpgradePlan is immutable once created" in json.loads(err.value.body)["message"]


def test_restore_is_immutable_and_backs_up_first_by_default(cluster, ns):
    obj = create(cluster, ns, "Restore", "once", {"site": "a", "backupId": "20261204T020000Z-a", "source": DEST})
    assert obj.to_dict()["spec"]["safetyBackup"] == {"enabled": True}
    with pytest.raises(DynamicApiError) as err:
        cluster.res(API, "Restore").patch(name="once", namespace=ns, content_type="application/merge-patch+json",
                                          body={"spec": {"backupId": "20261205T020000Z-a"}})
    assert "a Restore is immutable once created" in json.loads(err.value.body)["message"]


def test_crds_declare_status_subresource_and_printer_columns(cluster):
    for plural, columns in [("moodlesites", {"Image", "Ready"}), ("backups", {"Phase", "Snapshot", "Size"}),
                            ("upgradeplans", {"Phase", "Step", "Target"}), ("restores", {"Phase", "Backup"})]:
        crd = cluster.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", f"{plural}.platform.moodle.dev")
        version = crd["spec"]["versions"][0]
        assert version["subresources"] == {"status": {}}
        assert columns <= {c["name"] for c in version["additionalPrinterColumns"]}


def test_status_is_not_writable_through_the_main_resource(cluster, ns):
    """With the status subresource, a spec update cannot smuggle in status."""
    create(cluster, ns, "MoodleSite", "statusless", SITE)
    out = cluster.res(API, "MoodleSite").patch(name="statusless", namespace=ns, content_type="application/merge-patch+json",
                                               body={"status": {"image": "forged"}}).to_dict()
    assert "status" not in out or out["status"].get("image") != "forged"
