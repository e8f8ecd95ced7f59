"""A MinIO server on loopback, built from its Go module (hack/cluster/build.sh minio).

Single drive, in a temporary directory, with root credentials of its own; the
web console is off. Reached only through boto3 with an endpoint URL, as a user's
MinIO would be. Followed: MinIO's `minio server --help` (--address,
--console-address, MINIO_ROOT_USER/MINIO_ROOT_PASSWORD, MINIO_BROWSER) and its
health-check API (/minio/health/live, /minio/health/ready).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devcluster.host import free_port
from devcluster.probes import http_ok
from devcluster.supervisor import Command, Component, Readiness, Stop, Supervisor


@dataclass(frozen=True)
class S3Server:
    """Where an S3 server listens and how to sign in; `client()` is a boto3 S3 client."""

    url: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
        )

    def environment(self) -> dict[str, str]:
        """The standard AWS_* variables a process (or a pod's Secret) needs to reach it."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
        }


def minio_command(binary: Path, directory: Path) -> tuple[list[str], dict[str, str], S3Server]:
    """The command line and environment of a MinIO server on a free loopback port,
    with fresh root credentials, keeping its data in `directory`."""
    port = free_port()
    server = S3Server(
        url=f"http://127.0.0.1:{port}",
        access_key=f"bodypose-{secrets.token_hex(4)}",
        secret_key=secrets.token_urlsafe(24),
    )
    env = {
        **os.environ,
        "MINIO_ROOT_USER": server.access_key,
        "MINIO_ROOT_PASSWORD": server.secret_key,
        "MINIO_REGION": server.region,
        "MINIO_BROWSER": "off",
    }
    (directory / "data").mkdir(parents=True, exist_ok=True)
    argv = [str(binary), "server", str(directory / "data"), "--quiet",
            "--address", f"127.0.0.1:{port}",
            "--console-address", f"127.0.0.1:{free_port()}"]  # fmt: skip
    return argv, env, server


def minio_component(binary: Path, directory: Path) -> tuple[Component, S3Server]:
    """MinIO as a supervised component (devcluster/supervisor.py), ready once its
    health API says so; and the server it will be."""
    argv, env, server = minio_command(binary, directory)
    ready = f"{server.url}/minio/health/ready"
    component = Component(
        "minio", Command.of(argv, env), Readiness(http_ok(ready), ready), Stop(grace=15)
    )
    return component, server


class MinioProcess:
    """One MinIO server that can be stopped and started again on the same port, with
    the same data and accounts (the fault tests: S3 down in the middle of an upload).
    Its log: `<directory>/minio.log`."""

    def __init__(self, binary: Path, directory: Path) -> None:
        self.component, self.server = minio_component(binary, directory)
        self._supervisor = Supervisor(logs=directory)
        self.log_path = self._supervisor.log(self.component.name)

    def start(self) -> S3Server:
        self._supervisor.start(self.component)
        return self.server

    def stop(self, kill: bool = False) -> None:
        """SIGTERM (SIGKILL with `kill`: a crash, connections cut mid-request)."""
        self._supervisor.stop(self.component.name, kill=kill)


@contextlib.contextmanager
def start_minio(binary: Path, directory: Path) -> Iterator[S3Server]:
    """MinIO for the length of the `with` block."""
    minio = MinioProcess(binary, directory)
    try:
        yield minio.start()
    finally:
        minio.stop()


def add_tenant(server: S3Server, bucket: str, read_only: tuple[str, ...] = ()) -> S3Server:
    """A MinIO user allowed everything in `bucket` (made here), reading (not writing)
    the `read_only` buckets, and nothing else, as a tenant of a shared store would be;
    returned as the S3Server that user signs in to.

    Through MinIO's admin API (the `minio` package's MinioAdmin, which signs and
    encrypts the calls as `mc admin` does): a policy per tenant, attached to its user.
    """
    from minio.credentials.providers import StaticProvider
    from minio.minioadmin import MinioAdmin

    server.client().create_bucket(Bucket=bucket)
    tenant = S3Server(
        url=server.url,
        access_key=f"tenant-{secrets.token_hex(4)}",
        secret_key=secrets.token_urlsafe(24),
        region=server.region,
    )
    admin = MinioAdmin(
        endpoint=server.url.removeprefix("http://"),
        credentials=StaticProvider(server.access_key, server.secret_key),
        region=server.region,
        secure=False,
    )
    admin.user_add(tenant.access_key, tenant.secret_key)
    policy = f"{tenant.access_key}-only-{bucket}"
    resources = [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]
    statements = [{"Effect": "Allow", "Action": ["s3:*"], "Resource": resources}]
    if read_only:
        readable = [r for b in read_only for r in (f"arn:aws:s3:::{b}", f"arn:aws:s3:::{b}/*")]
        statements.append({"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"],
                           "Resource": readable})  # fmt: skip
    admin.policy_add(policy, policy={"Version": "2012-10-17", "Statement": statements})
    admin.attach_policy([policy], user=tenant.access_key)
    return tenant
