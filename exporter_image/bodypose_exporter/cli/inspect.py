"""`bpnet inspect FILE`: what an artifact is, without building anything.

Followed: Polygraphy's `inspect` tool (NVIDIA/TensorRT
`tools/Polygraphy/polygraphy/tools/inspect/`: one command that reports on a
model or data file by its kind). Kinds, told apart by name and content:

- `.etlt` (needs `-k`): the codec that decrypts it, then the ONNX model's
  input and outputs;
- `.onnx`: input and outputs, opset;
- `cal.bin` (TensorRT calibration cache, text starting `TRT-`): header,
  tensor count, the first scales as amax;
- tensorfile (TAO's HDF5 `--cal_data_file`): batch count and batch shape;
- `manifest.json` (any stage's), or an engine (its manifest beside it): the
  artifacts, hardware and verification figures.

Reads local paths and s3:// URIs (downloaded to a temporary directory).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import onnx

from bodypose_contract.manifest import Key
from bodypose_exporter.calibration import calibration_cache, tensorfile
from bodypose_exporter.cli import args as groups
from bodypose_exporter.cli.paths import PathKind, mark
from bodypose_exporter.codec import codec_by_name
from bodypose_exporter.codec.tao_files import read_etlt
from bodypose_exporter.errors import UserError
from bodypose_exporter.manifest import MANIFEST_NAME
from bodypose_exporter.storage.location import Location

HELP = "describe an .etlt, .onnx, cal.bin, tensorfile, manifest.json or engine"
STAGE = None
KEY_ENV = "BODYPOSE_MODEL_KEY"

EPILOG = """\
examples:
  bpnet inspect sample/bpnet_sample.etlt -k nvidia_tlt
  bpnet inspect cal.bin
  bpnet inspect s3://artifacts/bpnet/calib.tensorfile
  bpnet inspect sample/cpu/bpnet_model.320.448.fp32.engine   (reads its manifest.json)
"""


def configure(p: argparse.ArgumentParser) -> None:
    p.description = "Describe a BodyPoseNet artifact: what it is and what it holds."
    p.epilog = EPILOG
    mark(
        p.add_argument("file", help="the artifact (path or s3:// URI)"),
        PathKind.READ_FILE_OR_ENGINE,
    )
    groups.add_key(p, help="the key of an .etlt (default: $BODYPOSE_MODEL_KEY)")
    groups.add_codec(p)
    groups.add_verbose(p)


def _describe_onnx(path: Path) -> list[str]:
    model = onnx.load(str(path), load_external_data=False)

    def shape(value: onnx.ValueInfoProto) -> str:
        dims = value.type.tensor_type.shape.dim
        return "x".join(str(d.dim_value) if d.dim_value else (d.dim_param or "?") for d in dims)

    opsets = ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in model.opset_import)
    lines = [f"onnx    opset {opsets}; {len(model.graph.node)} nodes"]
    lines += [f"input   {v.name} {shape(v)}" for v in model.graph.input]
    lines += [f"output  {v.name} {shape(v)}" for v in model.graph.output]
    return lines


def _describe_manifest(data: dict[str, Any]) -> list[str]:
    lines = [f"manifest {data.get('schema', '?')}, command {data.get('command', '?')}"]
    for artifact in data.get("artifacts", []):
        lines.append(f"  {artifact['kind']:17} {artifact['path']}  {artifact['bytes']} bytes")
    engine = data.get("engine", data)
    if "hardware" in engine:
        lines.append("hardware " + json.dumps(engine["hardware"], sort_keys=True))
    verification = engine.get("verification")
    if verification and verification.get("run") is False:
        lines.append(f"verification not run: {verification.get(Key.NOT_RUN_REASON)}")
    elif verification:
        figures = ", ".join(f"{k} {v:.4g}" for k, v in verification.get("figures", {}).items())
        verdict = "passed" if verification.get("passed") else "FAILED"
        lines.append(f"verification {figures}  {verdict}")
    return lines


def describe(path: Path, name: str, key: str | None, codec: str, work: Path) -> list[str]:
    """Lines describing the local file `path` (named `name` by the user)."""
    head = path.read_bytes()[:8]
    if name.endswith(".etlt"):
        if not key:
            raise UserError(f"{name} is an .etlt: give its key with -k (or $BODYPOSE_MODEL_KEY)")
        decrypted = read_etlt(path, key, codec_by_name(codec), work / "model.onnx")
        first = f"etlt    codec {decrypted.codec}, payload {decrypted.payload_format}"
        return [first, *_describe_onnx(decrypted.path)]
    if name.endswith(".onnx"):
        return _describe_onnx(path)
    if head.startswith(b"TRT-"):
        cache = calibration_cache.read(path)
        amax = cache.amax()
        lines = [f"cal.bin {cache.header}: {len(cache.scales)} tensors"]
        lines += [f"  {n}: amax {v:.6g}" for n, v in list(amax.items())[:5]]
        if len(amax) > 5:
            lines.append(f"  ... and {len(amax) - 5} more")
        return lines
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        info = tensorfile.inspect(path)
        return [f"tensorfile {info.count} batches of {'x'.join(map(str, info.record_shape))}"]
    if name.endswith(".json"):
        return _describe_manifest(json.loads(path.read_text()))
    raise UserError(
        f"{name}: not an .etlt, .onnx, cal.bin, tensorfile or manifest; for an engine, "
        "its manifest.json beside it is read"
    )


def run(args: argparse.Namespace) -> int:
    key = args.key if args.key is not None else os.environ.get(KEY_ENV)
    name = args.file
    if name.endswith(".engine"):  # an engine's figures live in the manifest beside it
        name = f"{name.rpartition('/')[0] or '.'}/{MANIFEST_NAME}"
    with tempfile.TemporaryDirectory(prefix="bpnet-inspect-") as tmp:
        work = Path(tmp)
        local = Location(name).fetch(work, "file")
        for line in describe(local, name, key, args.codec, work):
            print(line)
    return 0
