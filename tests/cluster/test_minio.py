"""MinIO, built from its Go module, is a real S3 endpoint on loopback for boto3."""

from __future__ import annotations

import hashlib
import io
import os
import urllib.request

import pytest
from botocore.exceptions import ClientError

from devcluster.minio import S3Server


def test_boto3_round_trip(minio_endpoint: S3Server) -> None:
    s3 = minio_endpoint.client()
    s3.create_bucket(Bucket="models")
    body = os.urandom(3 * 1024 * 1024)
    s3.put_object(Bucket="models", Key="bpnet/model.tlt", Body=body)
    got = s3.get_object(Bucket="models", Key="bpnet/model.tlt")["Body"].read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(body).digest()
    listed = s3.list_objects_v2(Bucket="models", Prefix="bpnet/")["Contents"]
    assert [o["Key"] for o in listed] == ["bpnet/model.tlt"]
    # A presigned URL works without credentials, as a user's MinIO would serve it.
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": "models", "Key": "bpnet/model.tlt"}, ExpiresIn=60
    )
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.read() == body


def test_wrong_credentials_are_refused(minio_endpoint: S3Server) -> None:
    wrong = S3Server(minio_endpoint.url, minio_endpoint.access_key, "not-the-secret")
    with pytest.raises(ClientError) as info:
        wrong.client().list_buckets()
    assert info.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


def test_multipart_upload(minio_endpoint: S3Server) -> None:
    """boto3's transfer manager splits large files into parts, as the exporter's uploads do."""
    from boto3.s3.transfer import TransferConfig

    s3 = minio_endpoint.client()
    s3.create_bucket(Bucket="engines")
    body = os.urandom(12 * 1024 * 1024)
    config = TransferConfig(
        multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024
    )
    s3.upload_fileobj(io.BytesIO(body), "engines", "t4/model.engine", Config=config)
    head = s3.head_object(Bucket="engines", Key="t4/model.engine")
    assert head["ContentLength"] == len(body) and head["ETag"].endswith('-3"')
