"""`echo`: a build backend defined only here, to prove a backend is a plug-in in both halves.

Named in `BODYPOSE_BACKEND_PLUGINS` (`tests.support.echo_backend`), it joins the
exporter's registry (`bpnet build --engine_backend echo` builds and verifies with it)
and the operator's table (the CRD offers it, admission applies its precisions, the
operator makes its build Jobs), with no file outside this folder naming it.

Its artifact is a copy of the exported ONNX, run by ONNX Runtime (`engine.py`): a
real build and a real verification, no GPU. It builds fp32 and fp16 (as the FP32
graph, and says why), never int8, and takes `hardwareCompatibility` to show that a
backend's options ride its Jobs' arguments; its operator part declares one option of
its own in the target's `backendOptions` map (`label`, with its admission rule) and
adds one argument of its own (`LABEL_FLAG <label>`, default the target's name,
`operator_part.py`), which its build takes (`args.py`). Its
compatibility record holds one key of its own (`RECORD_KEY`), which the operator
reports in the target's `backendStatus`.

Each half calls only its own hook, and each hook imports only its own half, so the
operator (which has no exporter in its image) never imports `engine.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bodypose_contract.backends import BackendSupport, BuiltAs

NAME = "echo"
#: What its compatibility record says: the ONNX Runtime that built and verified the copy.
RECORD_KEY = "echoOnnxruntimeVersion"
#: Its own build flag: the operator's half passes it (`operator_part.py`), the exporter's
#: half takes it (`args.py`) and records it in the manifest's `build` details.
LABEL_FLAG = "--echo_label"
SUPPORT = BackendSupport(
    name=NAME,
    precisions=("fp32", "fp16"),
    artifact_suffixes=(".onnx",),
    hardware_compatibility_levels=("none", "ampere+"),
    built_as=(BuiltAs("fp16", "fp32", "echo copies the FP32 graph"),),
    # Its own record key (`engine.py`'s compatibility record): the operator puts it in
    # the target's status map `backendStatus`, with no CRD field of its own.
    status_keys=(RECORD_KEY,),
)


def register_exporter(register: Callable[..., None]) -> None:
    """The exporter's half: its facts, and the module holding its `BACKEND`."""
    from tests.support.echo_backend.facts import FACTS

    register(FACTS, "tests.support.echo_backend.engine")


def register_operator(register: Callable[[Any], None]) -> None:
    """The operator's half: its row of the backend table, with its part (its option in
    `backendOptions`, with its rule, and the Job argument of its own)."""
    from bodypose_operator.api.backends import Backend, BuildImage
    from tests.support.echo_backend.operator_part import EchoPart

    register(
        Backend.of(
            SUPPORT,
            summary="a copy of the ONNX model run by ONNX Runtime (a test backend)",
            build_image=BuildImage.CPU,
            default_resources={"requests": {"cpu": "1"}, "limits": {"cpu": "1"}},
            options=frozenset({"hardwareCompatibility"}),
            part=EchoPart(),
        )
    )
