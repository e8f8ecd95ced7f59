"""pytest fixtures: a local Kubernetes cluster with fake GPU pools, tools, and MinIO.

Registered for the whole suite by `pytest_plugins = ["tests.infra.cluster"]` in
tests/conftest.py.

    cluster_binaries  session   dict[str, Path]: etcd, kube-*, kubectl, kwok, helm
    images            session   list[BuiltImage]: the base, operator and exporter images
                                (devcluster/images/), built if missing
    cluster           session   LocalCluster (devcluster/controlplane.py), started,
                                with those images loaded on its nodes, its API server
                                writing an audit log (tests/infra/audit.py reads it)
    namespace         function  str: a fresh namespace enforcing the restricted
                                Pod Security Standard, deleted afterwards
                                (`fresh_namespace(cluster)` for wider scopes)
    kubectl           session   Path of the built kubectl
    helm              session   Path of the built helm (no cluster needed)
    minio_endpoint    session   S3Server: MinIO built from its Go module, on loopback
    own_minio         function  MinioProcess: a MinIO of the test's own, which it may stop
                                and start (an S3 outage), stopped afterwards
    kueue_binary      session   Path of Kueue's manager (hack/cluster/build.sh kueue)
    kueue             module    Kueue (devcluster/kueue.py) running on `cluster`, its
                                webhooks live; stopped after the module (webhooks first)

Binaries missing from the cache are built on first use (hack/cluster/build.sh);
that takes minutes, so its progress is shown even while pytest captures output.
`make test` builds them before pytest starts, which keeps the build out of any
test's timeout.
"""

from __future__ import annotations

import contextlib
import re
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devcluster.controlplane import LocalCluster, ensure_binaries
from devcluster.images import BuiltImage, base_image, ensure_images
from devcluster.kueue import Kueue, start_kueue
from devcluster.minio import MinioProcess, S3Server, start_minio


def _build(config: pytest.Config, components: tuple[str, ...] = ()) -> dict[str, Path]:
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is None:
        return ensure_binaries(components, progress=sys.stderr)
    # A cold build is silent for minutes otherwise: let its progress through.
    with capture.global_and_fixture_disabled():
        return ensure_binaries(components, progress=sys.stderr)


@pytest.fixture(scope="session")
def cluster_binaries(pytestconfig: pytest.Config) -> dict[str, Path]:
    return _build(pytestconfig)


@pytest.fixture(scope="session")
def minio_binary(pytestconfig: pytest.Config) -> Path:
    return _build(pytestconfig, ("minio",))["minio"]


@pytest.fixture(scope="session")
def kstatus(pytestconfig: pytest.Config) -> Path:
    """Our small program over cli-utils' kstatus library (hack/cluster/modules/kstatus):
    what Flux and kpt compute from a resource's status."""
    return _build(pytestconfig, ("kstatus",))["kstatus"]


@pytest.fixture(scope="session")
def images(pytestconfig: pytest.Config) -> list[BuiltImage]:
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    # `make test` builds them first (make images); a cold build here shows progress.
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        return [base_image(sys.stderr), *ensure_images(progress=sys.stderr)]


@pytest.fixture(scope="session")
def cluster(
    cluster_binaries: dict[str, Path],
    images: list[BuiltImage],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LocalCluster]:
    from tests.conftest import FIGURES

    started = time.monotonic()
    # Audited: "no duplicate Job" is counted in create requests (tests/infra/audit.py).
    local = LocalCluster(tmp_path_factory.mktemp("cluster"), cluster_binaries, audit=True).start()
    FIGURES.append(
        f"local cluster warm start (control plane, 6 nodes Ready, executor): "
        f"{time.monotonic() - started:.1f}s"
    )
    for image in images:
        loaded = local.load_image(image.archive)
        FIGURES.append(
            f"image {loaded.ref} loaded into the local cluster in "
            f"{local.images.last_load_seconds:.1f}s (unpacked once per digest, then cached)"
        )
    try:
        yield local
    finally:
        local.stop()
        starts = pod_start_seconds(local.logs / "pod-executor.log")
        if starts:
            FIGURES.append(
                f"executor: pod seen bound -> container process spawned (image cached): median "
                f"{statistics.median(starts):.2f}s, max {max(starts):.2f}s over {len(starts)} "
                "containers"
            )
        cpu = container_cpu_seconds(local.logs / "pod-executor.log")
        if cpu:
            by_name = ", ".join(
                f"{name} {sum(seconds):.0f} cpu-s ({len(seconds)})"
                for name, seconds in sorted(cpu.items(), key=lambda kv: -sum(kv[1]))
            )
            FIGURES.append(f"executor: the pods' CPU by container name (how many ran): {by_name}")


def pod_start_seconds(executor_log: Path) -> list[float]:
    """From the executor's log: seconds from a pod being bound to its process starting."""
    found = re.findall(r": pid \d+, ([\d.]+)s after binding", executor_log.read_text())
    return [float(s) for s in found]


def container_cpu_seconds(executor_log: Path) -> dict[str, list[float]]:
    """From the executor's log: each ended container's CPU seconds (its process and every
    process it reaped: `container_run.wait`), by container name (the stage: export,
    calibrate, build...). Where the e2e session's pod CPU goes (issue 32, item 5)."""
    found = re.findall(
        r"/\S+ (\S+) exited -?\d+ after ([\d.]+) CPU seconds", executor_log.read_text()
    )
    by_name: dict[str, list[float]] = {}
    for name, seconds in found:
        by_name.setdefault(name, []).append(float(seconds))
    return by_name


@pytest.fixture
def namespace(cluster: LocalCluster) -> Iterator[str]:
    """A fresh namespace enforcing the restricted Pod Security Standard, as the
    operator's namespaces should; ready for pods once its `default` service
    account exists (the controller manager makes it a moment after the namespace)."""
    with fresh_namespace(cluster) as name:
        yield name


@contextlib.contextmanager
def fresh_namespace(cluster: LocalCluster) -> Iterator[str]:
    """The `namespace` fixture's namespace, for a fixture of a wider scope (one run that
    several tests judge)."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    name = f"t-{uuid.uuid4().hex[:8]}"
    core: Any = client.CoreV1Api(cluster.api)  # takes plain manifests
    labels = {"pod-security.kubernetes.io/enforce": "restricted"}
    core.create_namespace({"metadata": {"name": name, "labels": labels}})
    deadline = time.monotonic() + 30
    while True:
        try:
            core.read_namespaced_service_account("default", name)
            break
        except ApiException as exc:
            if exc.status != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    try:
        yield name
    finally:
        # The namespace controller deletes its contents; the executor and kwok
        # end its pods. Nothing waits for that: names are never reused.
        core.delete_namespace(name)


@pytest.fixture(scope="session")
def kubectl(cluster_binaries: dict[str, Path]) -> Path:
    return cluster_binaries["kubectl"]


@pytest.fixture(scope="session")
def helm(cluster_binaries: dict[str, Path]) -> Path:
    return cluster_binaries["helm"]


@pytest.fixture(scope="session")
def minio_endpoint(
    minio_binary: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[S3Server]:
    """MinIO on 127.0.0.1 with its own credentials, reached through boto3 with an
    endpoint URL exactly as a user's MinIO would be."""
    with start_minio(minio_binary, tmp_path_factory.mktemp("minio")) as server:
        yield server


@pytest.fixture
def own_minio(minio_binary: Path, tmp_path: Path) -> Iterator[MinioProcess]:
    """A MinIO of the test's own: one a test may kill and start again (an S3 outage)
    without touching the session's."""
    minio = MinioProcess(minio_binary, tmp_path / "minio")
    minio.start()
    try:
        yield minio
    finally:
        minio.stop()


@pytest.fixture(scope="session")
def kueue_binary(pytestconfig: pytest.Config) -> Path:
    return _build(pytestconfig, ("kueue",))["kueue"]


@pytest.fixture(scope="module")
def kueue(cluster: LocalCluster, kueue_binary: Path) -> Iterator[Kueue]:
    """Kueue's controller manager on the session cluster, for the tests of one module:
    CRDs installed, its webhooks registered and live, `integrations: [batch/job]`,
    `manageJobsWithoutQueueName: false`. Module scope: while it runs, every Job create
    in the cluster passes through its webhook, so other modules run without it.
    Delete what holds Kueue's finalizers (Workloads, queues, flavors) before it stops."""
    from tests.conftest import FIGURES

    with start_kueue(cluster, binary=kueue_binary) as running:
        FIGURES.append(
            f"Kueue warm start (CRDs, RBAC, manager ready, webhooks live): "
            f"{running.start_seconds:.1f}s"
        )
        yield running
    # Stopped: no webhook of Kueue's may be left to refuse the next module's Jobs.
    for kind, name in running.webhook_configurations:
        left = cluster.kubectl("get", kind, name, check=False)
        assert left.returncode and "NotFound" in left.stderr, left.stdout
