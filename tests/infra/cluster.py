"""pytest fixtures: a local Kubernetes cluster with fake GPU pools, tools, and MinIO.

Registered for the whole suite by `pytest_plugins = ["tests.infra.cluster"]` in
tests/conftest.py.

    cluster_binaries  session   dict[str, Path]: etcd, kube-*, kubectl, kwok, helm
    cluster           session   LocalCluster (devcluster/controlplane.py), started
    namespace         function  str: a fresh namespace enforcing the restricted
                                Pod Security Standard, deleted afterwards
    kubectl           session   Path of the built kubectl
    helm              session   Path of the built helm (no cluster needed)
    minio_endpoint    session   S3Server: MinIO built from its Go module, on loopback

Binaries missing from the cache are built on first use (hack/cluster/build.sh);
that takes minutes, so its progress is shown even while pytest captures output.
`make test` builds them before pytest starts, which keeps the build out of any
test's timeout.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devcluster.controlplane import LocalCluster, ensure_binaries
from devcluster.minio import S3Server, start_minio


def _build(config: pytest.Config, components: tuple[str, ...] = ()) -> dict[str, Path]:
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is None:
        return ensure_binaries(components, progress=sys.stderr)
    # A cold build is silent for minutes otherwise: let its progress through.
    with capture.global_and_fixture_disabled():
        return ensure_binaries(components, progress=sys.stderr)


@pytest.fixture(scope="session")
def cluster_binaries(pytestconfig: pytest.Config) -> dict[str, Path]:
    return _build(pytestconfig)


@pytest.fixture(scope="session")
def cluster(
    cluster_binaries: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalCluster]:
    started = time.monotonic()
    local = LocalCluster(tmp_path_factory.mktemp("cluster"), cluster_binaries).start()
    from tests.conftest import FIGURES

    FIGURES.append(
        f"local cluster warm start (control plane, 5 nodes Ready, executor): "
        f"{time.monotonic() - started:.1f}s"
    )
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture
def namespace(cluster: LocalCluster) -> Iterator[str]:
    """A fresh namespace enforcing the restricted Pod Security Standard, as the
    operator's namespaces should; ready for pods once its `default` service
    account exists (the controller manager makes it a moment after the namespace)."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    name = f"t-{uuid.uuid4().hex[:8]}"
    core: Any = client.CoreV1Api(cluster.api)  # takes plain manifests
    labels = {"pod-security.kubernetes.io/enforce": "restricted"}
    core.create_namespace({"metadata": {"name": name, "labels": labels}})
    deadline = time.monotonic() + 30
    while True:
        try:
            core.read_namespaced_service_account("default", name)
            break
        except ApiException as exc:
            if exc.status != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    try:
        yield name
    finally:
        # The namespace controller deletes its contents; the executor and kwok
        # end its pods. Nothing waits for that: names are never reused.
        core.delete_namespace(name)


@pytest.fixture(scope="session")
def kubectl(cluster_binaries: dict[str, Path]) -> Path:
    return cluster_binaries["kubectl"]


@pytest.fixture(scope="session")
def helm(cluster_binaries: dict[str, Path]) -> Path:
    return cluster_binaries["helm"]


@pytest.fixture(scope="session")
def minio_endpoint(
    pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[S3Server]:
    """MinIO on 127.0.0.1 with its own credentials, reached through boto3 with an
    endpoint URL exactly as a user's MinIO would be."""
    minio = _build(pytestconfig, ("minio",))["minio"]
    with start_minio(minio, tmp_path_factory.mktemp("minio")) as server:
        yield server
