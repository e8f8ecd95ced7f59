"""What S3 already holds: the model's digest, and which stages are complete.

A stage is complete when its manifest exists (written last by the stage), so
the operator can reuse artifacts across re-applies, restarts and resources with
the same content key without running a Job. The operator reaches S3 with its
own credentials from the standard AWS_* environment.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError


class ModelNotFound(Exception):
    pass


class S3Unreachable(Exception):
    pass


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def _client() -> Any:
    return boto3.client(
        "s3", config=Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=3)
    )


def model_digest(uri: str) -> str:
    """A digest of the model object: its ETag and size (S3's content identity)."""
    bucket, key = _split(uri)
    try:
        head = _client().head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchKey", "NoSuchBucket", "NotFound"):
            raise ModelNotFound(f"model {uri} does not exist") from exc
        raise S3Unreachable(f"cannot read {uri}: {exc}") from exc
    except (EndpointConnectionError, BotoCoreError) as exc:
        raise S3Unreachable(f"cannot reach the S3 endpoint for {uri}: {exc}") from exc
    return f"etag:{head['ETag'].strip(chr(34))}:size:{head['ContentLength']}"


def read_manifest(uri: str) -> dict[str, Any] | None:
    """The stage manifest at `uri`, or None while the stage is incomplete."""
    bucket, key = _split(uri)
    try:
        body = _client().get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchKey", "NotFound"):
            return None
        raise S3Unreachable(f"cannot read {uri}: {exc}") from exc
    except (EndpointConnectionError, BotoCoreError) as exc:
        raise S3Unreachable(f"cannot reach the S3 endpoint for {uri}: {exc}") from exc
    parsed = json.loads(body)
    return parsed if isinstance(parsed, dict) else None
