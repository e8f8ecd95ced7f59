"""What the README promises of the looks no event triggers, on the real API server and MinIO.

- the safety resync (`BODYPOSE_RESYNC_SECONDS`, the chart's `resyncSeconds`, 10 minutes by
  default): the operator's own scheduled check reconciles an unfinished resource, so a change
  no event announces (a stage's manifest written while its Job's events were missed) is seen;
  a Ready resource has none; and no finalizer holds the resource (a kopf timer would put
  one on it): it is deleted at once and the operator forgets it;
- a resource Stalled on S3 (access denied) is looked at again every two minutes, so a policy
  granted later heals it with no change to the resource.

The resync runs in the operator's own process (`bodypose-operator`, kopf and all, a short
interval); the healing in the operator's service in this process (`served`), with the
two minutes shortened. No pod runs: a stage completes when the test writes its manifest.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from bodypose_operator.controller import decide
from bodypose_operator.settings import Settings
from devcluster.controlplane import LocalCluster
from devcluster.minio import S3Server, add_tenant
from devcluster.operator_process import start_operator
from tests.conftest import S3Endpoint
from tests.infra.cluster import fresh_namespace
from tests.infra.wait import wait_for
from tests.support.operator_api import Served
from tests.support.operator_fakes import (
    CREDENTIALS,
    body,
    cond,
    put_manifest,
    put_target_manifest,
    target_folder,
)

CHART = Path(__file__).resolve().parents[2] / "charts" / "bodypose-operator"


def test_the_resync_is_ten_minutes_by_default_in_the_operator_and_the_chart() -> None:
    assert Settings().resync_seconds == 600.0
    assert Settings.from_env({}).resync_seconds == 600.0
    assert yaml.safe_load((CHART / "values.yaml").read_text())["resyncSeconds"] == 600
    deployment = (CHART / "templates" / "deployment.yaml").read_text()
    assert "BODYPOSE_RESYNC_SECONDS" in deployment and ".Values.resyncSeconds" in deployment


def _status(custom: Any, namespace: str, name: str) -> dict[str, Any]:
    found = custom.get_namespaced_custom_object(
        "bodypose.dev", "v1alpha1", namespace, "bodyposeexports", name
    )
    return dict(found.get("status") or {})


def test_the_resync_sees_what_no_event_announced_and_a_ready_resource_has_none(
    api_server: LocalCluster, s3_endpoint: S3Endpoint, bucket: str, tmp_path: Path
) -> None:
    with fresh_namespace(api_server) as namespace:
        core: Any = client.CoreV1Api(api_server.api)
        custom: Any = client.CustomObjectsApi(api_server.api)
        core.create_namespaced_secret(namespace, {
            "metadata": {"name": CREDENTIALS}, "stringData": s3_endpoint.environment(),
        })  # fmt: skip
        resource = body(bucket)
        resource["metadata"] = {"name": "quiet"}
        custom.create_namespaced_custom_object(
            "bodypose.dev", "v1alpha1", namespace, "bodyposeexports", resource
        )
        # A resync every 2 s; the pending check (a look at Jobs that do not start, which
        # here none do) out of the way, so only the resync can look.
        operator = start_operator(
            api_server.kubeconfig, tmp_path / "operator.log",
            extra_env={"BODYPOSE_RESYNC_SECONDS": "2", "BODYPOSE_PENDING_CHECK_SECONDS": "3600"},
            namespaces=(namespace,),
        )  # fmt: skip
        try:
            exporting = wait_for(
                lambda: _status(custom, namespace, "quiet").get("phase") == "Exporting"
                and _status(custom, namespace, "quiet"),
                60, "the export Job",
            )  # fmt: skip
            prefix = f"s3://{bucket}/out/{namespace}/quiet/{exporting['contentKey']}"
            # The export's manifest appears while its Job runs on: no event says so.
            put_manifest(s3_endpoint, f"{prefix}/manifest.json", {"artifacts": []})
            wait_for(
                lambda: _status(custom, namespace, "quiet").get("phase") == "Building",
                30, "the resync to see the export complete",
            )  # fmt: skip
            for target in ("a100", "cpu"):
                put_target_manifest(s3_endpoint, prefix, body("any"), target, {
                    "artifacts": [{"kind": "engine", "path": f"{prefix}/targets/{target}/e"}],
                })  # fmt: skip
            wait_for(
                lambda: _status(custom, namespace, "quiet").get("phase") == "Ready",
                30, "the resync to see the builds complete",
            )  # fmt: skip
            # Ready: no timer. A target's manifest gone (the next pass would say Building)
            # stays unseen through many resync intervals.
            s3_endpoint.client().delete_object(
                Bucket=bucket,
                Key=target_folder(
                    f"out/{namespace}/quiet/{exporting['contentKey']}", body("any"), "cpu"
                )
                + "/manifest.json",
            )
            with pytest.raises(TimeoutError):
                wait_for(
                    lambda: _status(custom, namespace, "quiet").get("phase") != "Ready",
                    10, "a pass over a Ready resource",
                )  # fmt: skip
            # An edit reaches the operator through the resource's watch though kopf builds
            # no diff base (handlers.NoDiffBase), and the status follows the spec.
            targets = [*resource["spec"]["targets"], {"name": "t4"}]
            custom.patch_namespaced_custom_object(
                "bodypose.dev", "v1alpha1", namespace, "bodyposeexports", "quiet",
                {"spec": {"targets": targets}},
            )  # fmt: skip
            edited = wait_for(
                lambda: _status(custom, namespace, "quiet").get("observedGeneration") == 2
                and _status(custom, namespace, "quiet"),
                30, "the status to follow the edit",
            )  # fmt: skip
            assert [t["name"] for t in edited["targets"]] == ["a100", "cpu", "t4"]
            assert edited["phase"] == "Building"
            found = custom.get_namespaced_custom_object(
                "bodypose.dev", "v1alpha1", namespace, "bodyposeexports", "quiet"
            )
            assert not found["metadata"].get("finalizers"), found["metadata"]
            kopf_marks = [k for k in found["metadata"].get("annotations") or {} if "kopf" in k]
            assert kopf_marks == [], kopf_marks
            custom.delete_namespaced_custom_object(
                "bodypose.dev", "v1alpha1", namespace, "bodyposeexports", "quiet"
            )
            names = [
                item["metadata"]["name"]
                for item in custom.list_namespaced_custom_object(
                    "bodypose.dev", "v1alpha1", namespace, "bodyposeexports"
                )["items"]
            ]
            assert names == []  # gone at once: nothing waited on the operator
            wait_for(
                lambda: "deleted: its Jobs go with it" in operator.log.read_text(),
                30, "the operator to forget the deleted resource",
            )  # fmt: skip
        finally:
            operator.stop()
        log = operator.log.read_text()
        assert "Traceback" not in log, log[-3000:]


def _grant_read(server: S3Server, user: str, bucket: str) -> None:
    """Attach to MinIO user `user` a policy that lets it read `bucket` (MinIO's admin API,
    as devcluster.minio.add_tenant makes its policies)."""
    from minio.credentials.providers import StaticProvider
    from minio.minioadmin import MinioAdmin

    admin = MinioAdmin(
        endpoint=server.url.removeprefix("http://"),
        credentials=StaticProvider(server.access_key, server.secret_key),
        region=server.region,
        secure=False,
    )
    name = f"{user}-reads-{bucket}"
    resources = [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]
    admin.policy_add(name, policy={"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": resources},
    ]})  # fmt: skip
    admin.attach_policy([name], user=user)


def test_a_resource_stalled_on_s3_heals_once_the_policy_is_granted(
    served: Served, minio_endpoint: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two minutes in the operator (tests/operator/test_tenancy.py holds it to 120 s); here 1 s.
    monkeypatch.setattr(decide, "REFUSED_RETRY_SECONDS", 1.0)
    run = uuid.uuid4().hex[:8]
    own, models = f"own-{run}", f"models-{run}"
    tenant = add_tenant(minio_endpoint, own)  # may use bucket `own`, nothing else
    minio_endpoint.client().create_bucket(Bucket=models)
    minio_endpoint.client().put_object(Bucket=models, Key="models/m.tlt", Body=b"x" * 2048)
    core: Any = client.CoreV1Api(served.api.api)
    core.create_namespaced_secret(served.namespace, {
        "metadata": {"name": "tenant"}, "stringData": tenant.environment(),
    })  # fmt: skip
    resource = body(models)
    resource["metadata"]["name"] = "healing"
    resource["spec"]["output"] = {"uri": f"s3://{own}/out",
                                  "credentialsSecretRef": {"name": "tenant"}}  # fmt: skip
    served.apply(resource)

    stalled = served.reconcile("healing")
    assert (stalled["phase"], cond(stalled, "Ready")["reason"]) == ("Failed", "AccessDenied")
    assert cond(stalled, "Stalled")["status"] == "True" and served.jobs("healing") == []
    # The service's own look, on a timer (no event will come): it keeps looking.
    assert served.service.checks._timers[(served.namespace, "healing")].interval == 1.0

    _grant_read(minio_endpoint, tenant.access_key, models)
    healed = wait_for(
        lambda: (s := dict(served.get("healing").get("status") or {})).get("phase")
        == "Exporting" and s,
        60, "the resource to heal by itself",
    )  # fmt: skip
    assert not any(c["type"] == "Stalled" for c in healed["conditions"])
    (export,) = served.jobs("healing")
    assert export.metadata.labels["bodypose.dev/stage"] == "export"
