"""Tenants kept apart: a resource's S3 reads and writes use the credentials it names.

Two real MinIO users on the test MinIO, each allowed one bucket (MinIO's admin
API, devcluster.minio.add_tenant). The operator's pass reads the resource's
Secret through the cluster (here the in-memory one of tests/support/operator_fakes.py) and
reaches S3 only with those values: the test process's own AWS_* environment
(MinIO's root account) is never what decides.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from bodypose_operator.controller.credentials import ResourceStores
from bodypose_operator.controller.decide import REFUSED_RETRY_SECONDS
from bodypose_operator.controller.reconcile import reconcile
from bodypose_operator.settings import Settings
from devcluster.minio import S3Server, add_tenant
from tests.conftest import S3Endpoint
from tests.support.operator_fakes import RecordedCluster, body, cond

SETTINGS = Settings(pending_check_seconds=0)


@pytest.fixture(scope="module")
def tenants(minio_endpoint: S3Server) -> dict[str, tuple[str, S3Server]]:
    """Two tenants, a and b: (bucket, account) each; a's bucket holds a model."""
    made = {}
    for name in ("a", "b"):
        bucket = f"tenant-{name}-{uuid.uuid4().hex[:8]}"
        made[name] = (bucket, add_tenant(minio_endpoint, bucket))
    bucket_a, account_a = made["a"]
    account_a.client().put_object(Bucket=bucket_a, Key="models/m.tlt", Body=b"x" * 2048)
    bucket_b, account_b = made["b"]
    account_b.client().put_object(Bucket=bucket_b, Key="models/m.tlt", Body=b"y" * 2048)
    account_b.client().put_object(Bucket=bucket_b, Key="out/keep.txt", Body=b"b's own")
    return made


def cluster_of(**secrets: dict[str, str]) -> RecordedCluster:
    return RecordedCluster(secrets=secrets)


def listing(server: S3Server, bucket: str) -> dict[str, str]:
    found = server.client().list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: o["ETag"] for o in found}


def tenant_body(model_bucket: str, output_bucket: str, secret: str = "s3-credentials") -> Any:
    b = body(model_bucket)
    b["spec"]["output"] = {
        "uri": f"s3://{output_bucket}/out",
        "credentialsSecretRef": {"name": secret},
    }
    return b


def test_tenant_a_writing_into_tenant_bs_bucket_is_denied_and_b_is_untouched(
    tenants: dict[str, tuple[str, S3Server]], minio_endpoint: S3Server
) -> None:
    (bucket_a, a), (bucket_b, _) = tenants["a"], tenants["b"]
    before = listing(minio_endpoint, bucket_b)
    cluster = cluster_of(**{"s3-credentials": a.environment()})
    out = reconcile(tenant_body(bucket_a, bucket_b), cluster, SETTINGS)  # type: ignore[arg-type]
    ready = cond(out.status, "Ready")
    assert (out.status["phase"], ready["reason"]) == ("Failed", "AccessDenied")
    assert ready["message"].startswith(f"access denied: cannot read s3://{bucket_b}/out/")
    assert "Secret ml/s3-credentials (spec.output.credentialsSecretRef)" in ready["message"]
    assert cond(out.status, "Stalled")["reason"] == "AccessDenied"
    assert cluster.jobs == {}  # no Job is sent to write where its credentials cannot
    assert listing(minio_endpoint, bucket_b) == before


def test_tenant_a_reading_tenant_bs_model_is_denied_before_any_job(
    tenants: dict[str, tuple[str, S3Server]], minio_endpoint: S3Server
) -> None:
    (bucket_a, a), (bucket_b, _) = tenants["a"], tenants["b"]
    before = listing(minio_endpoint, bucket_b)
    cluster = cluster_of(**{"s3-credentials": a.environment()})
    out = reconcile(tenant_body(bucket_b, bucket_a), cluster, SETTINGS)  # type: ignore[arg-type]
    ready = cond(out.status, "Ready")
    assert ready["reason"] == "AccessDenied"
    assert ready["message"].startswith(
        f"access denied: cannot read s3://{bucket_b}/models/m.tlt with the credentials in "
        "Secret ml/s3-credentials"
    )
    assert cond(out.status, "Exported")["reason"] == "AccessDenied"
    # Looked at again in two minutes, so a policy granted later heals it (tests/operator/
    # test_on_api_server.py grants it and watches the resource heal).
    assert out.requeue_after == REFUSED_RETRY_SECONDS == 120.0
    assert cluster.jobs == {}
    assert listing(minio_endpoint, bucket_b) == before


def test_each_tenant_works_in_its_own_bucket_with_its_own_account(
    tenants: dict[str, tuple[str, S3Server]],
) -> None:
    for bucket, account in tenants.values():
        cluster = cluster_of(**{"s3-credentials": account.environment()})
        out = reconcile(tenant_body(bucket, bucket), cluster, SETTINGS)  # type: ignore[arg-type]
        assert out.status["phase"] == "Exporting"
        assert len(cluster.jobs) == 1


def test_the_operators_own_account_is_not_used(
    tenants: dict[str, tuple[str, S3Server]], s3_endpoint: S3Endpoint
) -> None:
    # The process environment holds MinIO's root account (the s3_endpoint fixture),
    # which could read everything; a resource naming no Secret gets none of it.
    bucket_a, _ = tenants["a"]
    b = body(bucket_a)
    b["spec"]["output"] = {"uri": f"s3://{bucket_a}/out"}
    cluster = cluster_of()
    out = reconcile(b, cluster, SETTINGS)  # type: ignore[arg-type]
    ready = cond(out.status, "Ready")
    assert ready["reason"] == "CredentialsRequired"
    assert ready["message"].startswith("spec.output.credentialsSecretRef is not set")
    assert cluster.secret_reads == 0 and cluster.jobs == {}
    # A single-tenant cluster may opt in to the operator pod's own credentials.
    ambient = Settings(pending_check_seconds=0, ambient_s3_credentials=True)
    assert reconcile(b, cluster, ambient).status["phase"] == "Exporting"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("secrets", "reason", "message"),
    [
        ({}, "CredentialsNotFound", "Secret ml/s3-credentials (spec.output.credentialsSecretRef) "
         "not found: create it with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
        ({"s3-credentials": {"AWS_ACCESS_KEY_ID": "x"}}, "CredentialsInvalid",
         "Secret ml/s3-credentials (spec.output.credentialsSecretRef) has no "
         "AWS_SECRET_ACCESS_KEY"),
        ("wrong-secret", "CredentialsRejected",
         "S3 rejected the credentials (SignatureDoesNotMatch) when asked to read s3://"),
        ("unknown-user", "CredentialsRejected",
         "S3 rejected the credentials (InvalidAccessKeyId) when asked to read s3://"),
    ],
)  # fmt: skip
def test_credentials_that_cannot_be_used_are_named(
    tenants: dict[str, tuple[str, S3Server]], secrets: Any, reason: str, message: str
) -> None:
    bucket_a, a = tenants["a"]
    if secrets == "wrong-secret":
        secrets = {"s3-credentials": {**a.environment(), "AWS_SECRET_ACCESS_KEY": "nope"}}
    elif secrets == "unknown-user":
        secrets = {"s3-credentials": {**a.environment(), "AWS_ACCESS_KEY_ID": "nobody"}}
    out = reconcile(tenant_body(bucket_a, bucket_a), cluster_of(**secrets), SETTINGS)  # type: ignore[arg-type]
    ready = cond(out.status, "Ready")
    assert (out.status["phase"], ready["reason"]) == ("Failed", reason)
    assert ready["message"].startswith(message), ready["message"]
    assert "nope" not in str(out.status)  # never the secret's value


def test_a_missing_bucket_is_named(
    tenants: dict[str, tuple[str, S3Server]], s3_endpoint: S3Endpoint
) -> None:
    _, a = tenants["a"]
    cluster = cluster_of(**{"s3-credentials": a.environment()})
    out = reconcile(tenant_body("no-such-bucket", "no-such-bucket"), cluster, SETTINGS)  # type: ignore[arg-type]
    ready = cond(out.status, "Ready")
    # A tenant's policy does not cover a bucket that does not exist, and S3 (MinIO as AWS)
    # checks the policy first: denied, never told whether the bucket exists.
    assert ready["reason"] == "AccessDenied"
    assert ready["message"].startswith("access denied: cannot read s3://no-such-bucket/models/")
    root = cluster_of(**{"s3-credentials": s3_endpoint.environment()})
    out = reconcile(tenant_body("no-such-bucket", "no-such-bucket"), root, SETTINGS)  # type: ignore[arg-type]
    ready = cond(out.status, "Ready")
    assert (ready["reason"], ready["message"]) == (
        "BucketNotFound",
        "bucket no-such-bucket of s3://no-such-bucket/models/m.tlt does not exist",
    )


def test_resources_sharing_a_secret_share_one_client(
    tenants: dict[str, tuple[str, S3Server]],
) -> None:
    bucket_a, a = tenants["a"]
    cluster = cluster_of(**{"s3-credentials": a.environment(), "other": a.environment()})
    now = [0.0]
    stores = ResourceStores(cluster, SETTINGS, clock=lambda: now[0])
    for secret in ("s3-credentials", "other", "s3-credentials"):
        reconcile(tenant_body(bucket_a, bucket_a, secret), cluster, SETTINGS, stores)  # type: ignore[arg-type]
    assert len(stores._stores) == 1
    # A burst reads each Secret once per ttl, not once per pass.
    assert cluster.secret_reads == 2
    rotated = {**a.environment(), "AWS_SESSION_TOKEN": "t"}
    cluster.secrets = {"s3-credentials": rotated}  # type: ignore[assignment]
    reconcile(tenant_body(bucket_a, bucket_a), cluster, SETTINGS, stores)  # type: ignore[arg-type]
    assert len(stores._stores) == 1  # within the ttl: the values read before
    now[0] += stores.ttl
    reconcile(tenant_body(bucket_a, bucket_a), cluster, SETTINGS, stores)  # type: ignore[arg-type]
    assert len(stores._stores) == 2  # new values, a new client
    assert cluster.secret_reads == 3
