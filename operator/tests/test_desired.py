"""Unit tests of the pure desired-state functions (no API server, no helm)."""

import pytest
from moodle_operator import ROLLBACK_ANNOTATION
from moodle_operator.conditions import merge_conditions
from moodle_operator.desired import (
    chart_values,
    effective_tag,
    finalize_objects,
    objects_to_prune,
    site_conditions,
    site_database,
)

SPEC = {"image": {"repository": "moodle-platform/moodle", "tag": "4.5.6"}, "wwwroot": "https://a.example.org",
        "secretRef": {"name": "a-creds"}, "replicas": 1}


def test_rollback_annotation_wins_over_spec_tag():
    assert effective_tag(SPEC, {}) == "4.5.6"
    assert effective_tag(SPEC, {ROLLBACK_ANNOTATION: "4.5.5"}) == "4.5.5"
    assert effective_tag(SPEC, {ROLLBACK_ANNOTATION: "  "}) == "4.5.6"


def test_chart_values_map_spec_and_maintenance_stops_cron():
    values = chart_values("a", SPEC, {ROLLBACK_ANNOTATION: "4.5.5"})
    assert values["image"] == {"repository": "moodle-platform/moodle", "tag": "4.5.5"}
    assert values["auth"]["existingSecret"] == "a-creds"
    assert values["cron"]["enabled"] is True
    assert chart_values("a", {**SPEC, "maintenance": True})["cron"]["enabled"] is False
    assert chart_values("a", {**SPEC, "cron": {"enabled": False}})["cron"]["enabled"] is False


def test_external_database_and_chart_values_passthrough():
    values = chart_values("a", {**SPEC, "database": {"host": "db.example.org", "port": 3307},
                                "chartValues": {"web": {"containerPort": 9090}, "pdb": {"enabled": False}}})
    assert values["mariadb"] == {"enabled": False}
    assert values["externalDatabase"] == {"host": "db.example.org", "port": 3307}
    assert values["web"] == {"containerPort": 9090}
    assert values["pdb"] == {"enabled": False}


def test_postgresql_site_in_chart_and_external_with_the_port_of_its_type():
    in_chart = chart_values("a", {**SPEC, "database": {"type": "pgsql"}})
    assert in_chart["database"] == {"type": "pgsql"}
    assert "externalDatabase" not in in_chart and "postgresql" not in in_chart
    external = chart_values("a", {**SPEC, "database": {"type": "pgsql", "host": "pg.example.org"}})
    assert external["postgresql"] == {"enabled": False} and "mariadb" not in external
    assert external["externalDatabase"] == {"host": "pg.example.org", "port": 5432}
    assert site_database("a", {**SPEC, "database": {"host": "my.example.org"}})["port"] == 3306
    assert site_database("a", SPEC) == {"type": "mariadb", "host": "a-db", "port": 3306, "external": False}
    with pytest.raises(ValueError, match="mariadb or pgsql"):
        site_database("a", {**SPEC, "database": {"type": "oracle"}})


def _obj(kind, name, api="v1"):
    return {"apiVersion": api, "kind": kind, "metadata": {"name": name}}


def test_finalize_owns_everything_but_claims_and_orders_claims_first():
    objs = finalize_objects([_obj("Deployment", "a-web", "apps/v1"), _obj("PersistentVolumeClaim", "a-moodledata"),
                             _obj("Service", "a")], site_name="a", site_uid="u-1", namespace="ns")
    assert [o["kind"] for o in objs] == ["PersistentVolumeClaim", "Service", "Deployment"]
    claim, service, deployment = objs
    assert "ownerReferences" not in claim["metadata"]
    assert deployment["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert all(o["metadata"]["namespace"] == "ns" for o in objs)
    assert service["metadata"]["labels"]["platform.moodle.dev/site"] == "a"


def test_prune_drops_unrendered_objects_but_never_claims():
    current = [_obj("Deployment", "a-web", "apps/v1")]
    before = ["apps/v1/Deployment/a-web", "apps/v1/Deployment/a-cron", "v1/PersistentVolumeClaim/a-moodledata"]
    assert objects_to_prune(before, current) == ["apps/v1/Deployment/a-cron"]
    assert objects_to_prune(None, current) == []


def _dep(image, available):
    return {"spec": {"replicas": 2, "template": {"spec": {"containers": [{"image": image}]}}},
            "status": {"availableReplicas": 2 if available else 0, "updatedReplicas": 2,
                       "conditions": [{"type": "Available", "status": "True" if available else "False"}]}}


def test_site_conditions_ready_only_when_web_and_cron_run_the_expected_image():
    want = "m:2"
    ready = {c["type"]: c["status"] for c in site_conditions(
        generation=3, web=_dep(want, True), cron=_dep(want, True), cron_wanted=True, expected_image=want)}
    assert ready == {"Ready": "True", "Progressing": "False", "Degraded": "False"}
    old_image = {c["type"]: c["status"] for c in site_conditions(
        generation=3, web=_dep("m:1", True), cron=_dep(want, True), cron_wanted=True, expected_image=want)}
    assert old_image["Ready"] == "False"
    cron_missing = {c["type"]: c["status"] for c in site_conditions(
        generation=3, web=_dep(want, True), cron=None, cron_wanted=True, expected_image=want)}
    assert cron_missing["Ready"] == "False"
    no_cron_needed = {c["type"]: c["status"] for c in site_conditions(
        generation=3, web=_dep(want, True), cron=None, cron_wanted=False, expected_image=want)}
    assert no_cron_needed["Ready"] == "True"


def test_merge_conditions_keeps_transition_time_when_status_unchanged():
    first = merge_conditions([], [{"type": "Ready", "status": "False", "reason": "x", "message": ""}], now="T1")
    same = merge_conditions(first, [{"type": "Ready", "status": "False", "reason": "y", "message": ""}], now="T2")
    flipped = merge_conditions(same, [{"type": "Ready", "status": "True", "reason": "z", "message": ""}], now="T3")
    assert same[0]["lastTransitionTime"] == "T1" and same[0]["reason"] == "y"
    assert flipped[0]["lastTransitionTime"] == "T3"
