"""Desired state of a MoodleSite: pure functions, unit-tested directly (no API, no helm)."""

from __future__ import annotations

import copy

from . import API_VERSION, FIELD_MANAGER, ROLLBACK_ANNOTATION, SITE_LABEL  # noqa: F401
from .conditions import condition

# Kinds that hold data: never owned by the MoodleSite (so garbage collection cannot delete them)
# and never pruned. Deleting a site keeps its files, database volume and backups.
DATA_KINDS = frozenset({"PersistentVolumeClaim"})


def effective_tag(spec: dict, annotations: dict | None) -> str:
    """The image tag the site runs: the rollback annotation wins over spec.image.tag."""
    tag = (annotations or {}).get(ROLLBACK_ANNOTATION, "").strip()
    return tag or spec["image"]["tag"]


# Moodle's dbtype -> the database's default port; the chart's in-chart server of each is `<site>-db`.
DB_DEFAULT_PORTS = {"mariadb": 3306, "pgsql": 5432}


def site_database(site_name: str, spec: dict) -> dict:
    """The site's database as web pods and Jobs reach it: ``type`` (mariadb or pgsql), ``host``, ``port``
    and ``external`` (spec.database.host given; else the chart's in-chart server ``<site>-db``)."""
    database = spec.get("database") or {}
    db_type = database.get("type") or "mariadb"
    if db_type not in DB_DEFAULT_PORTS:
        raise ValueError(f"spec.database.type must be mariadb or pgsql, not {db_type!r}")
    return {"type": db_type, "host": database.get("host") or f"{site_name}-db",
            "port": int(database.get("port") or DB_DEFAULT_PORTS[db_type]), "external": bool(database.get("host"))}


def database_env(site_name: str, spec: dict) -> list[dict]:
    """MOODLE_DB_* of a Job (the chart's web pods get the same from its values); the password is a file."""
    database = site_database(site_name, spec)
    return [{"name": "MOODLE_DB_TYPE", "value": database["type"]},
            {"name": "MOODLE_DB_HOST", "value": database["host"]},
            {"name": "MOODLE_DB_PORT", "value": str(database["port"])},
            {"name": "MOODLE_DB_NAME", "value": "moodle"},
            {"name": "MOODLE_DB_USER", "value": "moodle"},
            {"name": "MOODLE_DB_PASSWORD_FILE", "value": "/run/secrets/db_password"}]


def _deep_merge(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in (extra or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def chart_values(name: str, spec: dict, annotations: dict | None = None) -> dict:
    """Map a MoodleSite spec onto the moodle chart's values."""
    storage = spec.get("storage") or {}
    values: dict = {
        "fullnameOverride": name,
        "image": {
            "repository": (spec.get("image") or {}).get("repository", "moodle-platform/moodle"),
            "tag": effective_tag(spec, annotations),
        },
        "wwwroot": spec["wwwroot"],
        "replicaCount": int(spec.get("replicas", 1)),
        "auth": {"existingSecret": spec["secretRef"]["name"]},
        "sessions": {"handler": spec.get("sessions", "redis")},
        "persistence": {
            "enabled": True,
            "accessMode": storage.get("accessMode", "ReadWriteOnce"),
            "size": storage.get("size", "20Gi"),
            "storageClass": storage.get("storageClass", ""),
        },
        "cron": {"enabled": bool((spec.get("cron") or {}).get("enabled", True)) and not spec.get("maintenance", False)},
    }
    blue_green = spec.get("blueGreen") or {}
    if blue_green.get("candidateTag"):
        values["blueGreen"] = {"candidateTag": blue_green["candidateTag"], "active": blue_green.get("active", "main")}
    database = site_database(name, spec)
    values["database"] = {"type": database["type"]}
    if database["external"]:
        values["postgresql" if database["type"] == "pgsql" else "mariadb"] = {"enabled": False}
        values["externalDatabase"] = {"host": database["host"], "port": database["port"]}
    ingress = spec.get("ingress") or {}
    if ingress.get("host"):
        values["ingress"] = {
            "enabled": True,
            "host": ingress["host"],
            "className": ingress.get("className", ""),
            "tls": {"enabled": bool(ingress.get("tlsSecretName")), "secretName": ingress.get("tlsSecretName", "")},
        }
    return _deep_merge(values, spec.get("chartValues") or {})


def object_key(obj: dict) -> str:
    """Stable identity of an applied object: ``apiVersion/Kind/name``."""
    return f"{obj['apiVersion']}/{obj['kind']}/{obj['metadata']['name']}"


def finalize_objects(objects: list[dict], *, site_name: str, site_uid: str, namespace: str) -> list[dict]:
    """Label every rendered object with its site and make the site own all but the data kinds."""
    owner = {
        "apiVersion": API_VERSION,
        "kind": "MoodleSite",
        "name": site_name,
        "uid": site_uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
    out = []
    for obj in objects:
        if not obj:
            continue
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        meta["namespace"] = namespace
        meta.setdefault("labels", {})[SITE_LABEL] = site_name
        if obj["kind"] not in DATA_KINDS:
            meta["ownerReferences"] = [owner]
        out.append(obj)
    # Apply data and plumbing before workloads, so a pod never waits on a missing claim or service.
    order = {"PersistentVolumeClaim": 0, "Service": 1, "NetworkPolicy": 1, "StatefulSet": 2, "Deployment": 3}
    return sorted(out, key=lambda o: (order.get(o["kind"], 4), object_key(o)))


def objects_to_prune(previously_applied: list[str] | None, current: list[dict]) -> list[str]:
    """Keys applied before but no longer rendered (for example cron turned off). Data kinds never."""
    now = {object_key(o) for o in current}
    return sorted(k for k in previously_applied or [] if k not in now and k.split("/")[-2] not in DATA_KINDS)


def deployment_available(deployment: dict | None) -> bool:
    if not deployment:
        return False
    status = deployment.get("status") or {}
    wanted = (deployment.get("spec") or {}).get("replicas", 1)
    available = any(c.get("type") == "Available" and c.get("status") == "True" for c in status.get("conditions") or [])
    return available and status.get("availableReplicas", 0) >= wanted and status.get("updatedReplicas", 0) >= wanted


def deployment_image(deployment: dict | None) -> str | None:
    if not deployment:
        return None
    containers = deployment["spec"]["template"]["spec"]["containers"]
    return containers[0]["image"]


def site_conditions(*, generation: int, web: dict | None, cron: dict | None, cron_wanted: bool,
                    expected_image: str) -> list[dict]:
    """Ready / Progressing / Degraded from the web and cron Deployments as the API reports them."""
    web_ok = deployment_available(web) and deployment_image(web) == expected_image
    cron_ok = (not cron_wanted) or (deployment_available(cron) and deployment_image(cron) == expected_image)
    if web is None:
        return [
            condition("Ready", False, "NotRendered", "web Deployment does not exist yet", generation),
            condition("Progressing", True, "Applying", "objects are being applied", generation),
            condition("Degraded", False, "NotRendered", "", generation),
        ]
    if web_ok and cron_ok:
        return [
            condition("Ready", True, "Available", f"web and cron run {expected_image}", generation),
            condition("Progressing", False, "Complete", "", generation),
            condition("Degraded", False, "Available", "", generation),
        ]
    waiting = []
    if not web_ok:
        waiting.append("web")
    if not cron_ok:
        waiting.append("cron")
    progressing = deployment_image(web) == expected_image
    return [
        condition("Ready", False, "Unavailable",
                  "waiting for " + " and ".join(waiting) + f" to run {expected_image}", generation),
        condition("Progressing", progressing, "RollingOut" if progressing else "Pending", "", generation),
        condition("Degraded", (web or {}).get("status", {}).get("availableReplicas", 0) == 0 and not progressing,
                  "NoWebPod", "no web pod is available", generation),
    ]
