"""`make demo`: the whole flow on this machine, from nothing to engines in S3.

    python -m devcluster.demo [--state-dir demo-output] [--timeout 1200]

What a platform engineer does on a GPU cluster, on the local one: builds the
images (`make images`, cached by content), starts the local control plane
(GPU pools a100 and t4, a cpu pool, the executor that runs pods from their
images) and MinIO, loads the images into the cluster, writes the trained
sample model and calibration drawings to a bucket, `helm install`s the chart
(the operator then runs in its image as a pod, with the chart's
ServiceAccount, RBAC and security context), applies
`examples/bodyposeexport-int8.yaml` (int8 on three pools, ONNX Runtime) and
`examples/bodyposeexport-fp16-rtx.yaml` (fp16: a TensorRT-RTX engine for the
l4 pool, built by NVIDIA's builder in its Job, and an ONNX Runtime artifact),
follows both to Ready, then prints `kubectl get bpe`, each pod's node and
image digest, the artifacts in S3 and what each target was built for.
Everything it started stops at the end (to try things by hand on a cluster
that stays up: `make cluster-up`).

The demo has no GPU and no TensorRT: its a100 and t4 targets use the
onnxruntime backend, with the same Job spec (nodeSelector, toleration, GPU
request) a real pool gets; its l4 target's TensorRT-RTX engine is real and
built for compute capability 8.9, and nothing here can run it (its status says
so).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from devcluster.controlplane import LocalCluster, ensure_binaries
from devcluster.host import free_port
from devcluster.images import ImageBuildError, ensure_images
from devcluster.minio import S3Server, start_minio

ROOT = Path(__file__).resolve().parents[1]
#: What the demo applies, and how it says so.
EXAMPLES = (
    (ROOT / "examples" / "bodyposeexport-int8.yaml", "int8, 3 targets: ONNX Runtime"),
    (
        ROOT / "examples" / "bodyposeexport-fp16-rtx.yaml",
        "fp16, 2 targets: a TensorRT-RTX engine for the l4 pool, ONNX Runtime on the cpu pool",
    ),
)
CHART = ROOT / "charts" / "bodypose-operator"
BUCKET = "bodypose-demo"
NAMESPACE = "demo"
KEY = "nvidia_tlt"


def _say(text: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {text}", flush=True)


def _follow(cluster: LocalCluster, name: str, timeout: float) -> str:
    """Print each phase change until Ready or Failed; the final phase."""
    from kubernetes import client

    api: Any = client.CustomObjectsApi(cluster.api_client())
    deadline, last = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        obj = api.get_namespaced_custom_object(
            "bodypose.dev", "v1alpha1", NAMESPACE, "bodyposeexports", name
        )
        status: dict[str, Any] = obj.get("status") or {}
        conditions = status.get("conditions", [])
        ready: dict[str, Any] = next((c for c in conditions if c.get("type") == "Ready"), {})
        message = str(ready.get("message", "waiting for the operator"))
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


def _wait_operator(cluster: LocalCluster, timeout: float = 180) -> Any:
    from kubernetes import client

    core: Any = client.CoreV1Api(cluster.api_client())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pods = core.list_namespaced_pod(
            NAMESPACE, label_selector="app.kubernetes.io/name=bodypose-operator"
        ).items
        if pods and pods[0].status.phase == "Running":
            return pods[0]
        time.sleep(0.5)
    raise TimeoutError(f"the operator pod did not start in {timeout:.0f}s")


def _write_sample(state: Path, s3c: Any) -> None:
    """The trained sample model and 16 calibration drawings (`bpnet-sample --trained`, the
    exporter's own command), uploaded as a user would upload theirs.

    Trained, not the untrained sample: an untrained network's heatmaps are noise
    with no real peaks, so the int8 gate's heatmap-peak agreement would measure
    that noise. The trained weights come with the repository (`synthetic/cache.py`).
    """
    sample = state / "sample"
    bpnet_sample = Path(sys.executable).parent / "bpnet-sample"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    subprocess.run(
        [str(bpnet_sample), "-o", str(sample), "-k", KEY, "--trained", "--images", "16"],
        check=True, env=env, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    s3c.create_bucket(Bucket=BUCKET)
    s3c.upload_file(str(sample / "bpnet_sample.tlt"), BUCKET, "models/bpnet.tlt")
    for image in sorted((sample / "calibration" / "images").iterdir()):
        s3c.upload_file(str(image), BUCKET, f"calibration/images/{image.name}")


def _print_artifacts(s3c: Any, output: str) -> None:
    prefix = output.removeprefix(f"s3://{BUCKET}/").rstrip("/") + "/"
    print(f"artifacts in s3://{BUCKET}/{prefix}:")
    listed = 0
    for page in s3c.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        for obj in page.get("Contents", []):
            print(f"  {obj['Size']:>11,}  s3://{BUCKET}/{obj['Key']}")
            listed += 1
    if not listed:
        print("  (none)")
    print()


def _print_status(cluster: LocalCluster, name: str) -> None:
    """The resource's conditions, and what each target's artifact was built for and how it
    agrees with FP32 (or why it was not run)."""
    from kubernetes import client

    api: Any = client.CustomObjectsApi(cluster.api_client())
    status = (
        api.get_namespaced_custom_object(
            "bodypose.dev", "v1alpha1", NAMESPACE, "bodyposeexports", name
        ).get("status")
        or {}
    )
    print(f"{name}:")
    for c in status.get("conditions", []):
        print(f"  {c['type']}={c['status']}: {c.get('message', '')}")
    for t in status.get("targets", []):
        own = t.get("backendStatus") or {}  # the backend's own record (tensorrt-rtx's)
        built_for = (
            f"compute capability {own['computeCapabilities']} (TensorRT-RTX "
            f"{own.get('tensorrtRtxVersion')})" if own.get("computeCapabilities")
            else f"{t.get('instructionSet') or 'any'} CPUs"
        )  # fmt: skip
        figures = t.get("verification") or {}
        agreement = (
            f"not run: {t['notRun']}" if t.get("notRun")
            else f"cosine {figures.get('cosine', 0):.4f}, heatmap peaks "
            f"{figures.get('peakAgreement', 0):.4f}"
        )  # fmt: skip
        print(f"  target {t['name']}: {t['phase']}, {t.get('runtime')}, built for {built_for}; "
              f"{agreement}")  # fmt: skip
    print()


def _helm(cluster: LocalCluster, *args: str) -> None:
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    done = subprocess.run(
        [str(cluster.bins["helm"]), *args], env=env, capture_output=True, text=True
    )
    if done.returncode:
        raise RuntimeError(f"helm {' '.join(args[:2])} failed: {done.stderr.strip()}")


def run(state: Path, timeout: float) -> int:
    started = time.monotonic()
    bins = ensure_binaries(("etcd", "kubernetes", "kwok", "helm", "minio"), progress=sys.stderr)
    try:
        # `make demo` has just run `make images`, which printed them; built here if not.
        images = ensure_images(progress=None)
    except ImageBuildError as exc:
        print(exc, file=sys.stderr)
        return 2
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    _say("starting the control plane (pools a100, t4: fake GPUs; cpu) and MinIO")
    cluster = LocalCluster(state / "cluster", bins).start()
    try:
        for image in images:
            loaded = cluster.load_image(image.archive)
            _say(f"loaded {loaded.ref} ({loaded.digest[:19]}...) into the cluster in "
                 f"{cluster.images.last_load_seconds:.1f}s")  # fmt: skip
        with start_minio(bins["minio"], state / "minio") as s3:
            _say(f"MinIO at {s3.url}; writing the trained sample model and 16 calibration "
                 f"drawings to s3://{BUCKET}")  # fmt: skip
            s3c = s3.client()
            _write_sample(state, s3c)
            _install_operator(cluster, s3)
            return _export(cluster, s3c, timeout, started)
    finally:
        cluster.stop()


def _install_operator(cluster: LocalCluster, s3: S3Server) -> None:
    """The namespace, the model key's and S3's Secrets, `helm install` of the chart; returns
    once the operator's pod runs."""
    from kubernetes import client

    core: Any = client.CoreV1Api(cluster.api_client())
    core.create_namespace({"metadata": {"name": NAMESPACE}})
    for name, data in (("bpnet-key", {"key": KEY}), ("s3-credentials", s3.environment())):
        core.create_namespaced_secret(NAMESPACE, {"metadata": {"name": name}, "stringData": data})
    _helm(
        cluster, "install", "bodypose", str(CHART), "--namespace", NAMESPACE,
        "--set", f"watchNamespaces={{{NAMESPACE}}}",
        # Pods share this machine's network here: ports nothing else uses.
        "--set", f"health.port={free_port()}", "--set", f"metrics.port={free_port()}",
    )  # fmt: skip
    _say(f"helm install bodypose {CHART.relative_to(ROOT)} -n {NAMESPACE}")
    pod = _wait_operator(cluster)
    _say(f"operator pod {pod.metadata.name} running on {pod.spec.node_name} "
         f"from {pod.status.container_statuses[0].image_id}")  # fmt: skip


def _export(cluster: LocalCluster, s3c: Any, timeout: float, started: float) -> int:
    """Apply the examples, follow each to Ready (or Failed), print what was made; 0 when
    every one is Ready."""
    resources = []
    applied = time.monotonic()
    for example, what in EXAMPLES:
        resource = yaml.safe_load(example.read_text().replace("BUCKET", BUCKET))
        cluster.kubectl("apply", "-n", NAMESPACE, "-f", "-",
                        input=yaml.safe_dump(resource))  # fmt: skip
        _say(f"kubectl apply -f {example.relative_to(ROOT)} ({what})")
        resources.append(resource)
    phases = {}
    for resource in resources:
        name = resource["metadata"]["name"]
        phases[name] = _follow(cluster, name, timeout)
    ready_after = time.monotonic() - applied

    print()
    print(cluster.kubectl("get", "bpe", "-n", NAMESPACE).stdout)
    print(cluster.kubectl(
        "get", "pods", "-n", NAMESPACE, "-o",
        "custom-columns=POD:.metadata.name,STAGE:.metadata.labels.bodypose\\.dev/stage,"
        "TARGET:.metadata.labels.bodypose\\.dev/target,NODE:.spec.nodeName,"
        "PHASE:.status.phase,IMAGE:.status.containerStatuses[0].imageID",
    ).stdout)  # fmt: skip
    _print_artifacts(s3c, str(resources[0]["spec"]["output"]["uri"]))
    for resource in resources:
        _print_status(cluster, resource["metadata"]["name"])
    every = "Ready" if all(p == "Ready" for p in phases.values()) else "Not ready"
    _say(f"{every}: {', '.join(f'{n} {p}' for n, p in phases.items())}, "
         f"{ready_after:.0f}s after kubectl apply; "
         f"{time.monotonic() - started:.0f}s in all")  # fmt: skip
    return 0 if every == "Ready" else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m devcluster.demo",
        description="The whole bodypose-export flow on a local control plane with MinIO: "
        "images built, chart installed, an int8 BodyPoseExport to Ready.",
    )
    p.add_argument("--state-dir", type=Path, default=Path("demo-output"), help="working directory")
    p.add_argument("--timeout", type=float, default=1200, help="seconds to wait for Ready")
    args = p.parse_args(argv)
    return run(args.state_dir.resolve(), args.timeout)


if __name__ == "__main__":
    sys.exit(main())
