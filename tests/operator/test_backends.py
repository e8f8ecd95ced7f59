"""The table of backends (api/backends.py): what reads it, and that a new row is all a
backend needs on the operator's side."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml

from bodypose_operator.api import backends
from bodypose_operator.api.admission import (
    OPTION_RULES,
    PRECISION_RULES,
    SPEC_RULES,
    option_rule,
    precision_rule,
)
from bodypose_operator.api.backends import (
    BACKENDS,
    DEFAULT_BACKEND,
    HARDWARE_COMPATIBILITY,
    TARGET_OPTIONS,
    Backend,
    BuildImage,
)
from bodypose_operator.api.base import Precision
from bodypose_operator.api.crd import render
from bodypose_operator.api.v1alpha1 import Target
from bodypose_operator.builders.jobs import build_args, engine_file_name, target_resources
from bodypose_operator.builders.naming import target_identity
from bodypose_operator.settings import Settings
from tests.support.operator_fakes import spec_dict

OPERATOR = Path(__file__).resolve().parents[2] / "operator" / "bodypose_operator"


def test_the_crd_enum_and_default_are_the_tables() -> None:
    crd = yaml.safe_load(render())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    backend = spec["properties"]["targets"]["items"]["properties"]["backend"]
    assert backend["enum"] == list(BACKENDS)
    assert backend["default"] == DEFAULT_BACKEND == "tensorrt"


def test_every_row_is_consistent() -> None:
    for name, row in BACKENDS.items():
        assert row.name == name
        assert set(row.precisions) <= set(get_args(Precision)), name
        assert row.options <= {o.field for o in TARGET_OPTIONS}, name
        assert row.artifact_suffix.startswith("."), name
    for option in TARGET_OPTIONS:
        # An option no backend accepts could never be set.
        assert backends.accepting(option), option.field
        default = Target.model_fields[option.field].get_default(call_default_factory=True)
        assert not option.is_set(default), option.field


def test_admission_rules_of_todays_table_are_unchanged() -> None:
    """The hardwareCompatibility rule as it was written by hand; only tensorrt-rtx builds
    fewer than every precision, so one precision rule."""
    hardware = OPTION_RULES["hardwareCompatibility"]
    assert hardware in SPEC_RULES
    assert hardware.validation() == {
        "rule": "self.targets.all(t, !has(t.hardwareCompatibility) "
        "|| t.hardwareCompatibility == 'none' || !has(t.backend) || t.backend == 'tensorrt')",
        "message": "hardwareCompatibility ampere+ applies to tensorrt targets only",
    }
    assert set(PRECISION_RULES) == {"tensorrt-rtx"}
    assert (
        PRECISION_RULES["tensorrt-rtx"].message == "tensorrt-rtx targets build fp32 and fp16 only"
    )


def _string_literals(tree: ast.AST) -> list[str]:
    return [
        n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]


def test_no_module_but_the_table_names_a_backend() -> None:
    """Nothing outside api/backends.py compares a backend's name: every fact is a row's."""
    quoted = {q for name in BACKENDS for q in (name, f"'{name}'", f'"{name}"')}
    offenders = []
    for path in sorted(OPERATOR.rglob("*.py")):
        if path == OPERATOR / "api" / "backends.py":
            continue
        for text in _string_literals(ast.parse(path.read_text())):
            if text in quoted or any(f"'{n}'" in text or f'"{n}"' in text for n in BACKENDS):
                offenders.append(f"{path.relative_to(OPERATOR)}: {text!r}")
    assert offenders == []


EXAMPLE = Backend(
    name="example-aot",
    summary="an engine built ahead of time on a CPU node for named GPUs",
    build_image=BuildImage.CPU,
    default_resources={"requests": {"cpu": "2", "memory": "4Gi"}},
    artifact_suffix=".engine",
    precisions=("fp32", "fp16"),
    options=frozenset({"hardwareCompatibility"}),
    image_in_identity=True,
)


@pytest.fixture
def example_row(monkeypatch: pytest.MonkeyPatch) -> Backend:
    """A new backend, one row added to the table (the spec's enum is fixed at import, so
    its targets are made with model_construct, as if it had been there)."""
    monkeypatch.setitem(BACKENDS, EXAMPLE.name, EXAMPLE)
    return EXAMPLE


def _target(**fields: Any) -> Target:
    return Target.model_construct(**{"name": "rtx", **fields})


def test_a_new_row_is_all_the_jobs_and_identities_need(example_row: Backend) -> None:
    from bodypose_operator.api.v1alpha1 import BodyPoseExportSpec

    spec = BodyPoseExportSpec.model_validate(spec_dict())
    target = _target(backend=example_row.name, hardwareCompatibility="ampere+",
                     nodeSelector={"nvidia.com/gpu.product": "L4"})  # fmt: skip
    assert Settings().build_image(example_row.name) == "bodypose-export/exporter:0.1.0"
    assert target_resources(target) == {"requests": {"cpu": "2", "memory": "4Gi"}}
    assert engine_file_name(spec, target) == "bpnet_model.320.448.fp16.engine"
    args = build_args(spec, target, "s3://o/p", "i" * 16)
    pairs = dict(zip(args[::2], args[1::2], strict=False))
    assert pairs["--engine_backend"] == "example-aot"
    assert pairs["--hardware_compatibility"] == "ampere+"
    assert "--expected_gpu_product" not in pairs and "--int8_route" not in pairs
    assert target_identity(target, "img:1") != target_identity(target, "img:2")


def test_a_new_row_makes_its_admission_rules(example_row: Backend) -> None:
    rule = option_rule(HARDWARE_COMPATIBILITY).validation()
    assert rule["rule"].endswith("|| t.backend == 'tensorrt' || t.backend == 'example-aot')")
    assert rule["message"] == (
        "hardwareCompatibility ampere+ applies to tensorrt and example-aot targets only"
    )
    assert precision_rule(example_row).validation() == {
        "rule": "self.targets.all(t, !(t.backend == 'example-aot') "
        "|| self.precision in ['fp32', 'fp16'])",
        "message": "example-aot targets build fp32 and fp16 only",
    }
