"""Render the moodle chart for a MoodleSite with ``helm template`` (Helm has no Python API; the
operator image ships the same helm binary and chart the deploy role uses)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import yaml

_REPO_CHART = (Path(__file__).resolve().parents[2] / "collections" / "ansible_collections" / "moodle" / "platform"
               / "charts" / "moodle")


class RenderError(ValueError):
    """The chart refused the values (for example the replicas/RWX guard); the message says why."""


def render_chart(release: str, namespace: str, values: dict, *, kube_version: str) -> list[dict]:
    helm = os.environ.get("MOODLE_OPERATOR_HELM", "helm")
    chart = os.environ.get("MOODLE_OPERATOR_CHART", str(_REPO_CHART))
    proc = subprocess.run(
        [helm, "template", release, chart, "--namespace", namespace, "--kube-version", kube_version,
         "--values", "-"],
        input=json.dumps(values), capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and "--debug" not in ln]
        raise RenderError(lines[-1] if lines else f"helm template exited {proc.returncode}")
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]
