"""Shared fixtures for the monitoring tests (promtool location, repository paths)."""

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "collections/ansible_collections/moodle/platform/roles/monitoring"
RULES = ROLE / "files/rules"
DASHBOARDS = ROLE / "files/dashboards"
TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def promtool() -> str:
    """promtool from Debian's prometheus package (`make monitoring-tools` unpacks it)."""
    path = os.environ.get("PROMTOOL") or shutil.which("promtool")
    if not path or not os.access(path, os.X_OK):
        pytest.fail("promtool not found: run `make monitoring-tools` or set PROMTOOL=/path/to/promtool")
    return path
