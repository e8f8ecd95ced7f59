"""Shared fixtures: a real S3 endpoint on loopback, the sample model, figure reporting."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

pytest_plugins = ["tests.infra.cluster"]

SAMPLE_KEY = "nvidia_tlt"
# Figures tests measure (fidelity, ...) are printed at the end of the run.
FIGURES: list[str] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class S3Endpoint:
    url: str
    access_key: str
    secret_key: str
    region: str

    def client(self):  # type: ignore[no-untyped-def]
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
        )


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[S3Endpoint]:
    """moto's S3 server on 127.0.0.1, reached through the standard AWS_* environment.

    The exporter only ever sees AWS_ENDPOINT_URL and credentials, as it would
    for a user's MinIO; nothing is mocked inside the process under test.
    """
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = S3Endpoint(f"http://127.0.0.1:{port}", "testing", "testing", "us-east-1")
    env = {
        "AWS_ENDPOINT_URL": endpoint.url,
        "AWS_ACCESS_KEY_ID": endpoint.access_key,
        "AWS_SECRET_ACCESS_KEY": endpoint.secret_key,
        "AWS_DEFAULT_REGION": endpoint.region,
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield endpoint
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def s3_bucket(s3_endpoint: S3Endpoint) -> str:
    name = f"test-{uuid.uuid4().hex[:12]}"
    s3_endpoint.client().create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample .tlt (key SAMPLE_KEY) and images, as `bpnet-sample` writes them."""
    from bodypose_exporter.stages.sample import write_sample_images, write_sample_model

    out = tmp_path_factory.mktemp("sample")
    write_sample_model(out / "bpnet_sample.tlt", SAMPLE_KEY)
    write_sample_images(out / "images", 8)
    return out


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("measured figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
