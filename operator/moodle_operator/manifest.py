"""The shared backup manifest module (docs/backup-manifest.md), one file for Compose and Kubernetes.

In the repository it lives in the collection's module_utils; the operator image copies it next to
this package and points MOODLE_BACKUP_MANIFEST_PY at it. Loaded by path so there is one copy in git.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

_REPO_COPY = (Path(__file__).resolve().parents[2] / "collections/ansible_collections/moodle/platform"
              / "plugins/module_utils/_backup_manifest.py")


def _load():
    path = Path(os.environ.get("MOODLE_BACKUP_MANIFEST_PY", _REPO_COPY))
    if not path.is_file():
        raise ImportError(f"backup manifest module not found at {path} (set MOODLE_BACKUP_MANIFEST_PY)")
    spec = importlib.util.spec_from_file_location("moodle_platform_backup_manifest", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


backup_manifest = _load()
