"""The resource's schema (models vs committed CRD) and the Job builders, without a cluster."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from bodypose_operator.api.crd import render
from bodypose_operator.api.v1alpha1 import BodyPoseExportSpec
from bodypose_operator.builders.jobs import (
    KEY_ENV,
    build_export_job,
    build_target_job,
    target_resources,
)
from bodypose_operator.builders.naming import content_key, job_name
from bodypose_operator.settings import Settings
from tests.support.operator_fakes import resource, spec_dict

ROOT = Path(__file__).resolve().parents[2]


def test_committed_crd_is_generated_from_the_models() -> None:
    committed = (ROOT / "crds" / "bodyposeexports.bodypose.dev.yaml").read_text()
    assert committed == render(), "crds/ differs from the pydantic models: run `make crds`"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"input": {"height": 322, "width": 448}}, "must be multiples of 8"),
        ({"precision": "int8"}, "precision int8 needs a calibration source"),
        (
            {"targets": [{"name": "a"}, {"name": "a"}]},
            "target names must be unique",
        ),
        ({"targets": []}, "at least 1 item"),
        ({"targets": [{"name": "Bad_Name"}]}, "String should match pattern"),
        ({"input": {"height": 320, "width": 448, "channels": 1}}, "Input should be 3"),
        (
            {
                "targets": [
                    {"name": "cpu", "backend": "onnxruntime", "hardwareCompatibility": "ampere+"}
                ]
            },
            "hardwareCompatibility ampere\\+ applies to tensorrt targets only",
        ),
    ],
)
def test_spec_validation_messages(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        BodyPoseExportSpec.model_validate(spec_dict(**overrides))


def test_defaults_follow_tao() -> None:
    spec = BodyPoseExportSpec.model_validate(spec_dict())
    assert spec.engine.maxBatchSize == 1
    assert spec.engine.maxWorkspaceSize == 2 << 30
    assert spec.targets[0].backend == "tensorrt"
    assert target_resources(spec.targets[0]) == {"limits": {"nvidia.com/gpu": "1"}}
    cpu = BodyPoseExportSpec.model_validate(
        spec_dict(targets=[{"name": "cpu", "backend": "onnxruntime"}])
    ).targets[0]
    assert "nvidia.com/gpu" not in json.dumps(target_resources(cpu))


def test_content_key_ignores_scheduling_but_not_artifact_fields() -> None:
    base = BodyPoseExportSpec.model_validate(spec_dict())
    moved = BodyPoseExportSpec.model_validate(
        spec_dict(targets=[{"name": "a100", "nodeSelector": {"pool": "other"}}])
    )
    resized = BodyPoseExportSpec.model_validate(spec_dict(input={"height": 288, "width": 384}))
    assert content_key("sha256:x", base) == content_key("sha256:x", moved)
    assert content_key("sha256:x", base) != content_key("sha256:x", resized)
    assert content_key("sha256:x", base) != content_key("sha256:y", base)


def test_job_names_are_deterministic_and_fit_63_characters() -> None:
    long = "a" * 60
    name = job_name(long, "build", "k" * 16, target="t" * 40)
    assert len(name) <= 63
    assert name == job_name(long, "build", "k" * 16, target="t" * 40)
    assert name != job_name(long, "build", "k" * 16, target="u" * 40)


def test_export_job_keeps_the_key_out_of_the_spec_and_runs_restricted() -> None:
    spec = BodyPoseExportSpec.model_validate(spec_dict())
    job = build_export_job(resource(spec_dict()), spec, "0123456789abcdef", Settings())
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["bpnet-export"]
    assert "-k" not in container["args"]
    key_env = next(e for e in container["env"] if e["name"] == KEY_ENV)
    assert key_env["valueFrom"]["secretKeyRef"] == {"name": "bpnet-key", "key": "key"}
    assert "-o" in container["args"]
    out = container["args"][container["args"].index("-o") + 1]
    assert out == "s3://artifacts/bpnet/ml/demo/0123456789abcdef/bpnet_model.etlt"
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"]
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["volumes"][0]["emptyDir"]
    owner = job["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == (
        "BodyPoseExport",
        "1234-uid",
        True,
    )
    labels = job["metadata"]["labels"]
    assert labels["bodypose.dev/export"] == "demo" and labels["bodypose.dev/generation"] == "3"
    assert "nvidia.com/gpu" not in json.dumps(container["resources"])


def _jobs(settings: Settings) -> dict[str, dict[str, Any]]:
    """The export Job and one build Job per backend, by name: export, gpu, cpu."""
    raw = spec_dict(targets=[{"name": "gpu"}, {"name": "cpu", "backend": "onnxruntime"}])
    spec, body = BodyPoseExportSpec.model_validate(raw), resource(raw)
    jobs = {"export": build_export_job(body, spec, "0123456789abcdef", settings)}
    for target in spec.targets:
        jobs[target.name] = build_target_job(
            body, spec, target, "0123456789abcdef", settings, "i" * 16
        )
    return jobs


def _image(job: dict[str, Any]) -> str:
    (container,) = job["spec"]["template"]["spec"]["containers"]
    return str(container["image"])


def test_each_job_runs_the_image_of_its_backend() -> None:
    jobs = _jobs(Settings())
    assert {name: _image(job) for name, job in jobs.items()} == {
        "export": "bodypose-export/exporter:0.1.0",
        "gpu": "bodypose-export/exporter-gpu:0.1.0",
        "cpu": "bodypose-export/exporter:0.1.0",
    }
    for job in jobs.values():
        pod = job["spec"]["template"]["spec"]
        assert pod["containers"][0]["imagePullPolicy"] == "IfNotPresent"
        assert "imagePullSecrets" not in pod


def test_images_pull_policy_and_pull_secrets_come_from_the_environment() -> None:
    settings = Settings.from_env({
        "BODYPOSE_EXPORTER_IMAGE": "registry.example/bpe/exporter:1.2",
        "BODYPOSE_EXPORTER_GPU_IMAGE": "registry.example/bpe/exporter-gpu:1.2",
        "BODYPOSE_EXPORT_IMAGE": "registry.example/bpe/tao-deploy-exporter:5.5",
        "BODYPOSE_IMAGE_PULL_POLICY": "Always",
        "BODYPOSE_EXPORTER_GPU_IMAGE_PULL_POLICY": "IfNotPresent",
        "BODYPOSE_IMAGE_PULL_SECRETS": "regcred, ngc ,,",
    })  # fmt: skip
    jobs = _jobs(settings)
    assert {name: _image(job) for name, job in jobs.items()} == {
        "export": "registry.example/bpe/tao-deploy-exporter:5.5",
        "gpu": "registry.example/bpe/exporter-gpu:1.2",
        "cpu": "registry.example/bpe/exporter:1.2",
    }
    policies = {
        name: job["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"]
        for name, job in jobs.items()
    }
    assert policies == {"export": "Always", "gpu": "IfNotPresent", "cpu": "Always"}
    for job in jobs.values():
        pod = job["spec"]["template"]["spec"]
        assert pod["imagePullSecrets"] == [{"name": "regcred"}, {"name": "ngc"}]


def test_export_image_defaults_to_the_cpu_exporter_image() -> None:
    settings = Settings.from_env({
        "BODYPOSE_EXPORTER_IMAGE": "r/exporter:2", "BODYPOSE_EXPORT_IMAGE": "",
    })  # fmt: skip
    assert _image(_jobs(settings)["export"]) == "r/exporter:2"
    assert Settings.from_env({}) == Settings()


def test_the_latency_budget_reaches_every_build_job_and_nothing_else() -> None:
    def args(job: dict[str, Any]) -> list[str]:
        (container,) = job["spec"]["template"]["spec"]["containers"]
        return list(container["args"])

    jobs = _jobs(Settings.from_env({"BODYPOSE_LATENCY_BUDGET_SECONDS": " 2.5 "}))
    for name in ("gpu", "cpu"):
        built = args(jobs[name])
        assert built[built.index("--latency_budget") + 1] == "2.5", name
    assert "--latency_budget" not in args(jobs["export"])
    # Unset or empty (the chart's default): the exporter's own default, no flag at all, so
    # no Job made before the setting existed is named anew.
    for env in ({}, {"BODYPOSE_LATENCY_BUDGET_SECONDS": ""}):
        unset = _jobs(Settings.from_env(env))
        assert all("--latency_budget" not in args(job) for job in unset.values())


@pytest.mark.parametrize("value", ["0", "-1", "soon", "inf"])
def test_a_latency_budget_that_is_no_number_of_seconds_stops_the_operator_saying_so(
    value: str,
) -> None:
    with pytest.raises(ValueError) as refused:
        Settings.from_env({"BODYPOSE_LATENCY_BUDGET_SECONDS": value})
    assert str(refused.value) == (
        "BODYPOSE_LATENCY_BUDGET_SECONDS (jobs.latencyBudgetSeconds): a number of seconds "
        f"above 0, or empty for the exporter's default: got {value!r}"
    )


def test_jobs_write_only_to_their_scratch_and_tmp_volumes() -> None:
    for job in _jobs(Settings(scratch_size_limit="5Gi")).values():
        pod = job["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["volumeMounts"] == [
            {"name": "scratch", "mountPath": "/scratch"},
            {"name": "tmp", "mountPath": "/tmp"},
        ]
        assert pod["volumes"] == [
            {"name": "scratch", "emptyDir": {"sizeLimit": "5Gi"}},
            {"name": "tmp", "emptyDir": {}},
        ]


def test_chart_ships_the_generated_crd() -> None:
    chart_crd = ROOT / "charts" / "bodypose-operator" / "crds" / "bodyposeexports.bodypose.dev.yaml"
    assert chart_crd.read_text() == render(), (
        "the chart's CRD differs from the models: run `make crds`"
    )


def test_the_example_resources_are_valid() -> None:
    """examples/ is what users copy into GitOps repositories: it must stay valid."""
    import yaml

    from bodypose_operator.api.v1alpha1 import BodyPoseExportSpec

    examples = sorted((ROOT / "examples").glob("*.yaml"))
    assert examples
    for path in examples:
        doc = yaml.safe_load(path.read_text().replace("BUCKET", "bodypose-demo"))
        spec = BodyPoseExportSpec.model_validate(doc["spec"])
        assert spec.precision != "int8" or spec.calibration is not None


def test_a_tensorrt_rtx_target_builds_for_its_pools_gpu_from_the_fp16_model() -> None:
    from bodypose_operator.builders.jobs import build_args, engine_file_name, export_args

    labels = {"nvidia.com/gpu.compute.major": "8", "nvidia.com/gpu.compute.minor": "9"}
    spec = BodyPoseExportSpec.model_validate(spec_dict(
        precision="fp16",
        targets=[{"name": "l4", "backend": "tensorrt-rtx", "nodeSelector": labels},
                 {"name": "t4", "backend": "tensorrt-rtx", "computeCapabilities": ["7.5"]}],
    ))  # fmt: skip
    l4, t4 = spec.targets
    args = build_args(spec, l4, "s3://b/p", "i" * 16)
    assert args[args.index("--compute_capabilities") + 1] == "8.9"  # from the pool's labels
    assert args[args.index("--fp16_model") + 1] == "s3://b/p/bpnet_model.fp16.onnx"
    assert "--expected_gpu_product" not in args and "--hardware_compatibility" not in args
    named = build_args(spec, t4, "s3://b/p", "i" * 16)
    assert named[named.index("--compute_capabilities") + 1] == "7.5"
    assert engine_file_name(spec, l4).endswith(".fp16.engine")
    exported = export_args(spec, "s3://b/p")
    assert exported[exported.index("--data_type") + 1] == "fp16"  # the FP16 model is published


@pytest.mark.parametrize(
    ("target", "precision", "message"),
    [
        ({"computeCapabilities": ["9.0"]}, "fp16", "computeCapabilities: tensorrt-rtx builds for "
         "7.5, 8.0, 8.6, 8.9, 12.0, 12.1 only (9.0 is Hopper"),
        ({"computeCapabilities": ["8.9"]}, "int8", "tensorrt-rtx targets build fp32 and fp16 only"),
        ({}, "fp32", "tensorrt-rtx targets name the GPUs to build for"),
    ],
)  # fmt: skip
def test_pydantic_refuses_what_tensorrt_rtx_cannot_build(
    target: dict[str, Any], precision: str, message: str
) -> None:
    extra = {"calibration": {"imagesUri": "s3://bucket/images"}} if precision == "int8" else {}
    with pytest.raises(ValueError, match=re.escape(message)):
        BodyPoseExportSpec.model_validate(spec_dict(
            precision=precision, **extra,
            targets=[{"name": "rtx", "backend": "tensorrt-rtx", **target}],
        ))  # fmt: skip


def test_build_args_carry_the_compatibility_record_and_the_pools_gpu() -> None:
    from bodypose_operator.builders.jobs import build_args, engine_file_name

    spec = BodyPoseExportSpec.model_validate(spec_dict(
        precision="int8", calibration={"imagesUri": "s3://bucket/images"},
        engine={"int8Route": "calBin"},
        targets=[{"name": "a100", "hardwareCompatibility": "ampere+",
                  "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}},
                 {"name": "cpu", "backend": "onnxruntime"}],
    ))  # fmt: skip
    a100, cpu = spec.targets
    flags = build_args(spec, a100, "s3://o/p", "i" * 16)
    pairs = dict(zip(flags[::2], flags[1::2], strict=False))
    assert pairs["--hardware_compatibility"] == "ampere+"
    assert pairs["--expected_gpu_product"] == "NVIDIA-A100-SXM4-80GB"
    assert pairs["--int8_route"] == "cal_bin"
    assert pairs["--engine_file"].endswith(
        "/targets/a100/iiiiiiiiiiiiiiii/bpnet_model.320.448.int8.engine"
    )
    assert pairs["--target_identity"] == "i" * 16
    # One timing cache per GPU model and TensorRT version, shared under the output prefix
    # (the build names the file from the device it finds).
    assert pairs["--timing_cache_dir"] == "s3://artifacts/bpnet/.timing-caches"
    # An ONNX Runtime artifact is named for what it is; no TensorRT flags for it.
    cpu_flags = build_args(spec, cpu, "s3://o/p", "i" * 16)
    assert engine_file_name(spec, cpu) == "bpnet_model.320.448.int8.onnx"
    assert not {"--hardware_compatibility", "--expected_gpu_product", "--int8_route",
                "--timing_cache_dir"} & set(cpu_flags)  # fmt: skip


def test_target_identity_follows_the_compatibility_record() -> None:
    from bodypose_operator.builders.naming import target_identity

    def target(**extra: Any) -> Any:
        spec = BodyPoseExportSpec.model_validate(
            spec_dict(targets=[{"name": "a100", "nodeSelector": {"pool": "a100"}, **extra}])
        )
        return spec.targets[0]

    base = target_identity(target(), "gpu:10.8")
    assert target_identity(target(name="other", tolerations=[]), "gpu:10.8") == base
    assert target_identity(target(hardwareCompatibility="ampere+"), "gpu:10.8") != base
    assert target_identity(target(), "gpu:10.9") != base  # another TensorRT
    # An empty backendOptions map is no map: identities made before it existed hold.
    assert target_identity(target(backendOptions={}), "gpu:10.8") == base


def test_bad_input_and_failed_gates_fail_the_job_at_once_crashes_retry() -> None:
    for job in _jobs(Settings()).values():
        rules = job["spec"]["podFailurePolicy"]["rules"]
        assert rules == [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [2, 3]}}]
        # Anything else (75: S3 away, 137: killed, a lost node) is retried with back-off.
        assert job["spec"]["backoffLimit"] == 6


def test_each_built_in_backends_part_implements_the_interfaces_its_jobs_need() -> None:
    """What a backend's build takes beyond the generic arguments is its operator part's
    (`api/builtin_backends/`), asked by interface (`api/capabilities.py`), never by name."""
    from bodypose_operator.api import capabilities as c
    from bodypose_operator.api.backends import BACKENDS

    interfaces = (c.TakesArguments, c.ChecksGpuProduct, c.Int8Routes, c.SharesTimingCache,
                  c.Int8ByCpuClass, c.ExplainsUnsupportedCapabilities,
                  c.TakesBackendOptions)  # fmt: skip
    implemented = {
        name: {i.__name__ for i in interfaces if isinstance(BACKENDS[name].part, i)}
        for name in ("tensorrt", "onnxruntime", "tensorrt-rtx")
    }
    assert implemented == {
        "tensorrt": {"ChecksGpuProduct", "Int8Routes", "SharesTimingCache"},
        "onnxruntime": {"Int8ByCpuClass"},
        "tensorrt-rtx": {"ExplainsUnsupportedCapabilities"},
    }
    assert [n for n, row in BACKENDS.items() if row.int8_by_cpu_class] == ["onnxruntime"]
