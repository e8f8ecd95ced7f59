"""The generated CRD on a real API server: structural, defaulted, explained (its refusals of bad
resources are rows of test_bad_inputs.py)."""

from __future__ import annotations

import copy
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from devcluster.controlplane import LocalCluster
from devcluster.crd import install_crd

GOOD: dict[str, Any] = {
    "apiVersion": "bodypose.dev/v1alpha1",
    "kind": "BodyPoseExport",
    "metadata": {"name": "demo"},
    "spec": {
        "model": {"uri": "s3://models/bpnet.tlt", "keySecretRef": {"name": "k", "key": "key"}},
        "input": {"height": 320, "width": 448},
        "precision": "fp16",
        "targets": [{"name": "a100"}],
        "output": {"uri": "s3://artifacts/bpnet"},
    },
}


@pytest.fixture(scope="module")
def crd(cluster: LocalCluster) -> LocalCluster:
    install_crd(cluster.api_client())
    return cluster


def create(cluster: LocalCluster, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    api = client.CustomObjectsApi(cluster.api_client())
    result: dict[str, Any] = api.create_namespaced_custom_object(
        "bodypose.dev", "v1alpha1", namespace, "bodyposeexports", body
    )
    return result


def with_spec(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(GOOD)
    body["spec"].update(changes)
    return body


def test_good_resource_gets_defaults(crd: LocalCluster, namespace: str) -> None:
    created = create(crd, namespace, GOOD)
    spec = created["spec"]
    assert spec["engine"]["maxBatchSize"] == 1
    assert spec["engine"]["maxWorkspaceSize"] == 2 << 30
    assert spec["input"]["channels"] == 3
    assert spec["targets"][0]["backend"] == "tensorrt"


def test_kubectl_explain_and_columns(crd: LocalCluster, namespace: str, kubectl: Path) -> None:
    env = {**os.environ, "KUBECONFIG": str(crd.kubeconfig)}
    # The API server publishes a new CRD's OpenAPI a few seconds after it is Established.
    deadline = time.monotonic() + 60
    while True:
        done = subprocess.run(
            [kubectl, "explain", "bpe.spec.input.height"], env=env, capture_output=True, text=True
        )
        if done.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert done.returncode == 0, done.stderr
    explain = done.stdout
    assert "multiple of 8" in explain
    create(crd, namespace, GOOD)
    table = subprocess.run(
        [kubectl, "get", "bpe", "-n", namespace],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    header = table.splitlines()[0].split()
    assert header == ["NAME", "PRECISION", "RESOLUTION", "READY", "PHASE", "AGE"]
    assert "fp16" in table


HOPPER_LABELS = {"nvidia.com/gpu.compute.major": "9", "nvidia.com/gpu.compute.minor": "0"}
RTX_REFUSED = (
    "computeCapabilities: tensorrt-rtx builds for 7.5, 8.0, 8.6, 8.9, 12.0, 12.1 only (9.0 is "
    "Hopper, where its engines do not run: build those with tensorrt)"
)


def rtx_target(**fields: Any) -> dict[str, Any]:
    return {"name": "rtx", "backend": "tensorrt-rtx", **fields}


@pytest.mark.parametrize(
    "target",
    [
        rtx_target(computeCapabilities=["9.0"]),
        rtx_target(nodeSelector={"bodypose.dev/pool": "h100", **HOPPER_LABELS}),
    ],
    ids=["named-9.0", "hopper-pool-labels"],
)
def test_a_hopper_tensorrt_rtx_target_is_refused_the_same_way_named_or_by_labels(
    crd: LocalCluster, namespace: str, target: dict[str, Any]
) -> None:
    """The pool's labels name what the build is for when the target names nothing
    (builders/jobs.py), so a Hopper pool by its labels gets the refusal a Hopper
    capability named gets: from the API server and from the operator's own check."""
    from bodypose_operator.api.v1alpha1 import BodyPoseExportSpec

    body = with_spec(targets=[target])
    with pytest.raises(client.ApiException) as refused:
        create(crd, namespace, body)
    assert refused.value.status == 422
    assert RTX_REFUSED in str(refused.value.body)
    with pytest.raises(ValueError, match=re.escape(RTX_REFUSED)):
        BodyPoseExportSpec.model_validate(body["spec"])


@pytest.mark.parametrize(
    "target",
    [
        rtx_target(nodeSelector={"nvidia.com/gpu.compute.major": "8",
                                 "nvidia.com/gpu.compute.minor": "9"}),
        rtx_target(nodeSelector={"nvidia.com/gpu.compute.major": "12",
                                 "nvidia.com/gpu.compute.minor": "0"}),
        # Named capabilities are what the build is for, whatever pool builds it.
        rtx_target(nodeSelector=HOPPER_LABELS, computeCapabilities=["8.9"]),
    ],
    ids=["l4-pool-labels", "blackwell-rtx-pool-labels", "named-on-a-hopper-pool"],
)  # fmt: skip
def test_a_tensorrt_rtx_target_for_a_supported_pool_is_accepted(
    crd: LocalCluster, namespace: str, target: dict[str, Any]
) -> None:
    created = create(crd, namespace, with_spec(targets=[target]))
    assert created["spec"]["targets"][0]["backend"] == "tensorrt-rtx"
