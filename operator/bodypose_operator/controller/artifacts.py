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

One `ArtifactStore` per set of credentials (controller/credentials.py keeps
them, one per Secret's values): a boto3 client is thread-safe and costly to
make (botocore loads its service model), so nothing here creates one per pass.

S3's answers are sorted for the status: a missing object or bucket, access
denied, credentials S3 does not accept (`S3Refused`: it will not heal by
retrying soon) apart from an endpoint that did not answer (`S3Unreachable`:
retried). HEAD answers carry no error code, so the model's digest is read with
a one-byte ranged GET, whose answers do.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

INDEX_DIR = ".content-index"
#: Connections kept per client (S3 here, the API server's in controller/cluster.py):
#: above the passes that can run at once, kopf's handler threads (at most 32, Python's
#: default executor) plus the service's check workers.
CONNECTIONS = 40


class ModelNotFound(Exception):
    pass


class S3Unreachable(Exception):
    pass


class S3Refused(Exception):
    """S3 answered no: `reason` is the condition's reason, the message names the URI."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


_MISSING_KEY = ("404", "NoSuchKey", "NotFound")
_DENIED = ("403", "AccessDenied", "Forbidden", "AllAccessDisabled")
_REJECTED = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken")


def _refusal(exc: ClientError, uri: str, action: str) -> Exception:
    """What a ClientError from `action` ("read"/"write") on `uri` means to the user."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    bucket = _split(uri)[0]
    if code == "NoSuchBucket":
        return S3Refused("BucketNotFound", f"bucket {bucket} of {uri} does not exist")
    if code in _REJECTED:
        message = f"S3 rejected the credentials ({code}) when asked to {action} {uri}"
        return S3Refused("CredentialsRejected", message)
    if code in _DENIED:
        return S3Refused("AccessDenied", f"access denied: cannot {action} {uri}")
    return S3Unreachable(f"cannot {action} {uri}: {code or exc}")


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def index_uri(output_uri: str, key: str, entry: str) -> str:
    """`<output>/.content-index/<contentKey>/<entry>.json`."""
    return f"{output_uri.rstrip('/')}/{INDEX_DIR}/{key}/{entry}.json"


_CLIENTS = threading.Lock()


def s3_client(**credentials: Any) -> Any:
    """A client with these credentials (else the standard AWS_* chain), failing fast
    when S3 is down: the next event or check retries, so a pass never blocks on a dead
    endpoint."""
    config = Config(
        retries={"max_attempts": 2, "mode": "standard"},
        connect_timeout=3,
        # As many connections as passes can run at once (kopf's handler threads and the
        # service's check workers), so no pass opens and drops one of its own.
        max_pool_connections=CONNECTIONS,
    )
    with _CLIENTS:  # boto3's default session is not thread-safe; its clients are
        return boto3.client("s3", config=config, **credentials)


class ArtifactStore:
    """The reads and writes the operator makes in S3, through one client."""

    def __init__(self, client: Any | None = None) -> None:
        self.client = client if client is not None else s3_client()
        # (uri, ETag, size) -> sha256 of objects this store has hashed: an object is read
        # whole once; a replaced one has another ETag and is read again.
        self._hashed: dict[tuple[str, str, int], str] = {}
        self._hashed_lock = threading.Lock()

    def model_digest(self, uri: str) -> str:
        """A digest of the model object: its ETag and size (S3's content identity)."""
        bucket, key = _split(uri)
        try:
            got = self.client.get_object(Bucket=bucket, Key=key, Range="bytes=0-0")
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _MISSING_KEY:
                raise ModelNotFound(f"model {uri} does not exist") from exc
            if code == "InvalidRange":  # an empty object: the export says what is wrong
                return f"etag:empty:size:0:{key}"
            raise _refusal(exc, uri, "read") from exc
        except (EndpointConnectionError, BotoCoreError) as exc:
            raise S3Unreachable(f"cannot reach the S3 endpoint for {uri}: {exc}") from exc
        got["Body"].read()  # drained, so the connection goes back to the pool (close() drops it)
        total = re.search(r"/(\d+)$", str(got.get("ContentRange", "")))
        size = total.group(1) if total else got.get("ContentLength")
        return f"etag:{got['ETag'].strip(chr(34))}:size:{size}"

    def read_manifest(self, uri: str) -> dict[str, Any] | None:
        """The stage manifest at `uri`, or None while the stage is incomplete."""
        bucket, key = _split(uri)
        try:
            body = self.client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _MISSING_KEY:
                return None
            raise _refusal(exc, uri, "read") from exc
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

    def mismatch(self, manifest: dict[str, Any]) -> str | None:
        """Why the artifacts a manifest lists are not what it records (missing, another size
        or sha256), or None when every one is. Anyone who may write to a shared bucket can
        replace an object: what another resource published is checked before it is reused.

        S3 offers no content hash of its own that holds for every upload (an ETag is an MD5
        only for single-part uploads; additional checksums depend on how the object was
        put), so each object is read whole and hashed, once per ETag (`_hashed`)."""
        for artifact in manifest.get("artifacts") or []:
            uri = artifact.get("path")
            if not isinstance(uri, str) or not uri.startswith("s3://"):
                continue
            bucket, key = _split(uri)
            try:
                head = self.client.head_object(Bucket=bucket, Key=key)
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                if code in _MISSING_KEY:
                    return f"{uri} is missing"
                raise _refusal(exc, uri, "read") from exc
            except (EndpointConnectionError, BotoCoreError) as exc:
                raise S3Unreachable(f"cannot reach the S3 endpoint for {uri}: {exc}") from exc
            size = int(head.get("ContentLength", -1))
            if artifact.get("bytes") is not None and size != int(artifact["bytes"]):
                return f"{uri} is {size} bytes, its manifest records {artifact['bytes']}"
            if artifact.get("sha256"):
                digest = self._sha256(uri, str(head.get("ETag", "")), size)
                if digest != artifact["sha256"]:
                    return f"{uri} has sha256 {digest[:12]}..., its manifest records " + (
                        f"{str(artifact['sha256'])[:12]}..."
                    )
        return None

    def _sha256(self, uri: str, etag: str, size: int) -> str:
        with self._hashed_lock:
            known = self._hashed.get((uri, etag, size))
        if known is not None:
            return known
        bucket, key = _split(uri)
        digest = hashlib.sha256()
        try:
            body = self.client.get_object(Bucket=bucket, Key=key, IfMatch=etag)["Body"]
            for chunk in iter(lambda: body.read(1 << 20), b""):
                digest.update(chunk)
        except ClientError as exc:
            raise _refusal(exc, uri, "read") from exc
        except (EndpointConnectionError, BotoCoreError) as exc:
            raise S3Unreachable(f"cannot reach the S3 endpoint for {uri}: {exc}") from exc
        with self._hashed_lock:
            self._hashed[(uri, etag, size)] = digest.hexdigest()
        return digest.hexdigest()

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
            raise _refusal(exc, index, "write") from exc
        except (EndpointConnectionError, BotoCoreError) as exc:
            raise S3Unreachable(f"cannot reach the S3 endpoint for {index}: {exc}") from exc
        return True
