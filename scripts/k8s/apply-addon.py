"""Server-side apply a cluster add-on (scripts/k8s/addons/*.yaml) with @KEY@ placeholders filled in.

    python apply-addon.py KUBECONFIG ADDON.yaml KEY=VALUE...

Uses the kubernetes client from the project's venv (make setup)."""

from __future__ import annotations

import sys
from pathlib import Path

import kubernetes
import yaml
from kubernetes.dynamic import DynamicClient


def main(kubeconfig: str, addon: str, *pairs: str) -> None:
    text = Path(addon).read_text()
    for pair in pairs:
        key, value = pair.split("=", 1)
        text = text.replace(f"@{key}@", value)
    if "@" in "".join(line.split("#")[0] for line in text.splitlines()):
        sys.exit(f"{addon}: a placeholder is left unfilled")
    dyn = DynamicClient(kubernetes.config.new_client_from_config(config_file=kubeconfig))
    for obj in (d for d in yaml.safe_load_all(text) if d):
        dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"]).server_side_apply(
            body=obj, namespace=obj["metadata"].get("namespace"), field_manager="moodle-k8s-cluster",
            force_conflicts=True)
        print(f"applied {obj['kind']} {obj['metadata']['name']}")


if __name__ == "__main__":
    main(*sys.argv[1:])
