"""pytest fixtures: a session-scoped local cluster with fake GPU pools, and a namespace per test."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.infra.controlplane import LocalCluster
from tests.infra.executor import PodExecutor
from tests.infra.nodes import create_pools


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    started = time.monotonic()
    local = LocalCluster(tmp_path_factory.mktemp("cluster"))
    try:
        local.start()
        create_pools(local.api_client())
        executor = PodExecutor(local.api_client()).start()
    except BaseException:
        local.stop()
        raise
    from tests.conftest import FIGURES

    FIGURES.append(
        f"local control plane start (binaries cached): {time.monotonic() - started:.1f}s"
    )
    try:
        yield local
    finally:
        executor.stop()
        local.stop()


@pytest.fixture
def namespace(cluster: LocalCluster) -> Iterator[str]:
    """A fresh namespace enforcing the restricted Pod Security Standard."""
    from kubernetes import client

    name = f"t-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(cluster.api_client())
    core.create_namespace(
        {
            "metadata": {
                "name": name,
                "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
            }
        }
    )
    try:
        yield name
    finally:
        core.delete_namespace(name)


@pytest.fixture(scope="session")
def kubectl(cluster: LocalCluster) -> Path:
    return cluster.bins["kubectl"]
