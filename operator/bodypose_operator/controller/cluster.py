"""The Kubernetes calls the controller makes: a Protocol, and the official client behind it.

`Cluster` is what observe and act need and nothing more; the unit tests'
in-memory fake implements it too. `KubeCluster` makes one API client at start-up
(kept in kopf's memo) and reuses it for every call.
"""

from __future__ import annotations

from typing import Any, Protocol, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from bodypose_operator.api import queues
from bodypose_operator.api.v1alpha1 import GROUP, PLURAL, VERSION
from bodypose_operator.builders.naming import LABEL_RESOURCE
from bodypose_operator.controller.artifacts import CONNECTIONS
from bodypose_operator.controller.credentials import decode


class WorkloadsUnavailable(Exception):
    """Kueue's Workloads cannot be read: their API is not served, or the operator may not
    read them. The message says which, for the status."""


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

    def workload_of(self, namespace: str, job_uid: str) -> dict[str, Any] | None:
        """The Workload Kueue made for the Job of this uid; None while there is none;
        WorkloadsUnavailable when Workloads cannot be read."""

    def node_labels(self, selector: dict[str, str]) -> list[tuple[str, dict[str, str]]]:
        """(name, labels) of every node the nodeSelector selects (all nodes for an empty
        one); PermissionError if the operator may not list nodes."""


def label_selector(selector: dict[str, str]) -> str:
    """A nodeSelector as a list call's label selector (`a=1,b=2`; "" selects every node)."""
    return ",".join(f"{key}={value}" for key, value in sorted(selector.items()))


def api_client() -> client.ApiClient:
    """A client of the loaded configuration whose connection pool holds every pass that
    can run at once: the client's default (5 per CPU: 10 on 2 cores) made a burst's
    extra passes each open, and drop, a TLS connection of their own ("Connection pool
    is full" in the operator's log, `make bench-operator`)."""
    config = client.Configuration.get_default_copy()
    config.connection_pool_maxsize = CONNECTIONS
    return client.ApiClient(config)


class KubeCluster:
    """`Cluster` through the official client; also reads and patches the resources."""

    def __init__(self, api_client: client.ApiClient | None = None) -> None:
        self.batch = client.BatchV1Api(api_client)
        self.api = self.batch.api_client
        self.core = client.CoreV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self.apis = client.ApisApi(api_client)
        # The Workload API version this cluster serves, found once (discovery).
        self._workload_version: str | None = None

    def jobs_of(self, namespace: str, resource: str) -> list[Any]:
        selector = f"{LABEL_RESOURCE}={resource}"
        return list(self.batch.list_namespaced_job(namespace, label_selector=selector).items)

    def pods_of(self, namespace: str, job: str) -> list[Any]:
        return list(
            self.core.list_namespaced_pod(namespace, label_selector=f"job-name={job}").items
        )

    def _send(self, method: str, path: str, body: dict[str, Any], content_type: str) -> None:
        """One write whose answer nothing reads, the manifest sent as it is; ApiException
        for any answer but 2xx, as the typed methods raise it.

        Why not `BatchV1Api.create_namespaced_job` and its kind: this client's typed
        methods validate a plain manifest into their pydantic model and back before
        sending it, then parse the answer into a model again. In the 1000 x 3 burst of
        `make bench-operator` the Job create alone took 18% of the operator's CPU (py-spy),
        most of it there; the API server validates what it is sent anyway. These are the
        calls the typed methods make themselves (`ApiClient.param_serialize`, `call_api`).
        """
        request = self.api.param_serialize(
            method=method,
            resource_path=path,
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(*request)
        response.read()
        if not 200 <= response.status <= 299:
            raise ApiException.from_response(http_resp=response, body=None, data=None)

    def create_job(self, manifest: dict[str, Any]) -> bool:
        """Create the Job; False if it already exists (deterministic names make this safe)."""
        namespace = manifest["metadata"]["namespace"]
        try:
            self._send(
                "POST", f"/apis/batch/v1/namespaces/{namespace}/jobs", manifest, "application/json"
            )
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

    def node_labels(self, selector: dict[str, str]) -> list[tuple[str, dict[str, str]]]:
        """One list call with the nodeSelector as its label selector (nodes are cluster-scoped:
        the chart's ClusterRole grants get and list on them)."""
        try:
            listed = self.core.list_node(label_selector=label_selector(selector))
        except ApiException as exc:
            if exc.status == 403:
                raise PermissionError("403 Forbidden for nodes (list)") from exc
            raise
        found: list[tuple[str, dict[str, str]]] = []
        for item in listed.items:
            meta = cast(Any, item).metadata
            found.append((str(meta.name), dict(meta.labels or {})))
        return found

    def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The Job as a watch event carries it (a plain dict, camelCase), or None if gone."""
        try:
            job = self.batch.read_namespaced_job(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return cast(dict[str, Any], self.api.sanitize_for_serialization(job))

    def _workload_api_version(self) -> str:
        """The newest Workload version the cluster serves (discovery of Kueue's group, once
        found; asked again while Kueue is not installed)."""
        if self._workload_version is None:
            groups = self.apis.get_api_versions().groups or []
            served = {v.version for g in groups if g.name == queues.GROUP for v in g.versions or []}
            found = next((v for v in queues.WORKLOAD_VERSIONS if v in served), None)
            if found is None:
                raise WorkloadsUnavailable(
                    f"Kueue's Workload API ({queues.GROUP} "
                    f"{'/'.join(queues.WORKLOAD_VERSIONS)}) is not served: is Kueue installed?"
                )
            self._workload_version = found
        return self._workload_version

    def workload_of(self, namespace: str, job_uid: str) -> dict[str, Any] | None:
        """One list call: Kueue labels the Workload it makes for a Job with the Job's uid
        (and makes the Job its owner, checked too)."""
        version = self._workload_api_version()
        try:
            listed = self.custom.list_namespaced_custom_object(
                queues.GROUP, version, namespace, queues.WORKLOADS,
                label_selector=f"{queues.JOB_UID_LABEL}={job_uid}",
            )  # fmt: skip
        except ApiException as exc:
            if exc.status == 404:
                self._workload_version = None  # Kueue removed, or another version now
                raise WorkloadsUnavailable(
                    f"Kueue's Workload API ({queues.GROUP}/{version}) is not served: "
                    "is Kueue installed?"
                ) from exc
            if exc.status == 403:
                raise WorkloadsUnavailable(
                    f"the operator may not list {queues.WORKLOADS}.{queues.GROUP} in "
                    f"{namespace} (install the chart with kueue.enabled=true)"
                ) from exc
            raise
        for item in cast(dict[str, Any], listed).get("items") or []:
            owners = (item.get("metadata") or {}).get("ownerReferences") or []
            if any(o.get("uid") == job_uid for o in owners):
                return dict(item)
        return None

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
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}/status"
        try:
            self._send("PATCH", path, {"status": patch}, "application/merge-patch+json")
        except ApiException as exc:
            if exc.status != 404:
                raise
