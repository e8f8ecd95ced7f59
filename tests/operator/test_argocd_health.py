"""The chart's Argo CD health check, run by a real Lua interpreter over real statuses.

The statuses are the operator's own decisions (reconcile against MinIO with the
in-memory cluster); the script is the file the chart ships, evaluated as Argo CD
evaluates it: `obj` is the resource, the script's return value the health.
"""

from __future__ import annotations

import pytest

from bodypose_operator.controller.reconcile import reconcile
from bodypose_operator.settings import Settings
from tests.conftest import S3Endpoint
from tests.support.argocd import LUA, health
from tests.support.operator_fakes import RecordedCluster, body, put_manifest, put_target_manifest


@pytest.fixture(autouse=True)
def _needs_lua() -> None:
    # make test installs lua5.4 (Makefile `tools`); a bare machine says why it is missing.
    assert LUA is not None, "no Lua interpreter: `make tools` installs lua5.4"


def test_building_failed_ready_and_a_new_generation(bucket: str, s3_endpoint: S3Endpoint) -> None:
    cluster, settings = RecordedCluster(), Settings(pending_check_seconds=0)
    resource = body(bucket)
    assert health(resource) == ("Progressing", "Waiting for the operator")

    resource["status"] = reconcile(resource, cluster, settings).status  # type: ignore[arg-type]
    status, message = health(resource)
    assert status == "Progressing" and message.startswith("export: Job created")

    prefix = f"s3://{bucket}/out/ml/demo/{resource['status']['contentKey']}"
    put_manifest(s3_endpoint, f"{prefix}/manifest.json", {"artifacts": []})
    for target in ("a100", "cpu"):
        put_target_manifest(s3_endpoint, prefix, body("any"), target, {"artifacts": []})
    resource["status"] = reconcile(resource, cluster, settings).status  # type: ignore[arg-type]
    assert health(resource) == ("Healthy", "2/2 targets ready")

    resource["metadata"]["generation"] += 1  # a spec change the operator has not seen yet
    assert health(resource) == (
        "Progressing",
        f"Waiting for the operator to observe generation {resource['metadata']['generation']}",
    )


def test_a_wrong_key_is_degraded(bucket: str) -> None:
    cluster, settings = RecordedCluster(), Settings(pending_check_seconds=0)
    resource = body(bucket)
    resource["status"] = reconcile(resource, cluster, settings).status  # type: ignore[arg-type]
    cluster.fail(cluster.job("export"), {"ok": False, "reason": "WrongKey",
                                         "message": "wrong key for s3://b/m.tlt"})  # fmt: skip
    resource["status"] = reconcile(resource, cluster, settings).status  # type: ignore[arg-type]
    assert health(resource) == ("Degraded", "WrongKey: export: wrong key for s3://b/m.tlt")
