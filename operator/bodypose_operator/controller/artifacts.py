"""What S3 already holds: the model's digest, which stages are complete, the content index.

A stage is complete when its manifest exists (written last by the stage), so
the operator can reuse artifacts across re-applies and restarts without running
a Job. Artifacts live under each resource's own prefix
(`<output>/<namespace>/<name>/<contentKey>`), so a second resource with the
same content finds them through the content index: small objects under
`<output>/.content-index/<contentKey>/` (`export.json`, and
`pool-<identity>.json` per build pool) that name a complete stage's manifest.
The operator writes an entry once it sees the manifest it names, and trusts an
entry only while that manifest still exists.

One `ArtifactStore` per set of credentials, made once at start-up and kept in
kopf's memo: a boto3 client is thread-safe and costly to make (botocore loads
its service model), so nothing here creates one per pass. The operator reaches
S3 with its own credentials from the standard AWS_* environment.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

INDEX_DIR = ".content-index"


class ModelNotFound(Exception):
    pass


class S3Unreachable(Exception):
    pass


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def index_uri(output_uri: str, key: str, entry: str) -> str:
    """`<output>/.content-index/<contentKey>/<entry>.json`."""
    return f"{output_uri.rstrip('/')}/{INDEX_DIR}/{key}/{entry}.json"


def s3_client() -> Any:
    """A client from the standard AWS_* environment, failing fast when S3 is down: the
    next event or check retries, so a pass never blocks on a dead endpoint."""
    config = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=3)
    return boto3.client("s3", config=config)


class ArtifactStore:
    """The reads and writes the operator makes in S3, through one client."""

    def __init__(self, client: Any | None = None) -> None:
        self.client = client if client is not None else s3_client()

    def model_digest(self, uri: str) -> str:
        """A digest of the model object: its ETag and size (S3's content identity)."""
        bucket, key = _split(uri)
        try:
            head = self.client.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NoSuchBucket", "NotFound"):
                raise ModelNotFound(f"model {uri} does not exist") from exc
            raise S3Unreachable(f"cannot read {uri}: {exc}") from exc
        except (EndpointConnectionError, BotoCoreError) as exc:
            raise S3Unreachable(f"cannot reach the S3 endpoint for {uri}: {exc}") from exc
        return f"etag:{head['ETag'].strip(chr(34))}:size:{head['ContentLength']}"

    def read_manifest(self, uri: str) -> dict[str, Any] | None:
        """The stage manifest at `uri`, or None while the stage is incomplete."""
        bucket, key = _split(uri)
        try:
            body = self.client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                return None
            raise S3Unreachable(f"cannot read {uri}: {exc}") from exc
        except (EndpointConnectionError, BotoCoreError) as exc:
            raise S3Unreachable(f"cannot reach the S3 endpoint for {uri}: {exc}") from exc
        parsed = json.loads(body)
        return parsed if isinstance(parsed, dict) else None

    def reusable(self, index: str) -> tuple[str, dict[str, Any]] | None:
        """The manifest URI an index entry names and the manifest, if both still exist."""
        entry = self.read_manifest(index)
        if entry is None or not isinstance(entry.get("manifest"), str):
            return None
        manifest = self.read_manifest(entry["manifest"])
        return (entry["manifest"], manifest) if manifest is not None else None

    def record(self, index: str, manifest_uri: str) -> bool:
        """Point the index entry at `manifest_uri` unless it names an existing manifest already.

        True if written. The first complete set stays the one others reuse.
        """
        current = self.read_manifest(index)
        named = current.get("manifest") if current is not None else None
        if isinstance(named, str) and (
            named == manifest_uri or self.read_manifest(named) is not None
        ):
            return False
        bucket, key = _split(index)
        body = json.dumps({"manifest": manifest_uri}).encode()
        try:
            self.client.put_object(
                Bucket=bucket, Key=key, Body=body, ContentType="application/json"
            )
        except ClientError as exc:
            raise S3Unreachable(f"cannot write {index}: {exc}") from exc
        except (EndpointConnectionError, BotoCoreError) as exc:
            raise S3Unreachable(f"cannot reach the S3 endpoint for {index}: {exc}") from exc
        return True
