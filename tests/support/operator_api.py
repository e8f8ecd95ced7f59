"""The operator's service in the test process against the real API server (the `served`
fixture of tests/operator/conftest.py): what kopf's handlers would call, called by the test."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bodypose_operator.controller.cluster import KubeCluster
from bodypose_operator.controller.service import ExportService
from devcluster.controlplane import LocalCluster


class Events:
    """The events a service posts (kopf's poster needs kopf's own tasks)."""

    def __init__(self) -> None:
        self.posted: list[tuple[str, str, str]] = []

    def __call__(self, body: dict[str, Any], type_: str, reason: str, message: str) -> None:
        self.posted.append((type_, reason, message))

    def reasons(self) -> list[str]:
        return [reason for _, reason, _ in self.posted]


@dataclass
class Served:
    """The operator's service in this process against the real API server: what the
    handlers would call, called by the test (controller/handlers.py is thin)."""

    api: LocalCluster
    namespace: str
    service: ExportService
    kube: KubeCluster
    events: Events = field(default_factory=Events)

    @property
    def custom(self) -> Any:
        from kubernetes import client

        return client.CustomObjectsApi(self.api.api)

    def apply(self, resource: dict[str, Any]) -> dict[str, Any]:
        """Create the resource on the API server (what `kubectl apply` does the first time)."""
        resource = {**resource, "metadata": {"name": resource["metadata"]["name"]}}
        return dict(self.custom.create_namespaced_custom_object(
            "bodypose.dev", "v1alpha1", self.namespace, "bodyposeexports", resource
        ))  # fmt: skip

    def get(self, name: str) -> dict[str, Any]:
        found = self.kube.get_resource(self.namespace, name)
        assert found is not None
        return found

    def patch_spec(self, name: str, spec: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            "bodypose.dev", "v1alpha1", self.namespace, "bodyposeexports", name, {"spec": spec},
            _content_type="application/merge-patch+json",
        )  # fmt: skip

    def reconcile(self, name: str) -> dict[str, Any]:
        """One pass, as a handler makes it (a create, a spec update, a Job's event), over the
        resource as the API server has it; returns the status it then has."""
        self.service.reconcile(self.get(name))
        return dict(self.get(name).get("status") or {})

    def jobs(self, name: str) -> list[Any]:
        return sorted(self.kube.jobs_of(self.namespace, name), key=lambda j: j.metadata.name)
