"""A backend defined only under tests/support/ (`echo`) plugs into the operator's half.

Named in `BODYPOSE_BACKEND_PLUGINS`, the operator reads it at start: the CRD
generated in memory offers it, admission applies its own precision list, the
operator makes its build Jobs with its options and the argument its part declares as
its own, the key of `backendOptions` it declares (`label`) comes with its admission
rule (CEL in the CRD, the same words from the operator's check) and reaches its Job,
and the record key it declares as its
own lands in the target's status map `backendStatus`. Each check runs in a child process:
the spec's backend enum is fixed when `bodypose_operator.api` is first imported,
and this test process imported it without the plug-in.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = "tests.support.echo_backend"

CHILD = textwrap.dedent(
    """
    import json

    import pydantic
    import yaml

    from bodypose_operator.api.crd import render
    from bodypose_operator.api.v1alpha1 import BodyPoseExportSpec
    from bodypose_operator.builders.jobs import build_target_job
    from bodypose_operator.settings import Settings
    from tests.support.operator_fakes import resource, spec_dict

    crd = yaml.safe_load(render())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    targets = [{"name": "cpu", "backend": "echo", "hardwareCompatibility": "ampere+"}]
    try:
        BodyPoseExportSpec.model_validate(spec_dict(
            precision="int8", targets=targets, calibration={"imagesUri": "s3://bucket/images"}))
        refused = None
    except pydantic.ValidationError as e:
        refused = str(e)
    spec = BodyPoseExportSpec.model_validate(spec_dict(targets=targets))
    job = build_target_job(resource(spec_dict(targets=targets)), spec, spec.targets[0],
                           "k" * 16, Settings(), "i" * 16)
    # A target's status from the manifest the exporter's half writes (its compatibility
    # record, `engine.py`: imported here only, after every operator check, to make it).
    from bodypose_exporter.engines.base import EngineOptions
    from bodypose_operator.api.backends import BACKENDS
    from bodypose_operator.api.status import TargetStatus
    from bodypose_operator.controller.manifests import target_fields
    from tests.support.echo_backend.engine import BACKEND

    record = BACKEND.target(EngineOptions(backend="echo"), BACKEND.describe())
    manifest = {"compatibility": record.as_dict(), "hardware": {"cpuModel": "x86"}}
    fields = target_fields(manifest, BACKENDS[spec.targets[0].backend].status_keys)
    TargetStatus.model_validate({"name": "cpu", "phase": "Ready", **fields})
    status = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    # Its own option (`backendOptions.label`): the rules on the target node, the Python
    # check's refusals, and the Job and identity of a target that sets it.
    from bodypose_operator.builders.naming import target_identity

    def refusal(options):
        try:
            BodyPoseExportSpec.model_validate(spec_dict(
                targets=[{"name": "cpu", "backend": "echo", "backendOptions": options}]))
        except pydantic.ValidationError as e:
            return str(e)
        return None

    plain = [{"name": "cpu", "backend": "echo"}]
    labelled = [{**plain[0], "backendOptions": {"label": "nightly-l4"}}]
    spec_labelled = BodyPoseExportSpec.model_validate(spec_dict(targets=labelled))
    labelled_job = build_target_job(resource(spec_dict(targets=labelled)), spec_labelled,
                                    spec_labelled.targets[0], "k" * 16, Settings(), "i" * 16)
    spec_plain = BodyPoseExportSpec.model_validate(spec_dict(targets=plain))
    target_node = schema["properties"]["targets"]["items"]
    print(json.dumps({
        "targetRules": target_node["x-kubernetes-validations"],
        "optionsField": target_node["properties"]["backendOptions"],
        "badLabel": refusal({"label": "Not A Label!"}),
        "unknownKey": refusal({"x": "1"}),
        "goodLabel": refusal({"label": "nightly-l4"}),
        "labelledArgs": labelled_job["spec"]["template"]["spec"]["containers"][0]["args"],
        "identities": [target_identity(spec_plain.targets[0]),
                       target_identity(spec_labelled.targets[0])],
        "record": record.as_dict(),
        "fields": fields,
        "statusFields": sorted(status["properties"]["targets"]["items"]["properties"]),
        "statusMapHelp": status["properties"]["targets"]["items"]["properties"][
            "backendStatus"]["description"],
        "enum": schema["properties"]["targets"]["items"]["properties"]["backend"]["enum"],
        "rules": schema["x-kubernetes-validations"],
        "refused": refused,
        "args": job["spec"]["template"]["spec"]["containers"][0]["args"],
        "resources": job["spec"]["template"]["spec"]["containers"][0]["resources"],
    }))
    """
)


@functools.cache  # one child process for the module's tests
def _with_plugin() -> dict[str, Any]:
    paths = [str(ROOT), *sys.path]
    env = {**os.environ, "BODYPOSE_BACKEND_PLUGINS": PLUGIN,
           "PYTHONPATH": os.pathsep.join(paths)}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, cwd=ROOT, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    parsed: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return parsed


def test_a_backend_under_tests_plugs_into_the_operator() -> None:
    seen = _with_plugin()
    # The CRD offers it after the built-in ones.
    assert seen["enum"] == ["tensorrt", "onnxruntime", "tensorrt-rtx", "echo"]
    # Its precision list is an admission rule, in the CRD's CEL and in the operator's check.
    message = "echo targets build fp32 and fp16 only"
    assert any(rule["message"] == message for rule in seen["rules"])
    assert seen["refused"] is not None and message in seen["refused"]
    # It accepts hardwareCompatibility: the CEL rule lets it through, and its Job carries it.
    hardware = next(r for r in seen["rules"] if "hardwareCompatibility" in r["message"])
    assert "t.backend == 'echo'" in hardware["rule"]
    pairs = dict(zip(seen["args"][::2], seen["args"][1::2], strict=False))
    assert pairs["--engine_backend"] == "echo"
    assert pairs["--hardware_compatibility"] == "ampere+"
    assert pairs["--engine_file"].endswith("/bpnet_model.320.448.fp16.onnx")
    assert "--expected_gpu_product" not in pairs and "--int8_route" not in pairs
    # Its part (`operator_part.EchoPart`, a `TakesArguments`) adds an argument of its own,
    # declared by the plug-in alone: the target's name as its build's label.
    from tests.support.echo_backend import LABEL_FLAG

    assert pairs[LABEL_FLAG] == "cpu"
    assert seen["args"][-2:] == [LABEL_FLAG, "cpu"]
    assert seen["resources"] == {"requests": {"cpu": "1"}, "limits": {"cpu": "1"}}
    # Its own record key lands in the target's status map, and nowhere else: the CRD has
    # no field of that name, only the map (a string to string map in any backend's hands).
    from tests.support.echo_backend import RECORD_KEY

    assert list(seen["record"]) == [RECORD_KEY]
    assert seen["fields"] == {"backendStatus": seen["record"]}
    assert "backendStatus" in seen["statusFields"] and RECORD_KEY not in seen["statusFields"]
    # `kubectl explain` of the map names its key beside the built-in ones.
    assert f"echo: {RECORD_KEY}" in seen["statusMapHelp"]
    assert "tensorrt-rtx: computeCapabilities, tensorrtRtxVersion" in seen["statusMapHelp"]


def test_without_the_variable_the_operator_offers_the_built_in_backends_only() -> None:
    from bodypose_operator.api.backends import BACKENDS

    assert "echo" not in BACKENDS


def test_a_plugin_declares_an_option_of_its_own_with_its_rule() -> None:
    from tests.support.echo_backend import LABEL_FLAG
    from tests.support.echo_backend.operator_part import LABEL_IS_A_NAME

    seen = _with_plugin()
    # The CRD generated in memory has the map, its key described, and the plug-in's rule
    # on the target node: its own CEL, applied to echo targets that set the key.
    assert "echo takes label (" in seen["optionsField"]["description"]
    own = next(r for r in seen["targetRules"] if r["message"] == LABEL_IS_A_NAME.message)
    assert own["rule"].endswith(f"|| ({LABEL_IS_A_NAME.cel})")
    assert (
        "self.backend == 'echo'" in own["rule"] and "'label' in self.backendOptions" in own["rule"]
    )
    # The Python check refuses a bad value with the CEL's very message.
    assert seen["badLabel"] is not None and LABEL_IS_A_NAME.message in seen["badLabel"]
    assert seen["goodLabel"] is None
    # A key it does not declare is refused, in the users' words, by both halves.
    unknown = "backendOptions: the echo backend takes label only"
    keys = next(r for r in seen["targetRules"] if r["message"] == unknown)
    assert "self.backendOptions.all(k, k in ['label'])" in keys["rule"]
    assert seen["unknownKey"] is not None and unknown in seen["unknownKey"]
    # The value reaches the build through its part, and the target's identity.
    assert seen["labelledArgs"][-2:] == [LABEL_FLAG, "nightly-l4"]
    plain, labelled = seen["identities"]
    assert plain != labelled
