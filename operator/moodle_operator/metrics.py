"""Prometheus metrics of the operator (served on MOODLE_OPERATOR_METRICS_PORT, default 8080)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

REGISTRY = CollectorRegistry()
RECONCILES = Counter("moodle_operator_reconciles_total", "Reconciliations by kind.", ["kind"], registry=REGISTRY)
FAILURES = Counter("moodle_operator_reconcile_failures_total", "Failed reconciliations by kind and reason.",
                   ["kind", "reason"], registry=REGISTRY)
LAST_BACKUP = Gauge("moodle_operator_backup_last_success_timestamp_seconds",
                    "Unix time of the last successful Backup of a site.", ["namespace", "site"], registry=REGISTRY)
BACKUP_AGE = Gauge("moodle_operator_backup_age_seconds", "Seconds since the last successful Backup of a site.",
                   ["namespace", "site"], registry=REGISTRY)


def record_backup_success(namespace: str, site: str, when: float) -> None:
    LAST_BACKUP.labels(namespace, site).set(when)
    BACKUP_AGE.labels(namespace, site).set_function(lambda: time.time() - when)


def serve(port: int) -> None:
    start_http_server(port, addr="0.0.0.0", registry=REGISTRY)  # noqa: S104 - scraped on the pod IP
