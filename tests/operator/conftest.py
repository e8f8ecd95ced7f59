"""Fixtures of the operator's tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bodypose_operator.controller.cluster import KubeCluster
from bodypose_operator.controller.service import ExportService
from bodypose_operator.settings import Settings
from devcluster.controlplane import LocalCluster
from devcluster.crd import install_crd
from tests.conftest import S3Endpoint
from tests.infra.cluster import fresh_namespace
from tests.support.operator_api import Events, Served


@pytest.fixture
def bucket(s3_endpoint: S3Endpoint, s3_bucket: str) -> str:
    """A bucket with a model object at models/m.tlt (its content does not matter here)."""
    s3_endpoint.client().put_object(Bucket=s3_bucket, Key="models/m.tlt", Body=b"x" * 2048)
    return s3_bucket


@pytest.fixture(scope="session")
def api_server(
    cluster_binaries: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalCluster]:
    """The real control plane (API server, controller manager, scheduler, kwok nodes) with
    the CRD installed and no pod ever run: Jobs and their pods exist and stay Pending, so a
    stage completes only when a test writes its manifest to S3. Needs no image. The API
    server writes its audit log (`api_server.audit_log`: who asked what, and how often)."""
    local = LocalCluster(tmp_path_factory.mktemp("api-server"), cluster_binaries, audit=True)
    local.start(executor=False, pretend_pods=False)
    try:
        install_crd(local.api_client())
        yield local
    finally:
        local.stop()


@pytest.fixture
def served(api_server: LocalCluster, s3_endpoint: S3Endpoint) -> Iterator[Served]:
    """A fresh namespace on the real API server holding the Secret `s3-credentials` (the
    test MinIO's account, what the resources of tests/support/operator_fakes.body name),
    and the operator's service watching it with default settings but for the pending
    check (an hour: the pods never start here, and no test wants that look)."""
    from kubernetes import client

    from tests.support.operator_fakes import CREDENTIALS

    with fresh_namespace(api_server) as namespace:
        core: Any = client.CoreV1Api(api_server.api)
        core.create_namespaced_secret(namespace, {
            "metadata": {"name": CREDENTIALS}, "stringData": s3_endpoint.environment(),
        })  # fmt: skip
        kube = KubeCluster(api_server.api)
        events = Events()
        # Neither the first look at a pending Job nor the safety resync comes in a test.
        settings = Settings(pending_check_seconds=3600, resync_seconds=7200)
        service = ExportService(settings, kube, events=events)
        try:
            yield Served(api_server, namespace, service, kube, events)
        finally:
            with contextlib.suppress(Exception):
                service.checks.cancel_all()
