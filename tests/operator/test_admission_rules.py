"""Each admission rule is one object (api/admission.py): the CRD carries its CEL, and the
operator's models refuse what it refuses with the same sentence.

The CEL half is run by a real API server in tests/e2e/test_admission.py and
tests/e2e/test_bad_inputs.py; here, without one, the CRD must carry exactly the
rules' CEL on the node each reads, and a spec breaking one rule must be refused
by the operator with that rule's message, found by the rule, not by its place.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from bodypose_operator.api.admission import (
    CALIBRATION_BOUNDED,
    CAPABILITY_RULES,
    INT8_NEEDS_CALIBRATION,
    MULTIPLE_OF_8,
    OPTION_RULES,
    PRECISION_RULES,
    SPEC_RULES,
    TARGET_RULES,
    UNIQUE_TARGET_NAMES,
    Rule,
    queue_name_problem,
    queue_name_rule,
    validations,
)
from bodypose_operator.api.backends import BACKENDS
from bodypose_operator.api.crd import render
from bodypose_operator.api.v1alpha1 import BodyPoseExportSpec
from tests.support.operator_fakes import spec_dict

RTX = {"name": "rtx", "backend": "tensorrt-rtx"}
L4_LABELS = {"nvidia.com/gpu.compute.major": "8", "nvidia.com/gpu.compute.minor": "9"}
supported, named = CAPABILITY_RULES["tensorrt-rtx"]

#: One spec per rule that breaks that rule alone.
BREAKING: list[tuple[Rule[Any], dict[str, Any]]] = [
    (MULTIPLE_OF_8, spec_dict(input={"height": 322, "width": 448})),
    (INT8_NEEDS_CALIBRATION, spec_dict(precision="int8")),
    (UNIQUE_TARGET_NAMES, spec_dict(targets=[{"name": "a"}, {"name": "a"}])),
    (
        CALIBRATION_BOUNDED,
        spec_dict(
            precision="int8",
            calibration={"cacheUri": "s3://bkt/cal.bin", "batches": 100_000, "batchSize": 11},
        ),
    ),
    (
        OPTION_RULES["hardwareCompatibility"],
        spec_dict(
            targets=[{"name": "cpu", "backend": "onnxruntime", "hardwareCompatibility": "ampere+"}]
        ),
    ),
    (
        OPTION_RULES["computeCapabilities"],
        spec_dict(targets=[{"name": "gpu", "computeCapabilities": ["8.9"]}]),
    ),
    (
        PRECISION_RULES["tensorrt-rtx"],
        spec_dict(
            precision="int8",
            calibration={"cacheUri": "s3://bkt/cal.bin"},
            targets=[{**RTX, "computeCapabilities": ["8.9"]}],
        ),
    ),
    (supported, spec_dict(targets=[{**RTX, "computeCapabilities": ["9.0"]}])),
    (
        supported,
        spec_dict(
            targets=[
                {
                    **RTX,
                    "nodeSelector": {
                        "nvidia.com/gpu.compute.major": "9",
                        "nvidia.com/gpu.compute.minor": "0",
                    },
                }
            ]
        ),
    ),
    (named, spec_dict(targets=[RTX])),
]


def _spec_schema() -> dict[str, Any]:
    crd = yaml.safe_load(render())
    spec: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"][
        "spec"
    ]
    return spec


def test_the_crd_carries_each_rules_cel_on_its_node() -> None:
    spec = _spec_schema()
    assert spec["x-kubernetes-validations"] == validations(SPEC_RULES)
    for field in ("queueName", "exportQueueName"):
        node = spec["properties"][field]
        assert node["x-kubernetes-validations"] == validations([queue_name_rule(field)])
    target = spec["properties"]["targets"]["items"]
    assert target["x-kubernetes-validations"] == validations(TARGET_RULES)


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_a_built_in_backend_refuses_any_backend_option_in_its_words(backend: str) -> None:
    """The built-in backends declare no `backendOptions` key (their options are fields
    of the target): any key is refused, by the CEL rule made for that backend and by the
    operator with its sentence; an empty map is what no map is."""
    rule = next(r for r in TARGET_RULES if r.message.startswith(f"backendOptions: the {backend} "))
    assert rule.message.startswith(f"backendOptions: the {backend} backend takes none")
    assert "size(self.backendOptions) == 0" in rule.cel
    extra = {"computeCapabilities": ["8.9"]} if backend == "tensorrt-rtx" else {}
    target = {"name": "t", "backend": backend, **extra}
    with pytest.raises(ValidationError, match=re.escape(rule.message)):
        BodyPoseExportSpec.model_validate(
            spec_dict(targets=[{**target, "backendOptions": {"label": "x"}}])
        )
    BodyPoseExportSpec.model_validate(spec_dict(targets=[{**target, "backendOptions": {}}]))


def test_a_backend_option_refusal_names_where_its_options_are() -> None:
    """A user reaching for `backendOptions` on TensorRT learns its options are fields."""
    messages = {r.message for r in TARGET_RULES}
    assert (
        "backendOptions: the tensorrt backend takes none (its options are the target's "
        "fields hardwareCompatibility)" in messages
    )
    assert "backendOptions: the onnxruntime backend takes none" in messages


@pytest.mark.parametrize(
    ("rule", "raw"),
    BREAKING,
    ids=[f"{SPEC_RULES.index(r)}-{i}" for i, (r, _) in enumerate(BREAKING)],
)
def test_a_spec_breaking_one_rule_is_refused_by_the_operator_in_its_words(
    rule: Rule[Any], raw: dict[str, Any]
) -> None:
    assert rule in SPEC_RULES
    with pytest.raises(ValidationError, match=re.escape(rule.message)):
        BodyPoseExportSpec.model_validate(raw)
    others = [r for r in SPEC_RULES if r is not rule and r.message in str(_refusal(raw))]
    assert others == []


def _refusal(raw: dict[str, Any]) -> ValidationError:
    try:
        BodyPoseExportSpec.model_validate(raw)
    except ValidationError as exc:
        return exc
    raise AssertionError("accepted")


def test_what_the_rules_accept_the_operator_accepts() -> None:
    for targets in ([RTX | {"computeCapabilities": ["8.9"]}], [RTX | {"nodeSelector": L4_LABELS}]):
        BodyPoseExportSpec.model_validate(spec_dict(targets=targets))
    BodyPoseExportSpec.model_validate(
        spec_dict(
            precision="int8",
            calibration={"cacheUri": "s3://bkt/cal.bin", "batches": 4000, "batchSize": 250},
        )
    )


def test_a_queue_name_rule_is_one_rule_for_the_crd_the_models_and_the_settings() -> None:
    rule = queue_name_rule("queueName")
    assert rule.holds("gpu-a100.team") and not rule.holds("GPU_queue")
    assert not rule.holds("a" * 64)  # the CRD's maxLength, with the rule's sentence here
    assert queue_name_problem("GPU_queue", "queueName") == rule.message
    with pytest.raises(ValidationError, match=re.escape(rule.message)):
        BodyPoseExportSpec.model_validate(spec_dict(queueName="GPU_queue"))


def test_a_backend_gives_its_own_words_for_the_capabilities_it_leaves_out() -> None:
    """The generic capability rule names no backend's GPUs: tensorrt-rtx's Hopper note is
    its part's (`ExplainsUnsupportedCapabilities`), and a backend without one is refused
    in the rule's words alone."""
    from dataclasses import replace

    from bodypose_operator.api.admission import capability_rules
    from bodypose_operator.api.backends import BACKENDS
    from bodypose_operator.api.capabilities import ExplainsUnsupportedCapabilities

    rtx = BACKENDS["tensorrt-rtx"]
    assert isinstance(rtx.part, ExplainsUnsupportedCapabilities)
    assert supported.message.endswith(f"({rtx.part.unsupported_capabilities_note()})")
    plain = capability_rules(replace(rtx, name="plain-aot", part=object()))[0]
    assert plain.message == (
        "computeCapabilities: plain-aot builds for 7.5, 8.0, 8.6, 8.9, 12.0, 12.1 only"
    )


def test_a_declared_options_rules_apply_to_its_backends_targets_that_set_the_key() -> None:
    """A part's option rule is guarded by the generator: its CEL and its check may read the
    key as present, and another backend's target (or one not setting it) never meets it."""
    from dataclasses import dataclass, replace

    from bodypose_operator.api.admission import backend_option_rules
    from bodypose_operator.api.capabilities import BackendOption, TakesBackendOptions
    from bodypose_operator.api.v1alpha1 import Target

    short: Rule[Target] = Rule(
        "size(self.backendOptions['tag']) <= 3",
        "backendOptions.tag: at most 3 characters",
        lambda t: len(t.backendOptions["tag"]) <= 3,
    )

    @dataclass(frozen=True)
    class Tagged:
        def backend_options(self) -> tuple[BackendOption, ...]:
            return (BackendOption("tag", "a tag", rules=(short,)),)

    assert isinstance(Tagged(), TakesBackendOptions)
    keys, own = backend_option_rules(replace(BACKENDS["onnxruntime"], part=Tagged()))
    assert keys.message == "backendOptions: the onnxruntime backend takes tag only"
    assert own.message == short.message
    assert own.cel == (
        "!(self.backend == 'onnxruntime') || !has(self.backendOptions) "
        "|| !('tag' in self.backendOptions) || (size(self.backendOptions['tag']) <= 3)"
    )

    def target(backend: str, **options: str) -> Target:
        return Target.model_construct(name="t", backend=backend, backendOptions=options)

    assert own.holds(target("onnxruntime")) and own.holds(target("onnxruntime", tag="abc"))
    assert not own.holds(target("onnxruntime", tag="abcd"))
    assert own.holds(target("tensorrt", tag="abcd"))  # not its target: its own rules judge it
    assert not keys.holds(target("onnxruntime", other="x"))
    assert keys.holds(target("onnxruntime", tag="x")) and keys.holds(target("tensorrt", other="x"))
