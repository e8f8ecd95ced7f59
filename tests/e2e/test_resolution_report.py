"""TAO's resolution table from a real run: the sweep example's resources through the operator,
then `bodypose-report` over their statuses, and its plot.

The trained sample (its evaluation drawings and annotations) in MinIO; the
`examples/resolution-sweep` chart rendered by helm at TAO's three
resolutions, fp32 (three TensorFlow exports at once fit this machine; int8
adds nothing this test checks), one onnxruntime target on the cpu pool;
every Job runs from the exporter image. Each target's status then carries
the latency its build measured and the AP of its engine: the report prints
one row per resolution with exactly those figures, and writes the plot.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from devcluster.controlplane import LocalCluster
from devcluster.operator_process import OperatorProcess
from tests.conftest import S3Endpoint
from tests.e2e.test_operator_flow import kubectl, operators, wait_ready

__all__ = ["operators"]  # the fixture, used by name

ROOT = Path(__file__).resolve().parents[2]
KEY = "nvidia_tlt"
SIZES = ("224x320", "288x384", "320x448")


def test_the_report_tabulates_and_plots_a_real_sweep(
    cluster: LocalCluster,
    namespace: str,
    s3_endpoint: S3Endpoint,
    s3_bucket: str,
    helm: Path,
    operators: Callable[[], OperatorProcess],
    tmp_path: Path,
) -> None:
    from bodypose_exporter.stages.sample import write_trained_sample

    sample = write_trained_sample(tmp_path / "trained", KEY, images=8)
    s3 = s3_endpoint.client()
    s3.upload_file(str(sample.model), s3_bucket, "models/bpnet.tlt")
    s3.upload_file(str(sample.annotations), s3_bucket, "eval/person_keypoints.json")
    for image in sorted(sample.images.iterdir()):
        s3.upload_file(str(image), s3_bucket, f"eval/images/{image.name}")
    core: Any = client.CoreV1Api(cluster.api_client())
    for name, data in (("bpnet-key", {"key": KEY}), ("s3-credentials", s3_endpoint.environment())):
        core.create_namespaced_secret(namespace, {"metadata": {"name": name}, "stringData": data})
    rendered = subprocess.run(
        [str(helm), "template", "sweep", str(ROOT / "examples" / "resolution-sweep"),
         "--set", "precisions={fp32}", "--set", "sweep=e2e",
         "--set", f"model.uri=s3://{s3_bucket}/models/bpnet.tlt",
         "--set", f"evaluation.annotationsUri=s3://{s3_bucket}/eval/person_keypoints.json",
         "--set", f"evaluation.imagesUri=s3://{s3_bucket}/eval/images",
         "--set", f"output.uri=s3://{s3_bucket}/artifacts"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    op = operators()
    kubectl(cluster, "apply", "-n", namespace, "-f", "-", stdin=rendered)
    names = [d["metadata"]["name"] for d in yaml.safe_load_all(rendered) if d]
    assert names == [f"e2e-{size}-fp32" for size in SIZES]
    for name in names:
        wait_ready(cluster, namespace, name, op)

    api: Any = client.CustomObjectsApi(cluster.api_client())
    statuses = {n: api.get_namespaced_custom_object("bodypose.dev", "v1alpha1", namespace,
                                                    "bodyposeexports", n)["status"]
                for n in names}  # fmt: skip
    report = [sys.executable, "-m", "bodypose_operator.report", "-l", "bodypose.dev/sweep=e2e",
              "-n", namespace, "--kubeconfig", str(cluster.kubeconfig)]  # fmt: skip
    table = subprocess.run([*report, "--format", "csv", "--plot", str(tmp_path / "sweep")],
                           capture_output=True, text=True, check=True)  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(table.stdout)))
    assert [r["resolution"] for r in rows] == list(SIZES)
    for row, name in zip(rows, names, strict=True):
        (target,) = statuses[name]["targets"]
        assert row["target"] == "cpu" and row["precision"] == "fp32"
        assert float(row["batch-1 ms (median)"]) == round(
            target["latencyMs"]["batch1"]["median"], 2
        )
        assert float(row["AP"]) == target["ap"] and float(row["APm"]) == target["apM"]
        assert target["latencyMs"]["batchMax"]["batch"] == 4 and target["throughput"] > 0
        # What the figure is: ONNX Runtime by the wall clock, at the threads the pod's CPU
        # budget gave it (verification/latency.py, engines/cpu_budget.py).
        how = target["latency"]
        assert how["clock"] == "wall" and how["includes"] == ["inference", "output conversion"]
        assert how["threads"] >= 1 and how["threadsFrom"].startswith("affinity ")
    assert float(rows[0]["batch-1 ms (median)"]) > 0
    # kubectl get -o wide shows the slowest target's batch-1 median
    wide = kubectl(cluster, "get", "bpe", "-n", namespace, "-o", "wide")
    assert "LATENCY-MS" in wide.splitlines()[0]
    markdown = subprocess.run(report, capture_output=True, text=True, check=True).stdout
    assert markdown.splitlines()[0].startswith("| resolution | precision | target |")
    assert (tmp_path / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    svg = ET.parse(tmp_path / "sweep.svg").getroot()
    assert sum("line2d" in (e.get("id") or "") for e in svg.iter()) >= 2  # AP and APm lines
    (tmp_path / "report.md").write_text(markdown)
