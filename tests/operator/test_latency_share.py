"""A build's latency belongs to a known share of its node, and the status says which and how.

The build Job the builder makes has its CPU request equal to its CPU limit
(every build times its engine where it can run it); requests and limits that
differ are refused with the user's words (by the operator: the API server cannot
afford a CEL rule comparing them, `api.spec.Resources`). The status copies from the build's
manifest what a figure is: its clock, what it includes, the CPU quota and the
threads it ran with.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.utils.quantity import parse_quantity
from pydantic import ValidationError

from bodypose_operator.api import spec as spec_models
from bodypose_operator.api.v1alpha1 import BodyPoseExportSpec, TargetStatus
from bodypose_operator.builders.jobs import build_target_job
from bodypose_operator.controller.manifests import target_fields
from bodypose_operator.controller.observe import observe
from bodypose_operator.settings import Settings
from tests.support.operator_fakes import resource, spec_dict

GPU = {"name": "a100", "nodeSelector": {"nvidia.com/gpu.product": "A100"}}
CPU = {"name": "cpu", "nodeSelector": {"bodypose.dev/pool": "cpu"}, "backend": "onnxruntime"}
RTX = {"name": "l4", "backend": "tensorrt-rtx", "computeCapabilities": ["8.9"]}


def container_resources(target: dict[str, Any]) -> dict[str, Any]:
    """The build container's resources of the Job the builder makes for `target`."""
    raw = spec_dict(targets=[target])
    spec = BodyPoseExportSpec.model_validate(raw)
    job = build_target_job(resource(raw), spec, spec.targets[0], "0" * 16, Settings(), "i" * 16)
    (container,) = job["spec"]["template"]["spec"]["containers"]
    resources: dict[str, Any] = container["resources"]
    return resources


@pytest.mark.parametrize(
    ("target", "cpu"),
    [
        (CPU, "1"),  # the defaults of the backends timed by the wall clock
        (RTX, "1"),
        ({**CPU, "resources": {"requests": {"cpu": "3", "memory": "4Gi"}}}, "3"),  # request only
        ({**CPU, "resources": {"limits": {"cpu": "1500m"}}}, "1500m"),  # limit only
        ({**CPU, "resources": {"requests": {"memory": "4Gi"}}}, "1"),  # no CPU named
        ({**GPU, "resources": {"requests": {"cpu": "4"}, "limits": {"nvidia.com/gpu": "1"}}}, "4"),
        ({**CPU, "resources": {"requests": {"cpu": "1"}, "limits": {"cpu": "1000m"}}}, "1"),
    ],
)
def test_a_timed_build_jobs_cpu_request_equals_its_limit(target: dict[str, Any], cpu: str) -> None:
    resources = container_resources(target)
    assert parse_quantity(resources["requests"]["cpu"]) == parse_quantity(cpu)
    assert parse_quantity(resources["limits"]["cpu"]) == parse_quantity(cpu)
    # What the target named besides the CPU stays as it was.
    named = target.get("resources") or {}
    for kind in ("requests", "limits"):
        for key, value in (named.get(kind) or {}).items():
            if key != "cpu":
                assert resources[kind][key] == value


def test_a_tensorrt_build_names_no_cpu_unless_its_target_does() -> None:
    # Its figures are CUDA-event times of the GPU's work; a ClusterQueue that covers only
    # nvidia.com/gpu (tests/e2e/test_kueue_queues.py) must keep admitting its Jobs.
    assert container_resources(GPU) == {"limits": {"nvidia.com/gpu": "1"}}
    named = {**GPU, "resources": {"limits": {"nvidia.com/gpu": "2"}}}
    assert "cpu" not in str(container_resources(named))


def test_a_cpu_request_below_its_limit_is_refused_in_the_users_words() -> None:
    raw = spec_dict(targets=[{**CPU, "resources": {"requests": {"cpu": "1"},
                                                  "limits": {"cpu": "4"}}}])  # fmt: skip
    with pytest.raises(ValidationError) as caught:
        BodyPoseExportSpec.model_validate(raw)
    message = str(caught.value)
    assert (
        spec_models.CPU_REQUEST_IS_LIMIT in message
        and "got requests.cpu 1, limits.cpu 4" in message
    )
    assert "targets.0.resources" in message
    # The operator says it in the resource's status (the Ready condition's message).
    facts = observe(resource(raw), None, None, Settings())  # type: ignore[arg-type]
    assert facts.invalid is not None and facts.invalid.startswith("spec.targets.0.resources")
    assert "got requests.cpu 1, limits.cpu 4" in facts.invalid
    bad = spec_dict(targets=[{**CPU, "resources": {"requests": {"cpu": "lots"},
                                                  "limits": {"cpu": "4"}}}])  # fmt: skip
    with pytest.raises(ValidationError, match=r"cpu: .*lots"):
        BodyPoseExportSpec.model_validate(bad)


def ort_manifest(quota: float | None) -> dict[str, Any]:
    """What an ONNX Runtime build's manifest says of its timing (verification.latency)."""
    threads = 2 if quota is None else min(8, -(-int(quota * 1000) // 1000))
    source = "no quota" if quota is None else f"quota {quota:g} CPUs (/sys/fs/cgroup/cpu.max)"
    return {
        "artifacts": [],
        "latency": {
            "timed": "the engine on a preprocessed batch", "clock": "wall",
            "includes": ["inference", "output conversion"], "how": "time.perf_counter()",
            "warmup": 2, "device": "AMD EPYC", "threads": threads,
            "threadsFrom": f"affinity 8 of 8 CPUs, {source}",
            "cpuBudget": {"affinity": 8, "onlineCpus": 8, "quotaCpus": quota,
                          "threads": threads, "from": f"affinity 8 of 8 CPUs, {source}"},
            "batch1": {"batch": 1, "medianMs": 20.0, "p90Ms": 21.0, "imagesPerSecond": 50.0},
            "batchMax": {"batch": 4, "medianMs": 60.0, "p90Ms": 61.0, "imagesPerSecond": 66.7},
        },
    }  # fmt: skip


def test_the_status_says_the_share_clock_threads_and_what_a_figure_includes() -> None:
    fields = target_fields(ort_manifest(1.5))
    status = TargetStatus.model_validate({"name": "cpu", "phase": "Ready", **fields})
    assert status.latency is not None
    assert (status.latency.clock, status.latency.includes) == (
        "wall",
        ["inference", "output conversion"],
    )
    assert (status.latency.cpus, status.latency.threads) == ("1500m", 2)
    assert status.latency.threadsFrom == (
        "affinity 8 of 8 CPUs, quota 1.5 CPUs (/sys/fs/cgroup/cpu.max)"
    )
    assert target_fields(ort_manifest(2.0))["latency"]["cpus"] == "2"
    # No quota where it ran: no share to state, and the threads say so.
    unlimited = target_fields(ort_manifest(None))["latency"]
    assert "cpus" not in unlimited and unlimited["threadsFrom"].endswith("no quota")


def test_a_cuda_event_figure_says_so_and_names_no_threads() -> None:
    manifest = {
        "latency": {
            "clock": "cuda-events", "includes": ["inference"], "device": "NVIDIA A100",
            "cpuBudget": {"affinity": 2, "onlineCpus": 64, "quotaCpus": 2.0, "threads": 2},
            "batch1": {"batch": 1, "medianMs": 1.2, "p90Ms": 1.3, "imagesPerSecond": 833.0},
        }
    }  # fmt: skip
    status = TargetStatus.model_validate({"name": "a100", "phase": "Ready",
                                          **target_fields(manifest)})  # fmt: skip
    assert status.latency is not None
    assert status.latency.model_dump(exclude_none=True) == {
        "clock": "cuda-events", "includes": ["inference"], "cpus": "2"
    }  # fmt: skip


def test_a_manifest_from_before_the_clock_kinds_reads_as_wall_and_untimed_as_nothing() -> None:
    old = ort_manifest(None)
    old["latency"] = {k: v for k, v in old["latency"].items()
                      if k not in ("includes", "cpuBudget", "threadsFrom")}  # fmt: skip
    old["latency"]["clock"] = "wall clock around run()"
    assert target_fields(old)["latency"] == {"clock": "wall", "threads": 2}
    # ... and its figures without the spread it did not record.
    assert target_fields(old)["latencyMs"]["batch1"] == {"median": 20.0, "p90": 21.0, "batch": 1}
    assert "latency" not in target_fields({"latency": {"measured": False, "reason": "no GPU"}})


def test_the_status_carries_each_figures_spread_and_a_new_build_replaces_it() -> None:
    manifest = ort_manifest(1.0)
    manifest["latency"]["batch1"].update(p10Ms=19.0, spreadPct=10.0, runs=40)
    status = TargetStatus.model_validate({"name": "cpu", "phase": "Ready",
                                          **target_fields(manifest)})  # fmt: skip
    assert status.latencyMs is not None and status.latencyMs.batch1 is not None
    batch1 = status.latencyMs.batch1
    assert (batch1.p10, batch1.median, batch1.p90, batch1.spreadPct, batch1.runs) == (
        19.0, 20.0, 21.0, 10.0, 40,
    )  # fmt: skip
    # The target rebuilt (its spec edited): the status follows the new manifest only.
    rebuilt = ort_manifest(1.0)
    rebuilt["latency"]["batch1"].update(medianMs=30.0, p90Ms=33.0, p10Ms=29.0, spreadPct=13.3)
    again = target_fields(rebuilt)["latencyMs"]["batch1"]
    assert again == {"median": 30.0, "p90": 33.0, "p10": 29.0, "spreadPct": 13.3, "batch": 1}


def test_an_int8_artifact_no_faster_than_fp32_is_ready_with_a_warning_and_both_figures() -> None:
    warning = "int8 is not faster than fp32 on Intel Xeon: int8 11.00 ms, fp32 10.00 ms ..."
    manifest = ort_manifest(1.0)
    manifest["int8Speedup"] = {"int8MedianMs": 11.0, "fp32MedianMs": 10.0, "ratio": 0.91,
                               "runs": 40}  # fmt: skip
    manifest["warnings"] = [warning]
    status = TargetStatus.model_validate({"name": "cpu", "phase": "Ready",
                                          **target_fields(manifest)})  # fmt: skip
    assert status.int8Speedup is not None and status.warnings == [warning]
    assert (status.int8Speedup.int8Ms, status.int8Speedup.fp32Ms, status.int8Speedup.ratio) == (
        11.0, 10.0, 0.91,
    )  # fmt: skip
    # Rebuilt where int8 pays (another CPU class): the warning goes with the old manifest.
    manifest["int8Speedup"] = {"int8MedianMs": 3.0, "fp32MedianMs": 10.0, "ratio": 3.33}
    manifest["warnings"] = []
    fields = target_fields(manifest)
    assert "warnings" not in fields and fields["int8Speedup"]["ratio"] == 3.33
