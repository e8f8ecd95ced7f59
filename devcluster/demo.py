"""`make demo`: the whole flow on this machine, from nothing to engines in S3.

    python -m devcluster.demo [--state-dir .demo] [--timeout 1200]

Starts the local control plane (GPU pools a100 and t4, a cpu pool, the pod
executor; devcluster/controlplane.py) and MinIO, writes the sample model and
calibration images to a bucket, installs the CRD, runs `bodypose-operator`,
applies `examples/bodyposeexport-int8.yaml`, follows the resource to Ready
(printing each phase change), then prints `kubectl get bpe`, where each Job
ran, and the artifacts in S3. Everything it started stops at the end (to try
things by hand on a cluster that stays up: `make cluster-up`).

The demo has no GPU and no TensorRT: its GPU targets use the onnxruntime
backend, with the same Job spec (nodeSelector, toleration, GPU request) a real
pool gets. Lives beside the control plane it drives, which is test tooling.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import yaml

from devcluster.controlplane import LocalCluster, ensure_binaries
from devcluster.crd import install_crd
from devcluster.minio import start_minio
from devcluster.operator_process import OperatorProcess, start_operator

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "bodyposeexport-int8.yaml"
BUCKET = "bodypose-demo"
NAMESPACE = "demo"
KEY = "nvidia_tlt"


def _say(text: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {text}", flush=True)


def _follow(cluster: LocalCluster, name: str, timeout: float) -> str:
    """Print each phase change until Ready or Failed; the final phase."""
    from kubernetes import client

    api = client.CustomObjectsApi(cluster.api_client())
    deadline, last = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        obj = api.get_namespaced_custom_object(
            "bodypose.dev", "v1alpha1", NAMESPACE, "bodyposeexports", name
        )
        status = obj.get("status") or {}
        ready = next((c for c in status.get("conditions", []) if c.get("type") == "Ready"), {})
        message = ready.get("message", "waiting for the operator")
        line = f"{status.get('phase', 'Pending')}: {message}"
        if "targets ready" not in message:
            line += f" ({status.get('readyTargets', '0/?')} targets ready)"
        if line != last:
            _say(line)
            last = line
        if status.get("phase") in ("Ready", "Failed"):
            return str(status["phase"])
        time.sleep(1)
    return "Timeout"


def run(state: Path, timeout: float) -> int:
    from kubernetes import client

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the sample model's TensorFlow chatter
    from bodypose_exporter.sample import write_sample_images, write_sample_model

    started = time.monotonic()
    bins = ensure_binaries(("etcd", "kubernetes", "kwok", "helm", "minio"), progress=sys.stderr)
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    _say("starting the control plane (pools a100, t4: fake GPUs; cpu) and MinIO")
    cluster = LocalCluster(state / "cluster", bins).start()
    operator: OperatorProcess | None = None
    try:
        with start_minio(bins["minio"], state / "minio") as s3:
            _say(f"MinIO at {s3.url}; writing the sample model and 16 images to s3://{BUCKET}")
            sample = state / "sample"
            sample.mkdir()
            write_sample_model(sample / "bpnet.tlt", KEY)
            images = write_sample_images(sample / "images", 16)
            s3c = s3.client()
            s3c.create_bucket(Bucket=BUCKET)
            s3c.upload_file(str(sample / "bpnet.tlt"), BUCKET, "models/bpnet.tlt")
            for image in images:
                s3c.upload_file(str(image), BUCKET, f"calibration/images/{image.name}")

            install_crd(cluster.api_client())
            core = client.CoreV1Api(cluster.api_client())
            core.create_namespace({"metadata": {"name": NAMESPACE}})
            core.create_namespaced_secret(
                NAMESPACE, {"metadata": {"name": "bpnet-key"}, "stringData": {"key": KEY}}
            )
            core.create_namespaced_secret(
                NAMESPACE,
                {"metadata": {"name": "s3-credentials"}, "stringData": s3.environment()},
            )
            log = state / "operator.log"
            operator = start_operator(cluster.kubeconfig, log, s3.environment())
            _say(f"operator running (log: {log})")

            resource = yaml.safe_load(EXAMPLE.read_text().replace("BUCKET", BUCKET))
            name = resource["metadata"]["name"]
            cluster.kubectl("apply", "-n", NAMESPACE, "-f", "-", input=yaml.safe_dump(resource))
            _say(f"kubectl apply -f {EXAMPLE.relative_to(ROOT)} (int8, 3 targets)")
            phase = _follow(cluster, name, timeout)

            print()
            print(cluster.kubectl("get", "bpe", "-n", NAMESPACE).stdout)
            print(cluster.kubectl(
                "get", "pods", "-n", NAMESPACE, "-o",
                "custom-columns=POD:.metadata.name,STAGE:.metadata.labels.bodypose\\.dev/stage,"
                "TARGET:.metadata.labels.bodypose\\.dev/target,NODE:.spec.nodeName,"
                "PHASE:.status.phase",
            ).stdout)  # fmt: skip
            print(f"artifacts in s3://{BUCKET}/artifacts/:")
            for page in s3c.get_paginator("list_objects_v2").paginate(
                Bucket=BUCKET, Prefix="artifacts/"
            ):
                for obj in page.get("Contents", []):
                    print(f"  {obj['Size']:>11,}  s3://{BUCKET}/{obj['Key']}")
            print()
            print(cluster.kubectl(
                "get", "bpe", name, "-n", NAMESPACE, "-o",
                "jsonpath={range .status.conditions[*]}{.type}={.status}: {.message}{'\\n'}{end}",
            ).stdout)  # fmt: skip
            _say(f"{phase} after {time.monotonic() - started:.0f}s")
            return 0 if phase == "Ready" else 1
    finally:
        if operator is not None:
            operator.stop()
        cluster.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m devcluster.demo",
        description="The whole bodypose-export flow on a local control plane with MinIO.",
    )
    p.add_argument("--state-dir", type=Path, default=Path(".demo"), help="working directory")
    p.add_argument("--timeout", type=float, default=1200, help="seconds to wait for Ready")
    args = p.parse_args(argv)
    return run(args.state_dir.resolve(), args.timeout)


if __name__ == "__main__":
    sys.exit(main())
