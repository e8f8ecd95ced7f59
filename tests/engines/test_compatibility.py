"""The engine compatibility record: file names, the GPU checked before a build, reuse rules."""

from __future__ import annotations

import pytest

from bodypose_exporter.engines.base import EngineOptions
from bodypose_exporter.engines.compatibility import (
    check_expected_gpu,
    check_foreign_options,
    check_level,
    product_matches,
    tensorrt_record,
)
from bodypose_exporter.engines.naming import artifact_file_name
from bodypose_exporter.engines.ort.args import OnnxRuntimeOptions
from bodypose_exporter.engines.ort.args import check as check_ort_options
from bodypose_exporter.engines.registry import BACKEND_MODULES, facts_of
from bodypose_exporter.errors import UserError
from tests.support.builds import engine_options

A10 = {"gpuName": "NVIDIA A10", "computeCapability": "8.6", "tensorrtVersion": "10.8.0.43"}
TRT, ORT = facts_of("tensorrt"), facts_of("onnxruntime")
T4 = {"gpuName": "Tesla T4", "computeCapability": "7.5", "tensorrtVersion": "10.8.0.43"}


def test_engine_names_carry_the_record_and_onnx_artifacts_are_onnx() -> None:
    record = tensorrt_record(A10, "none")
    given = "s3://b/p/targets/a10/bpnet_model.320.448.int8.engine"
    assert artifact_file_name(given, TRT, record) == (
        "s3://b/p/targets/a10/bpnet_model.320.448.int8.sm86.trt10.8.0.43.engine"
    )
    plus = tensorrt_record(A10, "ampere+")
    assert artifact_file_name("x/bpnet_model.224.320.fp16.deploy.engine", TRT, plus) == (
        "x/bpnet_model.224.320.fp16.deploy.sm86.trt10.8.0.43.ampere_plus.engine"
    )
    tagged = artifact_file_name(given, TRT, record)
    assert artifact_file_name(tagged, TRT, record) == tagged  # never twice
    assert artifact_file_name("mine.plan", TRT, record) == "mine.sm86.trt10.8.0.43.plan"
    assert artifact_file_name(given, ORT, None) == (
        "s3://b/p/targets/a10/bpnet_model.320.448.int8.onnx"
    )
    assert artifact_file_name("out/m.onnx", ORT, None) == "out/m.onnx"
    assert record.as_dict() == {
        "computeCapability": "8.6",
        "tensorrtVersion": "10.8.0.43",
        "hardwareCompatibility": "none",
    }


def test_the_pools_gpu_label_matches_the_device() -> None:
    assert product_matches("NVIDIA A100-SXM4-40GB", "NVIDIA-A100-SXM4-40GB")
    assert product_matches("Tesla T4", "Tesla-T4-SHARED")
    assert product_matches("NVIDIA A100-SXM4-40GB", "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb")
    assert not product_matches("NVIDIA A10", "NVIDIA-A100-SXM4-40GB")
    check_expected_gpu(A10, "NVIDIA-A10", "8.6")


def test_another_gpu_than_the_pool_advertises_fails_before_the_build() -> None:
    with pytest.raises(UserError) as raised:
        check_expected_gpu(T4, "NVIDIA-A100-SXM4-40GB", None)
    assert str(raised.value) == (
        "this pod's GPU is 'Tesla T4' (compute capability 7.5), but the target's pool "
        "advertises nvidia.com/gpu.product=NVIDIA-A100-SXM4-40GB (--expected_gpu_product): an "
        "engine built here would not run there; check the target's nodeSelector and the nodes' "
        "labels"
    )
    assert raised.value.reason == "GpuMismatch"
    with pytest.raises(UserError) as raised:
        check_expected_gpu(T4, None, "8.6")
    assert str(raised.value) == (
        "this pod's GPU 'Tesla T4' has compute capability 7.5, not 8.6 "
        "(--expected_compute_capability): an engine built here would not run on the target's GPUs"
    )


def test_hardware_compatibility_levels_are_the_backends_own() -> None:
    check_level("ampere+", TRT)
    with pytest.raises(UserError) as raised:
        check_level("ampere+", ORT)
    assert str(raised.value) == (
        "--hardware_compatibility ampere+: only TensorRT engines have a hardware-compatibility "
        "level; this is an onnxruntime build"
    )
    with pytest.raises(UserError, match="--hardware_compatibility 'turing': choose one of"):
        check_level("turing", TRT)


def test_the_int8_class_flag_only_where_it_changes_the_artifact() -> None:
    registered = [facts for facts, _ in BACKEND_MODULES.values()]
    check_foreign_options(EngineOptions(), TRT, registered)  # not given: nothing to refuse
    vnni = engine_options(precision="int8", int8_instruction_set="x86-vnni")
    check_foreign_options(vnni, ORT, registered)
    with pytest.raises(
        UserError,
        match=r"^--int8_instruction_set: only onnxruntime builds take it; this build is tensorrt$",
    ):
        check_foreign_options(vnni, TRT, registered)
    product = engine_options(expected_gpu_product="NVIDIA-A10")
    with pytest.raises(
        UserError,
        match=r"^--expected_gpu_product: only tensorrt builds take it; this build is onnxruntime$",
    ):
        check_foreign_options(product, ORT, registered)
    with pytest.raises(UserError, match="only used with --data_type int8; this build is fp16"):
        check_ort_options(OnnxRuntimeOptions("x86"), "fp16")
    with pytest.raises(UserError, match="'x86-sse': choose one of x86-amx, x86-vnni"):
        check_ort_options(OnnxRuntimeOptions("x86-sse"), "int8")
