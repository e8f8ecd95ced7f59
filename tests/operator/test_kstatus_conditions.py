"""Reconciling and Stalled as kstatus reads them: present and True only while they hold."""

from __future__ import annotations

import json
from typing import Any

from bodypose_operator.controller.reconcile import reconcile
from bodypose_operator.settings import Settings
from tests.conftest import S3Endpoint
from tests.support.operator_fakes import RecordedCluster, body, put_manifest, put_target_manifest


def types(status: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in status["conditions"]}


def test_reconciling_while_working_stalled_on_failure_neither_when_ready(
    bucket: str, s3_endpoint: S3Endpoint
) -> None:
    cluster, settings = RecordedCluster(), Settings(pending_check_seconds=0)
    resource = body(bucket)
    first = reconcile(resource, cluster, settings)  # type: ignore[arg-type]
    assert types(first.status)["Reconciling"] == "True" and "Stalled" not in types(first.status)
    reconciling = next(c for c in first.status["conditions"] if c["type"] == "Reconciling")
    assert reconciling["observedGeneration"] == resource["metadata"]["generation"]

    resource["status"] = first.status
    prefix = f"s3://{bucket}/out/ml/demo/{first.status['contentKey']}"
    put_manifest(s3_endpoint, f"{prefix}/manifest.json", {"artifacts": []})
    for target in ("a100", "cpu"):
        put_target_manifest(s3_endpoint, prefix, body("any"), target, {"artifacts": []})
    ready = reconcile(resource, cluster, settings)  # type: ignore[arg-type]
    assert ready.status["phase"] == "Ready"
    assert "Reconciling" not in types(ready.status) and "Stalled" not in types(ready.status)


def test_a_failure_that_needs_a_spec_change_is_stalled(bucket: str) -> None:
    cluster, settings = RecordedCluster(), Settings(pending_check_seconds=0)
    resource = body(bucket)
    resource["status"] = reconcile(resource, cluster, settings).status  # type: ignore[arg-type]
    cluster.fail(cluster.job("export"), {"ok": False, "reason": "WrongKey",
                                         "message": "wrong key for s3://b/m.tlt"})  # fmt: skip
    out = reconcile(resource, cluster, settings)  # type: ignore[arg-type]
    assert types(out.status) == {
        "Ready": "False", "Exported": "False", "Stalled": "True",
    }, json.dumps(out.status["conditions"])  # fmt: skip
    stalled = next(c for c in out.status["conditions"] if c["type"] == "Stalled")
    assert (stalled["reason"], stalled["message"]) == (
        "WrongKey",
        "export: wrong key for s3://b/m.tlt",
    )
