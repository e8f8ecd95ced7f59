"""The EPContext ONNX model beside a TensorRT-RTX engine: the engine as ONNX Runtime loads it.

ONNX Runtime's NvTensorRTRTX execution provider loads a model whose graph is
one `com.microsoft` `EPContext` node and hands its `ep_cache_context` to
TensorRT-RTX's runtime (ONNX Runtime's "EP context design" page documents
the op; the provider's `onnx_ctx_model_helper.cc` reads it): with
`embed_mode` 0, the engine file's name, relative to the model's folder, so
the model is written beside the engine. The provider runs on compute
capability 8.6, 8.9 and 12.x only (`hardware.ONNX_RUNTIME_PROVIDER`), and
only an engine of its own TensorRT-RTX version: the model says which
(`ep_sdk_version`, `notes`). Nothing here can run it (no such GPU); the
test checks the model with `onnx.checker` and with ONNX Runtime's own
schema, which names the provider it needs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import onnx
from onnx import helper

PROVIDER = "NvTensorRTRTXExecutionProvider"
DOMAIN = "com.microsoft"


def _io(model: onnx.ModelProto) -> tuple[list[onnx.ValueInfoProto], list[onnx.ValueInfoProto]]:
    constants = {i.name for i in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in constants], list(model.graph.output)


def write(
    engine: Path, onnx_model: Path, capability: str, version: str, capabilities: tuple[str, ...]
) -> Path:
    """`<engine>.epcontext.onnx` beside `engine`, for `capability` (major.minor)."""
    source = onnx.load(str(onnx_model), load_external_data=False)
    inputs, outputs = _io(source)
    major, minor = (int(p) for p in capability.split("."))
    digest = hashlib.sha256(engine.read_bytes()).hexdigest()[:16]
    node = helper.make_node(
        "EPContext", [i.name for i in inputs], [o.name for o in outputs],
        name=f"TensorRTRTX_{digest}", domain=DOMAIN,
        main_context=0, embed_mode=0, ep_cache_context=engine.name,
        hardware_architecture=str(major * 10 + minor),
        ep_sdk_version="".join(f"{int(p):02d}" if i else p
                               for i, p in enumerate(version.split(".")[:3])),
        onnx_model_filename=onnx_model.name, partition_name=f"TensorRTRTX_{digest}",
        source=PROVIDER,
        notes=json.dumps({"tensorrtRtx": version, "computeCapabilities": list(capabilities)}),
    )  # fmt: skip
    model = helper.make_model(
        helper.make_graph([node], "bpnet_epcontext", inputs, outputs),
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(DOMAIN, 1)],
        producer_name="bodypose-export",
    )
    onnx.checker.check_model(model)
    out = engine.with_name(engine.name + ".epcontext.onnx")
    onnx.save(model, str(out))
    return out
