"""The few Kubernetes calls the controller makes, through the official client."""

from __future__ import annotations

from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from bodypose_operator.builders.naming import LABEL_RESOURCE


class ClusterView:
    """Jobs and pods of one BodyPoseExport, and creating/deleting its Jobs."""

    def __init__(self, api_client: client.ApiClient | None = None) -> None:
        self.batch = client.BatchV1Api(api_client)
        self.core = client.CoreV1Api(api_client)

    def jobs_of(self, namespace: str, resource: str) -> list[Any]:
        selector = f"{LABEL_RESOURCE}={resource}"
        return list(self.batch.list_namespaced_job(namespace, label_selector=selector).items)

    def pods_of(self, namespace: str, job: str) -> list[Any]:
        return list(
            self.core.list_namespaced_pod(namespace, label_selector=f"job-name={job}").items
        )

    def create_job(self, manifest: dict[str, Any]) -> bool:
        """Create the Job; False if it already exists (deterministic names make this safe)."""
        try:
            self.batch.create_namespaced_job(manifest["metadata"]["namespace"], cast(Any, manifest))
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return True

    def delete_job(self, namespace: str, name: str) -> None:
        try:
            self.batch.delete_namespaced_job(
                name, namespace, body=client.V1DeleteOptions(propagation_policy="Background")
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
