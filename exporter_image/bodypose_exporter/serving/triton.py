"""A Triton Inference Server model repository entry for one built artifact.

Followed: Triton's model configuration (triton-inference-server/server
`docs/user_guide/model_configuration.md`, the `ModelConfig` message of
triton-inference-server/common `protobuf/model_config.proto`) and model
repository layout (`docs/user_guide/model_repository.md`):

    triton/<model>/config.pbtxt
    triton/<model>/1/model.plan        (TensorRT: platform tensorrt_plan)
    triton/<model>/1/model.onnx        (ONNX Runtime: platform onnxruntime_onnx)

The config is written from the model's real bindings (`bindings.read` of
the ONNX the artifact was built from): the input `input_1:0`, NHWC, its H, W
and 3 channels; both outputs with their dims; `max_batch_size` the
engine's profile maximum (Triton refuses a larger one); dynamic batching
(Triton groups single-image requests up to that size); one instance on the
GPU or the CPU. Several GPU targets may share one model: `merge` adds a
target's plan as `model.sm<cc>.plan` and maps its compute capability to it
in `cc_model_filenames`, so each Triton node loads the plan built for its
GPU. The tests parse the text with Triton's own `model_config_pb2`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bodypose_exporter.errors import UserError
from bodypose_exporter.serving.bindings import Binding, Bindings

DEFAULT_MODEL_NAME = "bpnet"
VERSION = "1"
MARKER = "# written by bodypose-export"
_CC_LINE = re.compile(r'cc_model_filenames\s*\{\s*key:\s*"([^"]+)"\s*value:\s*"([^"]+)"\s*\}')


@dataclass(frozen=True)
class TritonPlatform:
    """How Triton serves an artifact: its model configuration's platform (a backend's fact)."""

    platform: str  # tensorrt_plan | onnxruntime_onnx
    file_name: str  # the file in the model's version directory
    device_kind: str  # KIND_GPU | KIND_CPU


@dataclass(frozen=True)
class TritonModel:
    name: str
    platform: TritonPlatform
    bindings: Bindings
    max_batch_size: int
    #: compute capability -> plan file name in `1/`, when GPU targets share the model
    cc_model_filenames: dict[str, str] = field(default_factory=dict)

    @property
    def default_file(self) -> str:
        return self.platform.file_name

    def config_path(self) -> str:
        return f"{self.name}/config.pbtxt"

    def model_path(self, file_name: str | None = None) -> str:
        return f"{self.name}/{VERSION}/{file_name or self.default_file}"


def _dims(values: tuple[int, ...]) -> str:
    return "[ " + ", ".join(str(v) for v in values) + " ]"


def _tensor(binding: Binding, image: bool) -> str:
    lines = [
        "  {",
        f'    name: "{binding.name}"',
        f"    data_type: {binding.triton_type}",
    ]
    if image:
        lines.append("    format: FORMAT_NHWC")
    lines += [f"    dims: {_dims(binding.dims)}", "  }"]
    return "\n".join(lines)


def config_text(model: TritonModel) -> str:
    """config.pbtxt (protobuf text format of Triton's ModelConfig)."""
    outputs = ",\n".join(_tensor(b, image=False) for b in model.bindings.outputs)
    lines = [
        MARKER,
        f'name: "{model.name}"',
        f'platform: "{model.platform.platform}"',
        f"max_batch_size: {model.max_batch_size}",
        "input [",
        _tensor(model.bindings.input, image=True),
        "]",
        "output [",
        outputs,
        "]",
        "dynamic_batching { }",
        f"instance_group [ {{ kind: {model.platform.device_kind} count: 1 }} ]",
    ]
    if model.cc_model_filenames:
        lines += [
            f'cc_model_filenames {{ key: "{cc}" value: "{name}" }}'
            for cc, name in sorted(model.cc_model_filenames.items())
        ]
    else:
        lines.append(f'default_model_filename: "{model.default_file}"')
    return "\n".join(lines) + "\n"


def plan_file_for(compute_capability: str) -> str:
    return f"model.sm{compute_capability.replace('.', '')}.plan"


def existing_cc_filenames(config: str, where: str) -> dict[str, str]:
    """The cc -> plan map of a config this tool wrote (refuses anyone else's)."""
    if not config.startswith(MARKER):
        raise UserError(
            f"--triton_repository: {where} exists and was not written by bodypose-export; "
            "choose another directory or remove it"
        )
    return dict(_CC_LINE.findall(config))


def merge(
    existing_config: str | None, model: TritonModel, compute_capability: str, where: str
) -> TritonModel:
    """`model` as one more GPU target of a repository entry, keyed by compute capability."""
    known: dict[str, str] = {}
    if existing_config:
        known = existing_cc_filenames(existing_config, where)
        if f'platform: "{model.platform.platform}"' not in existing_config:
            raise UserError(
                f"--triton_repository: {where} holds this model for another runtime; TensorRT "
                "plans cannot share it (choose another directory)"
            )
    known[compute_capability] = plan_file_for(compute_capability)
    return TritonModel(model.name, model.platform, model.bindings, model.max_batch_size, known)


def check_replaceable(existing_config: str, model: TritonModel, where: str) -> None:
    """An entry for one artifact may replace its own kind, never a shared TensorRT one."""
    if existing_cc_filenames(existing_config, where):
        raise UserError(
            f"--triton_repository: {where} holds TensorRT plans for other GPU targets; an "
            f"{model.platform.platform} model cannot share it (choose another directory)"
        )
