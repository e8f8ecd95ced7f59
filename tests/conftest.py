"""Shared fixtures: MinIO as the S3 endpoint on loopback, the sample model (and its export),
figure reporting."""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devcluster.minio import S3Server
from tests.support.conversion_memo import ConversionMemo

pytest_plugins = ["tests.infra.cluster", "tests.infra.durations"]

SAMPLE_KEY = "nvidia_tlt"
#: The size the shared export of the sample is made at.
SAMPLE_HEIGHT, SAMPLE_WIDTH = 224, 320
# Figures tests measure (fidelity, ...) are printed at the end of the run.
FIGURES: list[str] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: The latency budget of builds made inside this process (`verification/latency.py`'s
#: BUDGET_SECONDS, 10 s in a build Job): the full-size sample takes about 0.3 s a run, so
#: each build spent 12-25 s of both cores timing figures no test but the latency tests
#: reads (tests/engines/test_timing_cache.py: 6 builds, 166 cpu-s). With 2 s every
#: timing still warms up, settles or says it did not, and makes at least MIN_RUNS runs;
#: the latency tests pass budgets of their own, and builds in pods (tests/e2e) and in
#: subprocesses keep the product's default.
IN_PROCESS_LATENCY_BUDGET_SECONDS = 2.0


@pytest.fixture(autouse=True)
def _in_process_latency_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        "bodypose_exporter.verification.latency.BUDGET_SECONDS", IN_PROCESS_LATENCY_BUDGET_SECONDS
    )


# The S3 server every test talks to: MinIO (devcluster/minio.py), with its url,
# access_key, secret_key, region, client() and environment().
S3Endpoint = S3Server


@pytest.fixture(scope="session")
def s3_endpoint(minio_endpoint: S3Server) -> Iterator[S3Endpoint]:
    """MinIO on 127.0.0.1 (one server per session), reached through the standard
    AWS_* environment.

    The exporter and the operator only ever see AWS_ENDPOINT_URL and credentials,
    exactly as they would for a user's MinIO; S3 is never mocked (tests/README.md lists
    the test doubles there are, none of them S3).
    """
    env = minio_endpoint.environment()
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield minio_endpoint
    finally:
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


@pytest.fixture(scope="session")
def conversion_memo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConversionMemo]:
    """One real TensorFlow-to-ONNX conversion per model content in this session
    (tests/support/conversion_memo.py says why and what a reused file differs in)."""
    memo = ConversionMemo(tmp_path_factory.mktemp("conversions"))
    yield memo
    if memo.converted_seconds:
        FIGURES.append(memo.figure())


@pytest.fixture(autouse=True)
def _one_conversion_per_content(
    conversion_memo: ConversionMemo, monkeypatch: pytest.MonkeyPatch
) -> None:
    conversion_memo.patch(monkeypatch)


def export_sample(
    sample: Path, out: Path, memo: ConversionMemo, *, sdk_compatible: bool = False
) -> Path:
    """`bpnet-export` of the sample at SAMPLE_HEIGHT x SAMPLE_WIDTH into `out` (fp32: no
    calibration); `out` holds the .etlt, the ONNX model(s) and reference.npz."""
    from bodypose_exporter.stages.export import ExportRequest, InputDims, run_export

    shutil.copy(sample / "bpnet_sample.tlt", out / "bpnet_model.tlt")
    with pytest.MonkeyPatch.context() as patch:
        memo.patch(patch, load=True)
        run_export(
            ExportRequest(
                model=str(out / "bpnet_model.tlt"),
                key=SAMPLE_KEY,
                output=str(out / "bpnet_model.etlt"),
                dims=InputDims(SAMPLE_HEIGHT, SAMPLE_WIDTH, 3),
                sdk_compatible=sdk_compatible,
            )
        )
    return out


@pytest.fixture(scope="session")
def exported_sample(
    sample_dir: Path, tmp_path_factory: pytest.TempPathFactory, conversion_memo: ConversionMemo
) -> Path:
    """The sample exported once per session (a TensorFlow export: a minute and GBs of
    memory), shared by the engine and the serving tests; read it, never write into it."""
    return export_sample(sample_dir, tmp_path_factory.mktemp("exported"), conversion_memo)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("measured figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
