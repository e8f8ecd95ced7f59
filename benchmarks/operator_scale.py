"""How the operator holds many resources: the event-driven design against the old 10 s timer.

    make bench-operator                       # N = 100, 300, 500
    PYTHONPATH=. .venv/bin/python benchmarks/operator_scale.py --n 1000

On the real local control plane with no pod executed (pods are bound and stay
Pending: nothing changes after the Jobs exist), N BodyPoseExport resources with
3 targets each are applied at once (one `kubectl apply` of N documents). For
each N and each design it prints:

- all-jobs: seconds from the apply until every export Job exists and every
  resource has a status;
- rss: the operator's peak resident memory during that burst;
- burst-cpu: the operator's CPU seconds during the burst;
- idle-cpu: the operator's CPU (cores) over the 60 s after everything settled
  (settled: all Jobs and statuses there, the first look at the Jobs that did
  not start, `pendingCheckSeconds` later, done, and then the operator under 1%
  of a core for 5 s; the baseline never gets there and waits 300 s);
- idle-requests: the API requests the operator made per second in that window,
  counted from the API server's audit log by the operator's own identity (a
  ServiceAccount of its own; watches count when they end).

The baseline is the same operator run the old way: a reconcile of every
resource every 10 s that also reads every Job's pods (BODYPOSE_RESYNC_SECONDS=10,
BODYPOSE_PENDING_CHECK_SECONDS=0), measured in the same run. Goals at N=500:
all Jobs under 60 s, RSS under 300 MB, idle CPU under 0.02 core, idle
requests under 0.5 per second. The last line is always
`operator-scale: N=<largest> all-jobs=<s>s rss=<MB>MB idle-cpu=<cores> idle-requests=<r>/s`
for the event-driven design.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import yaml
from kubernetes import client

from devcluster.controlplane import LocalCluster, ensure_binaries
from devcluster.crd import install_crd
from devcluster.minio import S3Server, start_minio
from devcluster.operator_process import start_operator

NAMESPACE = "scale"
BUCKET = "scale"
SETTLE_EXTRA = 5.0  # after the first pending check, before the idle window
IDLE_SECONDS = 60.0
DESIGNS = {
    "event-driven": {},
    "baseline (10 s timer)": {
        "BODYPOSE_RESYNC_SECONDS": "10",
        "BODYPOSE_PENDING_CHECK_SECONDS": "0",
    },
}
PENDING_CHECK = 15.0  # the operator's default pendingCheckSeconds


@dataclass
class Figures:
    all_jobs: float
    rss_mb: float
    burst_cpu: float
    idle_cpu: float
    idle_requests: float

    def line(self) -> str:
        return (
            f"all-jobs={self.all_jobs:.1f}s rss={self.rss_mb:.0f}MB "
            f"burst-cpu={self.burst_cpu:.1f}s idle-cpu={self.idle_cpu:.3f} "
            f"idle-requests={self.idle_requests:.2f}/s"
        )


def resources(n: int) -> str:
    docs = []
    for i in range(n):
        targets = [
            {"name": pool, "nodeSelector": {"bodypose.dev/pool": pool}, "backend": "onnxruntime",
             "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists",
                              "effect": "NoSchedule"}]}
            for pool in ("a100", "t4", "cpu")
        ]  # fmt: skip
        docs.append({
            "apiVersion": "bodypose.dev/v1alpha1", "kind": "BodyPoseExport",
            "metadata": {"name": f"bpe-{i:04d}", "namespace": NAMESPACE},
            "spec": {
                "model": {"uri": f"s3://{BUCKET}/models/m{i % 7}.tlt",
                          "keySecretRef": {"name": "bpnet-key", "key": "key"}},
                "input": {"height": 224, "width": 320}, "precision": "fp16",
                "targets": targets,
                "output": {"uri": f"s3://{BUCKET}/artifacts",
                           "credentialsSecretRef": {"name": "s3-credentials"}},
            },
        })  # fmt: skip
    return yaml.safe_dump_all(docs)


def _operator_identity(cluster: LocalCluster) -> tuple[Path, str]:
    """A ServiceAccount of the operator's own, bound to cluster-admin: its requests are
    told apart from everyone else's in the audit log."""
    core: Any = client.CoreV1Api(cluster.api)
    rbac: Any = client.RbacAuthorizationV1Api(cluster.api)
    core.create_namespaced_service_account("kube-system", {"metadata": {"name": "bench-operator"}})
    rbac.create_cluster_role_binding({
        "metadata": {"name": "bench-operator"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "bench-operator",
                      "namespace": "kube-system"}],
    })  # fmt: skip
    kubeconfig = cluster.kubeconfig_for_service_account("kube-system", "bench-operator")
    return kubeconfig, "system:serviceaccount:kube-system:bench-operator"


def _requests(audit_log: Path, user: str, start: float, end: float) -> int:
    """Requests by `user` that completed between the two wall-clock times."""
    count = 0
    with audit_log.open() as log:
        for line in log:
            event = json.loads(line)
            if event.get("user", {}).get("username") != user:
                continue
            stamp = event.get("stageTimestamp", "").replace("Z", "+00:00")
            when = dt.datetime.fromisoformat(stamp).timestamp()
            if start <= when < end:
                count += 1
    return count


def _wait_quiet(proc: psutil.Process, window: float = 5.0, limit: float = 300.0) -> int:
    """Until the process used under 1% of a core over `window` seconds (or `limit`
    passed); its peak RSS meanwhile."""
    rss, deadline = 0, time.monotonic() + limit
    while time.monotonic() < deadline:
        before = sum(proc.cpu_times()[:2])
        end = time.monotonic() + window
        while time.monotonic() < end:
            rss = max(rss, proc.memory_info().rss)
            time.sleep(0.5)
        if sum(proc.cpu_times()[:2]) - before < 0.01 * window:
            break
    return rss


def run_once(
    bins: dict[str, Path], s3: S3Server, n: int, env: dict[str, str], work: Path
) -> Figures:
    cluster = LocalCluster(work / "cluster", bins, audit=True).start(
        executor=False, pretend_pods=False
    )
    operator = None
    try:
        install_crd(cluster.api_client())
        core: Any = client.CoreV1Api(cluster.api)
        batch: Any = client.BatchV1Api(cluster.api)
        custom: Any = client.CustomObjectsApi(cluster.api)
        core.create_namespace({"metadata": {"name": NAMESPACE}})
        # Each resource's S3 reads use the Secret it names (one shared here).
        core.create_namespaced_secret(NAMESPACE, {"metadata": {"name": "s3-credentials"},
                                                  "stringData": s3.environment()})  # fmt: skip
        kubeconfig, user = _operator_identity(cluster)
        operator = start_operator(kubeconfig, work / "operator.log", env)
        proc = psutil.Process(operator.proc.pid)
        time.sleep(3)  # the operator's start-up is not part of the burst
        manifest = work / "resources.yaml"
        manifest.write_text(resources(n))
        cpu0 = sum(proc.cpu_times()[:2])
        started = time.monotonic()
        cluster.kubectl("apply", "-f", str(manifest))
        rss = 0
        while True:
            rss = max(rss, proc.memory_info().rss)
            exports = batch.list_namespaced_job(
                NAMESPACE, label_selector="bodypose.dev/stage=export"
            ).items
            items = custom.list_namespaced_custom_object(
                "bodypose.dev", "v1alpha1", NAMESPACE, "bodyposeexports"
            )["items"]
            with_status = sum(bool((i.get("status") or {}).get("phase")) for i in items)
            if len(exports) >= n and with_status >= n:
                break
            if time.monotonic() - started > 900:
                raise TimeoutError(f"N={n}: {len(exports)} Jobs, {with_status} statuses after 900s")
            time.sleep(0.5)
        all_jobs = time.monotonic() - started
        burst_cpu = sum(proc.cpu_times()[:2]) - cpu0
        # Settled: the first look at the Jobs that did not start (pendingCheckSeconds
        # after each was made) is part of the work; then the operator goes quiet.
        settle_until = started + max(all_jobs, PENDING_CHECK) + PENDING_CHECK + SETTLE_EXTRA
        while time.monotonic() < settle_until:
            rss = max(rss, proc.memory_info().rss)
            time.sleep(0.5)
        rss = max(rss, _wait_quiet(proc))
        cpu1, wall1 = sum(proc.cpu_times()[:2]), time.time()
        end = time.monotonic() + IDLE_SECONDS
        while time.monotonic() < end:
            rss = max(rss, proc.memory_info().rss)
            time.sleep(1)
        cpu2, wall2 = sum(proc.cpu_times()[:2]), time.time()
        time.sleep(2)  # the audit log is written in batches
        requests = _requests(cluster.audit_log, user, wall1, wall2)
        return Figures(all_jobs, rss / 2**20, burst_cpu, (cpu2 - cpu1) / (wall2 - wall1),
                       requests / (wall2 - wall1))  # fmt: skip
    finally:
        if operator is not None:
            operator.stop()
        cluster.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, nargs="+", default=[100, 300, 500])
    p.add_argument("--no-baseline", action="store_true", help="the event-driven design only")
    args = p.parse_args(argv)
    bins = ensure_binaries(("etcd", "kubernetes", "kwok", "minio"), progress=sys.stderr)
    results: dict[tuple[int, str], Figures] = {}
    with (
        tempfile.TemporaryDirectory(prefix="bench-operator-") as tmp,
        start_minio(bins["minio"], Path(tmp) / "minio") as s3,
    ):
        s3c = s3.client()
        s3c.create_bucket(Bucket=BUCKET)
        for m in range(7):
            s3c.put_object(Bucket=BUCKET, Key=f"models/m{m}.tlt", Body=os.urandom(4096))
        for n in args.n:
            for design, env in DESIGNS.items():
                if args.no_baseline and design != "event-driven":
                    continue
                work = Path(tmp) / f"n{n}-{design.split()[0]}"
                work.mkdir()
                figures = run_once(bins, s3, n, env, work)
                results[(n, design)] = figures
                print(f"N={n:<5} {design:<22} {figures.line()}", flush=True)
            base = results.get((n, "baseline (10 s timer)"))
            ours = results[(n, "event-driven")]
            if base is not None:
                print(
                    f"N={n:<5} ratio (baseline/ours)    "
                    f"all-jobs {base.all_jobs / ours.all_jobs:.2f}x "
                    f"rss {base.rss_mb / ours.rss_mb:.2f}x "
                    f"idle-cpu {base.idle_cpu / max(ours.idle_cpu, 1e-4):.0f}x "
                    f"idle-requests {base.idle_requests / max(ours.idle_requests, 1e-3):.0f}x",
                    flush=True,
                )
    largest = max(args.n)
    ours = results[(largest, "event-driven")]
    print(
        f"operator-scale: N={largest} all-jobs={ours.all_jobs:.1f}s rss={ours.rss_mb:.0f}MB "
        f"idle-cpu={ours.idle_cpu:.3f} idle-requests={ours.idle_requests:.2f}/s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
