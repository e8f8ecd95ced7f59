"""Whose S3 credentials a resource's reads and writes use: the ones the resource names.

Tenancy (docs/architecture.md, "Tenancy: whose credentials reach S3"):
everything the operator reads or writes in S3 for a resource (the model's
digest, the stage manifests, the content index) goes through the Secret that
resource names in `spec.output.credentialsSecretRef`, read from the resource's
own namespace, the same Secret its Jobs' pods get. So a resource can reach
only what its own credentials reach, and the operator needs no S3 account of
its own. Chosen over delegating those reads to Jobs: the model's digest
decides the content key before any Job exists, and a Job per look would cost a
pod start per event.

The operator `get`s the one Secret named (RBAC: `get` on secrets, never list or
watch, so it holds no copy of a namespace's Secrets); the values never leave
this module but as a boto3 client. A resource that names no Secret is refused
unless the chart enables ambient credentials (`s3.ambientCredentials`, for a
single-tenant cluster whose operator pod has a workload identity).

One `ArtifactStore` (one boto3 client) per distinct set of credentials, kept in
a small LRU: a client costs milliseconds and memory to make, and a thousand
resources sharing one Secret share one client. A rotated Secret has new values,
so a new client; the old one ages out. A Secret read is kept `SECRET_TTL_SECONDS`:
a burst of Job events (hundreds of resources at once) would otherwise read the
same Secret on every pass (`make bench-operator`: 500 resources x 3 targets took
28.8 s with a read per pass); a rotation is seen within that time.
"""

from __future__ import annotations

import base64
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Protocol

from bodypose_operator.api.v1alpha1 import BodyPoseExportSpec
from bodypose_operator.builders.jobs import S3_REQUIRED_KEYS
from bodypose_operator.controller.artifacts import ArtifactStore, s3_client
from bodypose_operator.settings import Settings

#: The keys the operator needs, the same pair each Job's pod gets by name (builders/jobs.py).
REQUIRED = S3_REQUIRED_KEYS
#: Keys of a credentials Secret whose values are not secret (where and in which region):
#: kept in messages; every other value of the Secret is redacted from what pods report.
NOT_SECRET = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION")
#: The operator's own credentials (ambient mode), redacted likewise.
AMBIENT_SECRET_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
SECRET_TTL_SECONDS = 10.0


class CredentialsProblem(Exception):
    """The resource's credentials cannot be used; `reason` is the condition's reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class SecretReader(Protocol):
    def secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        """The Secret's decoded data, or None if it does not exist; PermissionError if the
        operator may not read it."""


@dataclass(frozen=True)
class S3Credentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)
    endpoint_url: str | None = None
    region: str | None = None


def decode(secret_data: dict[str, str] | None) -> dict[str, str]:
    """A V1Secret's `data` (base64) as text."""
    return {k: base64.b64decode(v).decode() for k, v in (secret_data or {}).items()}


def credentials_from(data: dict[str, str], where: str) -> S3Credentials:
    missing = [k for k in REQUIRED if not data.get(k, "").strip()]
    if missing:
        raise CredentialsProblem(
            "CredentialsInvalid",
            f"{where} has no {' or '.join(missing)}: it needs AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (and AWS_ENDPOINT_URL for a store other than AWS S3)",
        )
    return S3Credentials(
        access_key_id=data["AWS_ACCESS_KEY_ID"].strip(),
        secret_access_key=data["AWS_SECRET_ACCESS_KEY"].strip(),
        session_token=data.get("AWS_SESSION_TOKEN") or None,
        # The names boto3 and the AWS CLI read, so the pods (each key by name) and we agree.
        endpoint_url=data.get("AWS_ENDPOINT_URL_S3") or data.get("AWS_ENDPOINT_URL") or None,
        region=data.get("AWS_REGION") or data.get("AWS_DEFAULT_REGION") or None,
    )


class ResourceStores:
    """The `ArtifactStore` of a resource: made from the Secret it names."""

    def __init__(
        self,
        secrets: SecretReader,
        settings: Settings,
        limit: int = 64,
        ttl: float = SECRET_TTL_SECONDS,
        clock: Any = time.monotonic,
    ) -> None:
        self.secrets = secrets
        self.settings = settings
        self.limit = limit
        self.ttl = ttl
        self.clock = clock
        self._read: dict[tuple[str, str], tuple[float, dict[str, str] | None]] = {}
        self._stores: OrderedDict[S3Credentials, ArtifactStore] = OrderedDict()
        self._ambient: ArtifactStore | None = None
        # boto3's session (which makes clients) is not thread-safe; clients are.
        self._lock = threading.Lock()

    def where(self, namespace: str, spec: BodyPoseExportSpec) -> str:
        """How messages name the credentials a resource's S3 access uses."""
        ref = spec.output.credentialsSecretRef
        if ref is None:
            return "the operator's ambient credentials"
        secret = f"{namespace}/{ref.name}"
        return f"the credentials in Secret {secret} (spec.output.credentialsSecretRef)"

    def for_resource(self, namespace: str, spec: BodyPoseExportSpec) -> ArtifactStore:
        ref = spec.output.credentialsSecretRef
        if ref is None:
            if not self.settings.ambient_s3_credentials:
                raise CredentialsProblem(
                    "CredentialsRequired",
                    "spec.output.credentialsSecretRef is not set: the operator reads and "
                    "writes S3 for a resource only with the credentials the resource names "
                    "(a Secret in its namespace with AWS_ACCESS_KEY_ID and "
                    "AWS_SECRET_ACCESS_KEY)",
                )
            with self._lock:
                if self._ambient is None:
                    self._ambient = ArtifactStore()
                return self._ambient
        where = f"Secret {namespace}/{ref.name} (spec.output.credentialsSecretRef)"
        try:
            data = self._secret(namespace, ref.name)
        except PermissionError as exc:
            raise CredentialsProblem(
                "CredentialsForbidden",
                f"the operator may not read {where}: the chart grants `get` on Secrets only "
                f"in the namespaces it watches ({exc})",
            ) from exc
        if data is None:
            raise CredentialsProblem(
                "CredentialsNotFound",
                f"{where} not found: create it with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                "(and AWS_ENDPOINT_URL for a store other than AWS S3)",
            )
        creds = credentials_from(data, where)
        with self._lock:
            store = self._stores.get(creds)
            if store is None:
                store = ArtifactStore(_client(creds))
                self._stores[creds] = store
                while len(self._stores) > self.limit:
                    self._stores.popitem(last=False)
            else:
                self._stores.move_to_end(creds)
            return store

    def secret_values(self, namespace: str, spec: BodyPoseExportSpec) -> frozenset[str]:
        """The credential values a resource's pods may hold and so may print: those of
        the Secret it names (as last read, `ttl` applies; none if it cannot be read), but
        the endpoint and region; in ambient mode, the operator's own. For redaction only
        (controller/redact.py): never written anywhere."""
        ref = spec.output.credentialsSecretRef
        if ref is None:
            return frozenset(v for k in AMBIENT_SECRET_ENV if (v := os.environ.get(k, "")))
        try:
            data = self._secret(namespace, ref.name) or {}
        except PermissionError:
            return frozenset()
        # As stored and as used (credentials_from strips them).
        values = [v for k, v in data.items() if k not in NOT_SECRET and v.strip()]
        return frozenset(values) | {v.strip() for v in values}

    def _secret(self, namespace: str, name: str) -> dict[str, str] | None:
        """The Secret's data, read at most once per `ttl` (a missing one too: it is
        looked for again after the ttl, so creating it heals the resource)."""
        key, now = (namespace, name), self.clock()
        with self._lock:
            cached = self._read.get(key)
            if cached is not None and now < cached[0]:
                return cached[1]
        data = self.secrets.secret_data(namespace, name)
        with self._lock:
            self._read[key] = (now + self.ttl, data)
            if len(self._read) > 16 * self.limit:  # forget the oldest reads
                for old in sorted(self._read, key=lambda k: self._read[k][0])[: self.limit]:
                    del self._read[old]
        return data


def _client(creds: S3Credentials) -> Any:
    return s3_client(
        aws_access_key_id=creds.access_key_id,
        aws_secret_access_key=creds.secret_access_key,
        aws_session_token=creds.session_token,
        endpoint_url=creds.endpoint_url,
        region_name=creds.region or "us-east-1",
    )
