"""Thin Kubernetes I/O for the handlers: server-side apply, get, list, create-if-absent, patch."""

from __future__ import annotations

import os

import kubernetes
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ConflictError, NotFoundError

from . import FIELD_MANAGER


def api_client() -> kubernetes.client.ApiClient:
    """In a pod: its ServiceAccount. Elsewhere: $KUBECONFIG (tests point it at the operator's token)."""
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config = kubernetes.client.Configuration()
        kubernetes.config.load_incluster_config(client_configuration=config)
        return kubernetes.client.ApiClient(config)
    return kubernetes.config.new_client_from_config(config_file=os.environ.get("KUBECONFIG"))


class Kube:
    def __init__(self, client: kubernetes.client.ApiClient):
        self.client = client
        self.dyn = DynamicClient(client)

    def _res(self, api_version: str, kind: str):
        return self.dyn.resources.get(api_version=api_version, kind=kind)

    def server_version(self) -> str:
        info = kubernetes.client.VersionApi(self.client).get_code()
        return info.git_version.lstrip("v").split("+")[0].split("-")[0]

    def apply(self, obj: dict) -> dict:
        res = self._res(obj["apiVersion"], obj["kind"])
        out = res.server_side_apply(body=obj, namespace=obj["metadata"].get("namespace"),
                                    field_manager=FIELD_MANAGER, force_conflicts=True)
        return out.to_dict()

    def get(self, api_version: str, kind: str, name: str, namespace: str) -> dict | None:
        try:
            return self._res(api_version, kind).get(name=name, namespace=namespace).to_dict()
        except NotFoundError:
            return None

    def list(self, api_version: str, kind: str, namespace: str, label_selector: str) -> list[dict]:
        items = self._res(api_version, kind).get(namespace=namespace, label_selector=label_selector)
        return [i.to_dict() for i in items.items]

    def create_if_absent(self, obj: dict) -> bool:
        try:
            self._res(obj["apiVersion"], obj["kind"]).create(body=obj, namespace=obj["metadata"]["namespace"])
            return True
        except ConflictError:
            return False

    def delete_key(self, key: str, namespace: str) -> None:
        api_version, kind, name = key.rsplit("/", 2)
        try:
            self._res(api_version, kind).delete(name=name, namespace=namespace)
        except NotFoundError:
            pass

    def merge_patch(self, api_version: str, kind: str, name: str, namespace: str, patch: dict) -> dict:
        res = self._res(api_version, kind)
        return res.patch(body=patch, name=name, namespace=namespace,
                         content_type="application/merge-patch+json").to_dict()
