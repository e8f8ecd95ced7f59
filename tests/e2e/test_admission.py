"""The generated CRD on a real API server: structural, defaulted, explained (its refusals of bad
resources are rows of test_bad_inputs.py)."""

from __future__ import annotations

import copy
import os
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
