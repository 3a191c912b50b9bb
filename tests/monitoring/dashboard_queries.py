"""Every PromQL expression of the Grafana dashboards, run against a real Prometheus.

A dashboard panel that can never show data is a bug: each expression must return at least one
series.  A dashboard tagged with a database (``postgresql`` or ``mariadb``) is only run against a stack on
that database.  Usage (against the test stack's Prometheus):

    python tests/monitoring/dashboard_queries.py --prometheus http://127.0.0.1:9090 [--db-type pgsql]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import requests

DASHBOARDS = Path(__file__).resolve().parents[2] / (
    "collections/ansible_collections/moodle/platform/roles/monitoring/files/dashboards")


DATABASE_TAGS = {"mariadb": "mariadb", "pgsql": "postgresql"}  # moodle_db_type -> dashboard tag


def expressions(dashboard_dir: Path = DASHBOARDS, db_type: str | None = None) -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, expr) for every target of every panel; with ``db_type`` (mariadb or pgsql)
    only the dashboards that are not tagged for the other database."""
    out = []
    for path in sorted(dashboard_dir.glob("*.json")):
        doc = json.loads(path.read_text())
        other = set(DATABASE_TAGS.values()) - {DATABASE_TAGS[db_type]} if db_type else set()
        if other & set(doc.get("tags", [])):
            continue
        for panel in doc["panels"]:
            for target in panel.get("targets", []):
                out.append((path.name, panel["title"], target["expr"]))
    return out


def query(prometheus: str, expr: str) -> list[dict]:
    res = requests.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=30)
    body = res.json()
    if body.get("status") != "success":
        raise RuntimeError(f"{expr}: {body.get('error', res.text)}")
    return body["data"]["result"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090")
    parser.add_argument("--db-type", choices=sorted(DATABASE_TAGS), default="mariadb",
                        help="the stack's database: dashboards tagged for the other one are left out")
    args = parser.parse_args()
    empty = 0
    for name, title, expr in expressions(db_type=args.db_type):
        try:
            result = query(args.prometheus, expr)
        except RuntimeError as exc:
            print(f"ERROR  {name} / {title}: {exc}")
            empty += 1
            continue
        status = f"{len(result):3d} series" if result else "  NO DATA"
        empty += 0 if result else 1
        print(f"{status}  {name} / {title}: {expr}")
    print(f"{empty} expression(s) without data")
    return 1 if empty else 0


if __name__ == "__main__":
    sys.exit(main())
