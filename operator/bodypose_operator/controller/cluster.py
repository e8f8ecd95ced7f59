"""The Kubernetes calls the controller makes: a Protocol, and the official client behind it.

`Cluster` is what observe and act need and nothing more; the unit tests'
in-memory fake implements it too. `KubeCluster` makes one API client at start-up
(kept in kopf's memo) and reuses it for every call.
"""

from __future__ import annotations

from typing import Any, Protocol, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from bodypose_operator.api.v1alpha1 import GROUP, PLURAL, VERSION
from bodypose_operator.builders.naming import LABEL_RESOURCE
from bodypose_operator.controller.credentials import decode


class Cluster(Protocol):
    def jobs_of(self, namespace: str, resource: str) -> list[Any]:
        """The Jobs (V1Job) labelled as this resource's."""

    def pods_of(self, namespace: str, job: str) -> list[Any]:
        """The pods (V1Pod) of one Job."""

    def create_job(self, manifest: dict[str, Any]) -> bool:
        """Create the Job; False if it already exists."""

    def delete_job(self, namespace: str, name: str) -> None:
        """Delete the Job and, in the background, its pods; nothing if it is gone."""

    def secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        """The Secret's decoded data; None if it does not exist; PermissionError if the
        operator may not read it."""


class KubeCluster:
    """`Cluster` through the official client; also reads and patches the resources."""

    def __init__(self, api_client: client.ApiClient | None = None) -> None:
        self.batch = client.BatchV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)

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
            if exc.status == 403 and "NamespaceTerminating" in str(exc.body):
                return False  # its namespace is going, the resource with it: nothing to do
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

    def secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        """One named Secret (`get`, never list: the operator keeps no copy of Secrets)."""
        try:
            secret = self.core.read_namespaced_secret(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            if exc.status == 403:
                raise PermissionError(f"403 Forbidden for secrets in {namespace}") from exc
            raise
        return decode(cast(dict[str, str] | None, secret.data))

    def get_resource(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The BodyPoseExport, or None if it is gone."""
        try:
            found = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return dict(cast(dict[str, Any], found))

    def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        """A JSON merge patch of the status subresource; nothing if the resource is gone."""
        try:
            self.custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, PLURAL, name, {"status": patch},
                _content_type="application/merge-patch+json",
            )  # fmt: skip
        except ApiException as exc:
            if exc.status != 404:
                raise
