"""One export and one calibration shared by every target, against each target doing it all.

    make bench-fanout                      # 1, 3 and 6 targets
    PYTHONPATH=. .venv/bin/python benchmarks/fanout.py --targets 3

On the local control plane with every pod run from the exporter image (the
onnxruntime backend: no GPU here), for N targets spread over the pools:

- ours: one BodyPoseExport (int8, 224x320) applied to the operator: one export
  Job (export + calibration), then N build Jobs in parallel;
- the per-target flow (each target doing it all): N Jobs, one per target on its pool, each running
  `bpnet-export ... --data_type int8 --engine_file ...` (export, calibration and
  build in one process), the same image.

For each it prints the wall time until every target has its engine and the CPU
seconds of all its containers (from the executor: wait4's rusage of each
container), and the ratios. Goals: ours at most (export + slowest build) x 1.2
in time, and the shared stages' CPU about 1/N of the per-target flow's.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from devcluster.controlplane import LocalCluster, ensure_binaries
from devcluster.crd import install_crd
from devcluster.images import ensure_images
from devcluster.minio import S3Server, start_minio
from devcluster.operator_process import OperatorProcess, start_operator

NAMESPACE = "fanout"
BUCKET = "fanout"
KEY = "nvidia_tlt"
POOLS = ("cpu", "a100", "t4")
EXPORTER = "bodypose-export/exporter:0.1.0"
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
CAL = {"batches": 4, "batchSize": 2}
_EXITED = re.compile(r"(\S+)/(\S+) \S+ exited (-?\d+) after ([\d.]+) CPU seconds")


@dataclass
class Run:
    seconds: float
    cpu: float
    export_seconds: float = 0.0  # ours: the export Job's container, start to finish
    slowest_build: float = 0.0  # ours: the longest build Job's container
    export_cpu: float = 0.0  # ours: the shared stages (export + calibration)
    failed: list[str] = field(default_factory=list)  # per-target: Jobs that failed


def _targets(n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        pool = POOLS[i % len(POOLS)]
        target: dict[str, Any] = {"name": f"t{i}", "nodeSelector": {"bodypose.dev/pool": pool},
                                  "backend": "onnxruntime"}  # fmt: skip
        if pool != "cpu":
            target["tolerations"] = [GPU_TOLERATION]
        out.append(target)
    return out


def _cpu_of(cluster: LocalCluster, prefix: str) -> float:
    """CPU seconds of every container whose pod's name starts with `prefix`."""
    text = (cluster.logs / "pod-executor.log").read_text()
    return sum(
        float(m.group(4))
        for m in _EXITED.finditer(text)
        if m.group(1) == NAMESPACE and m.group(2).startswith(prefix)
    )


def _run_seconds(pod: Any) -> float:
    term = pod.status.container_statuses[0].state.terminated
    return float((term.finished_at - term.started_at).total_seconds()) if term else 0.0


def ours(cluster: LocalCluster, n: int, run: str) -> Run:
    name = f"ours-{run}"
    resource = {
        "apiVersion": "bodypose.dev/v1alpha1", "kind": "BodyPoseExport",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "model": {"uri": f"s3://{BUCKET}/models/bpnet.tlt",
                      "keySecretRef": {"name": "bpnet-key", "key": "key"}},
            "input": {"height": 224, "width": 320}, "precision": "int8",
            "calibration": {"imagesUri": f"s3://{BUCKET}/calibration/images", **CAL},
            "targets": _targets(n),
            # A fresh output prefix: nothing reused from an earlier run's content index.
            "output": {"uri": f"s3://{BUCKET}/{run}/ours",
                       "credentialsSecretRef": {"name": "s3-credentials"}},
        },
    }  # fmt: skip
    started = time.monotonic()
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(resource))
    cluster.kubectl("wait", "-n", NAMESPACE, "--for=condition=Ready", f"bpe/{name}",
                    "--timeout=290s")  # fmt: skip
    seconds = time.monotonic() - started
    time.sleep(1)  # the executor logs each container's CPU as it reaps it
    core: Any = client.CoreV1Api(cluster.api)
    pods = core.list_namespaced_pod(NAMESPACE, label_selector=f"bodypose.dev/export={name}").items
    export = max(
        _run_seconds(p) for p in pods if p.metadata.labels["bodypose.dev/stage"] == "export"
    )
    builds = [_run_seconds(p) for p in pods if p.metadata.labels["bodypose.dev/stage"] == "build"]
    return Run(seconds, _cpu_of(cluster, f"{name}-"), export, max(builds),
               _cpu_of(cluster, f"{name}-export-"))  # fmt: skip


def per_target(cluster: LocalCluster, n: int, run: str) -> Run:
    batch: Any = client.BatchV1Api(cluster.api)
    names = []
    started = time.monotonic()
    for target in _targets(n):
        name = f"seed-{run}-{target['name']}"
        out = f"s3://{BUCKET}/{run}/seed/{target['name']}"
        args = [
            "-m", f"s3://{BUCKET}/models/bpnet.tlt", "-d", "224,320,3",
            "-o", f"{out}/bpnet_model.etlt", "--data_type", "int8",
            "--cal_image_dir", f"s3://{BUCKET}/calibration/images",
            "--batches", str(CAL["batches"]), "--batch_size", str(CAL["batchSize"]),
            "--cal_cache_file", "/scratch/cal.bin",
            "--engine_file", f"{out}/", "--engine_backend", "onnxruntime",
        ]  # fmt: skip
        container = {
            "name": "export-and-build", "image": EXPORTER, "command": ["bpnet-export"],
            "args": args, "workingDir": "/scratch",
            "env": [{"name": "BODYPOSE_MODEL_KEY",
                     "valueFrom": {"secretKeyRef": {"name": "bpnet-key", "key": "key"}}},
                    {"name": "HOME", "value": "/scratch"}, {"name": "TMPDIR", "value": "/scratch"}],
            "envFrom": [{"secretRef": {"name": "s3-credentials"}}],
            "securityContext": {"runAsNonRoot": True, "runAsUser": 1000,
                                "readOnlyRootFilesystem": True,
                                "allowPrivilegeEscalation": False},
            "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"},
                             {"name": "tmp", "mountPath": "/tmp"}],
        }  # fmt: skip
        pod_spec = {
            "restartPolicy": "Never", "containers": [container],
            "nodeSelector": target["nodeSelector"], "tolerations": target.get("tolerations", []),
            "volumes": [{"name": "scratch", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
        }  # fmt: skip
        job = {"metadata": {"name": name}, "spec": {"backoffLimit": 0,
               "template": {"spec": pod_spec}}}  # fmt: skip
        batch.create_namespaced_job(NAMESPACE, job)
        names.append(name)
    # Each Job to its end, Complete or Failed: N TensorFlow exports at once on one
    # machine can run out of memory (each needs about 4 GB), which is a finding too.
    failed: list[str] = []
    pending = set(names)
    deadline = time.monotonic() + 600
    while pending and time.monotonic() < deadline:
        for name in sorted(pending):
            st = batch.read_namespaced_job_status(name, NAMESPACE).status
            if st.succeeded or st.failed:
                pending.discard(name)
                if st.failed:
                    failed.append(name)
        time.sleep(1)
    if pending:
        raise TimeoutError(f"per-target Jobs still running after 600s: {sorted(pending)}")
    seconds = time.monotonic() - started
    time.sleep(1)
    return Run(seconds, _cpu_of(cluster, f"seed-{run}-"), failed=failed)


def _prepare(cluster: LocalCluster, s3: S3Server, work: Path) -> OperatorProcess:
    sample = work / "sample"
    subprocess.run(
        [str(Path(sys.executable).parent / "bpnet-sample"), "-o", str(sample), "-k", KEY,
         "--images", "16"], check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    s3c = s3.client()
    s3c.create_bucket(Bucket=BUCKET)
    s3c.upload_file(str(sample / "bpnet_sample.tlt"), BUCKET, "models/bpnet.tlt")
    for image in sorted((sample / "images").iterdir()):
        s3c.upload_file(str(image), BUCKET, f"calibration/images/{image.name}")
    install_crd(cluster.api_client())
    core: Any = client.CoreV1Api(cluster.api)
    core.create_namespace({"metadata": {"name": NAMESPACE}})
    for name, data in (("bpnet-key", {"key": KEY}), ("s3-credentials", s3.environment())):
        core.create_namespaced_secret(NAMESPACE, {"metadata": {"name": name}, "stringData": data})
    return start_operator(cluster.kubeconfig, work / "operator.log")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--targets", type=int, nargs="+", default=[1, 3, 6])
    p.add_argument("--work-dir", type=Path, help="keep the cluster's state and logs here")
    args = p.parse_args(argv)
    bins = ensure_binaries(("etcd", "kubernetes", "kwok", "minio"), progress=sys.stderr)
    images = ensure_images(progress=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as tmp:
        work = args.work_dir.resolve() if args.work_dir else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        cluster = LocalCluster(work / "cluster", bins).start()
        operator = None
        try:
            for image in images:
                cluster.load_image(image.archive)
            with start_minio(bins["minio"], work / "minio") as s3:
                operator = _prepare(cluster, s3, work)
                for n in args.targets:
                    run = f"n{n}-{uuid.uuid4().hex[:6]}"
                    a = ours(cluster, n, run)
                    b = per_target(cluster, n, run)
                    bound = (a.export_seconds + a.slowest_build) * 1.2
                    print(
                        f"targets={n}: ours {a.seconds:.0f}s {a.cpu:.0f} CPU-s "
                        f"(export {a.export_seconds:.0f}s + slowest build {a.slowest_build:.0f}s;"
                        f" goal <= {bound:.0f}s) | per-target {b.seconds:.0f}s {b.cpu:.0f} CPU-s"
                        f" | per-target/ours: time {b.seconds / a.seconds:.2f}x, "
                        f"CPU {b.cpu / a.cpu:.2f}x | shared stages: ours {a.export_cpu:.0f} CPU-s"
                        f" once, per-target about {(b.cpu - (a.cpu - a.export_cpu)) / n:.0f}"
                        f" CPU-s x {n}",
                        flush=True,
                    )
                    if b.failed:
                        print(
                            f"targets={n}: {len(b.failed)} of {n} per-target Jobs failed "
                            f"({', '.join(b.failed)}): their exit codes and reasons are in "
                            f"{cluster.logs / 'pod-executor.log'} (out of memory: dmesg)",
                            flush=True,
                        )
        finally:
            if operator is not None:
                operator.stop()
            cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
