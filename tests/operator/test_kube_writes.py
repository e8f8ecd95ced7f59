"""KubeCluster's two writes sent as plain manifests (`KubeCluster._send`), on the real
API server: a Job created once and found, created again and told apart (409), refused
with the API server's own reason; a status patch that lands, and one whose resource is
gone. What the typed client methods did before, without their model round trips."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from bodypose_operator.builders.naming import LABEL_RESOURCE
from tests.support.operator_api import Served
from tests.support.operator_fakes import body


def _job(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": {LABEL_RESOURCE: "r"}},
        "spec": {"suspend": True, "template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}],
        }}},
    }  # fmt: skip


def test_a_job_is_created_once_and_a_refused_one_raises_the_api_servers_reason(
    served: Served,
) -> None:
    kube, namespace = served.kube, served.namespace
    job = _job(namespace, "once")
    assert kube.create_job(job) is True
    assert kube.create_job(job) is False  # 409: deterministic names make a retry safe
    (made,) = kube.jobs_of(namespace, "r")
    assert made.metadata.name == "once"
    assert made.spec.template.spec.containers[0].image == "busybox"

    bad = _job(namespace, "bad")
    bad["spec"]["template"]["spec"]["restartPolicy"] = "Always"  # not allowed in a Job
    with pytest.raises(ApiException) as refused:
        kube.create_job(bad)
    assert refused.value.status == 422
    assert "restartPolicy" in str(refused.value.body)
    assert [j.metadata.name for j in kube.jobs_of(namespace, "r")] == ["once"]


def test_a_status_patch_lands_and_one_for_a_deleted_resource_is_nothing(
    served: Served, bucket: str
) -> None:
    resource = body(bucket)
    resource["metadata"]["name"] = "patched"
    served.apply(resource)
    served.kube.patch_status(served.namespace, "patched", {"phase": "Pending"})
    assert served.get("patched")["status"]["phase"] == "Pending"
    served.kube.patch_status(served.namespace, "patched", {"phase": None})  # merge patch
    assert "phase" not in (served.get("patched").get("status") or {})

    served.custom.delete_namespaced_custom_object(
        "bodypose.dev", "v1alpha1", served.namespace, "bodyposeexports", "patched"
    )
    served.kube.patch_status(served.namespace, "patched", {"phase": "Ready"})  # 404: nothing
    assert served.kube.get_resource(served.namespace, "patched") is None
