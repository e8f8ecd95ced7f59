"""A backend defined only under tests/support/ (`echo`) plugs into the exporter's half:
`bpnet build`, run as a Job runs it with `BODYPOSE_BACKEND_PLUGINS` naming the plug-in,
builds its artifact and verifies it against the FP32 reference for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _bpnet_build(exported: Path, engine: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BODYPOSE_BACKEND_PLUGINS": "tests.support.echo_backend",
           "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}  # fmt: skip
    code = "import sys; from bodypose_exporter.cli.main import main; sys.exit(main())"
    return subprocess.run(
        [sys.executable, "-c", code, "build",
         "--onnx", str(exported / "bpnet_model.onnx"),
         "--reference", str(exported / "reference.npz"),
         "--engine_backend", "echo", "--engine_file", str(engine), *extra],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_bpnet_build_builds_and_verifies_with_a_plugin_backend(
    exported: Path, tmp_path: Path
) -> None:
    engine = tmp_path / "echo" / "bpnet_model.224.320.fp16.onnx"
    done = _bpnet_build(exported, engine, "--data_type", "fp16",
                        "--hardware_compatibility", "ampere+",
                        "--echo_label", "cpu")  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    # Built as what it computes in (its support row: fp16 is the FP32 graph), and says why.
    built = engine.with_name("bpnet_model.224.320.fp32.onnx")
    assert built.is_file()
    assert built.read_bytes() == (exported / "bpnet_model.onnx").read_bytes()
    manifest = json.loads((built.parent / "manifest.json").read_text())
    assert manifest["runtime"] == "ONNX Runtime (an echo of the ONNX model)"
    assert manifest["precisionReason"] == "echo copies the FP32 graph"
    # Its own flag (the one its operator part passes), taken and recorded by its build.
    assert manifest["build"]["echoLabel"] == "cpu"
    verification = manifest["verification"]
    assert verification["passed"] and verification["figures"]["cosine"] > 0.99999


def test_bpnet_build_help_shows_the_plugins_example_beside_the_built_in_ones() -> None:
    env = {**os.environ, "BODYPOSE_BACKEND_PLUGINS": "tests.support.echo_backend",
           "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}  # fmt: skip
    code = "import sys; from bodypose_exporter.cli.main import main; sys.exit(main())"
    done = subprocess.run(
        [sys.executable, "-c", code, "build", "--help"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    examples = done.stdout[done.stdout.index("examples:") : done.stdout.index("Beside the engine")]
    assert "--engine_backend echo --echo_label cpu" in examples
    for backend in ("tensorrt", "onnxruntime", "tensorrt-rtx --compute_capabilities 8.9"):
        assert f"--engine_backend {backend}" in examples
