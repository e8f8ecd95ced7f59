# ruff: noqa: E501  (the command lines are kept as their sources print them)
"""The export command lines of TAO's BodyPoseNet guide, run by `bpnet-export` as written.

Where the command lines come from (paths substituted, nothing else changed):

- NVIDIA/tao_tutorials at b7ea82a06f1b866018947f73185b5f48abe5a693,
  `notebooks/tao_launcher_starter_kit/bpnet/bpnet.ipynb`: the FP32 export
  (section "Export .onnx"), the INT8 export (9.3) and the deployable export
  (10.4, `--sdk_compatible_model`), each a `tao model bpnet export` line;
- the TAO BodyPoseNet page, "Exporting the Model"
  (https://docs.nvidia.com/tao/tao-toolkit/text/bodypose_estimation/bodyposenet.html):
  its FP16 example (`--data_type fp16 --batch_size 1 --max_batch_size 1
  --data_format channels_last --engine_file ...`) and its INT8 example without
  `--engine_file`, as issue 30 quotes them; the flags issue 30 leaves out
  (`...`) are the notebook's, which the page's other examples share.

The flags and defaults they are checked against are TAO's own parser's:
NVIDIA/tao_tensorflow1_backend at 2ec95cbbe0d74d6a180ea6e989f64d2d97d97712,
`nvidia_tao_tf1/cv/bpnet/scripts/export.py` (`build_command_line_parser`;
transcribed in tests/cli/test_tao_flags.py, `TAO_PARSER`). It takes every one
of its flags with any precision and with or without `--engine_file` (and
`parse_known_args`), so a line that TAO runs must run here: no refusal of a TAO
flag, one log line for a flag that does nothing here.

Substitutions: `$USER_EXPERIMENT_DIR` and `$SPECS_DIR` are a tmp directory;
`-m` names the sample model (`bpnet-sample`'s .tlt) at the notebook's path,
its key in `$BODYPOSE_MODEL_KEY` (TAO 5's lines carry no `-k`: its `.hdf5`
checkpoints are not encrypted; this exporter reads TAO's encrypted .tlt);
`$IN_HEIGHT,$IN_WIDTH,$IN_CHANNELS` = 224,320,3; `$NUM_CALIB_SAMPLES` = 4;
the calibration images are the sample's.

"Through to the TensorRT step": a line with `--engine_file` and no
`--engine_backend` builds with TensorRT (TAO's only builder), which this
machine does not have: the run fails at once, before any work, with the
sentence that says so and how to build a CPU artifact instead, and leaves
nothing behind. The same INT8 line with `--engine_backend onnxruntime` added
runs through: export, calibration from the images into the notebook's
tensorfile and cache names, and a built and verified engine.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from tests.conftest import SAMPLE_KEY
from tests.exporter.conftest import CliRun, RunCli

H, W, C = 224, 320, 3
NUM_CALIB_SAMPLES = 4
TENSORRT_MISSING = "--engine_backend tensorrt needs TensorRT and a GPU"
SPEC = """\
dataloader:
  normalization_params:
    image_offset: [0.5, 0.5, 0.5]
    image_scale: [256.0, 256.0, 256.0]
"""


def experiment(root: Path, sample_dir: Path) -> dict[str, str]:
    """The notebook's directories under `root`, holding the sample model and images."""
    (root / "models" / "exp_m1_retrain").mkdir(parents=True)
    (root / "models" / "exp_m1_final").mkdir(parents=True)  # the notebook's `mkdir -p`
    shutil.copy(sample_dir / "bpnet_sample.tlt", root / "models/exp_m1_retrain/bpnet_model.tlt")
    shutil.copytree(sample_dir / "images", root / "data/calibration_samples")
    (root / "specs").mkdir()
    (root / "specs/bpnet_retrain_m1_coco.yaml").write_text(SPEC)
    return {
        "$USER_EXPERIMENT_DIR": str(root),
        "$SPECS_DIR": str(root / "specs"),
        "$RETRAIN_MODEL_CHECKPOINT": "bpnet_model.tlt",
        "$IN_HEIGHT": str(H),
        "$IN_WIDTH": str(W),
        "$IN_CHANNELS": str(C),
        "$NUM_CALIB_SAMPLES": str(NUM_CALIB_SAMPLES),
    }


#: The lines after `tao model bpnet export`, as the sources above print them.
FP32 = """
    -m $USER_EXPERIMENT_DIR/models/exp_m1_retrain/$RETRAIN_MODEL_CHECKPOINT
    -e $SPECS_DIR/bpnet_retrain_m1_coco.yaml
    -r $USER_EXPERIMENT_DIR/
    -o $USER_EXPERIMENT_DIR/models/exp_m1_final/bpnet_model.onnx
    -t tfonnx
"""
INT8 = """
    -m $USER_EXPERIMENT_DIR/models/exp_m1_retrain/$RETRAIN_MODEL_CHECKPOINT
    -o $USER_EXPERIMENT_DIR/models/exp_m1_final/bpnet_model.onnx
    -r $USER_EXPERIMENT_DIR/
    -d $IN_HEIGHT,$IN_WIDTH,$IN_CHANNELS
    -e $SPECS_DIR/bpnet_retrain_m1_coco.yaml
    -t tfonnx
    --data_type int8
    --engine_file $USER_EXPERIMENT_DIR/models/exp_m1_final/bpnet_model.$IN_HEIGHT.$IN_WIDTH.int8.engine
    --cal_image_dir $USER_EXPERIMENT_DIR/data/calibration_samples/
    --cal_cache_file $USER_EXPERIMENT_DIR/models/exp_m1_final/calibration.$IN_HEIGHT.$IN_WIDTH.bin
    --cal_data_file $USER_EXPERIMENT_DIR/models/exp_m1_final/coco.$IN_HEIGHT.$IN_WIDTH.tensorfile
    --batch_size 1
    --batches $NUM_CALIB_SAMPLES
    --max_batch_size 1
    --data_format channels_last
"""
DEPLOY = """
    -m $USER_EXPERIMENT_DIR/models/exp_m1_retrain/$RETRAIN_MODEL_CHECKPOINT
    -o $USER_EXPERIMENT_DIR/models/exp_m1_final/bpnet_model.deploy.onnx
    -r $USER_EXPERIMENT_DIR/
    -d $IN_HEIGHT,$IN_WIDTH,$IN_CHANNELS
    -e $SPECS_DIR/bpnet_retrain_m1_coco.yaml
    -t tfonnx
    --data_type int8
    --engine_file $USER_EXPERIMENT_DIR/models/exp_m1_final/bpnet_model.$IN_HEIGHT.$IN_WIDTH.int8.deploy.engine
    --cal_image_dir $USER_EXPERIMENT_DIR/data/calibration_samples/
    --cal_cache_file $USER_EXPERIMENT_DIR/models/exp_m1_final/calibration.$IN_HEIGHT.$IN_WIDTH.deploy.bin
    --cal_data_file $USER_EXPERIMENT_DIR/models/exp_m1_final/coco.$IN_HEIGHT.$IN_WIDTH.tensorfile
    --batch_size 1
    --batches $NUM_CALIB_SAMPLES
    --max_batch_size 1
    --data_format channels_last
    --sdk_compatible_model
"""
FP16 = """
    -m $USER_EXPERIMENT_DIR/models/exp_m1_retrain/$RETRAIN_MODEL_CHECKPOINT
    -o $USER_EXPERIMENT_DIR/models/exp_m1_final/bpnet_model.onnx
    -r $USER_EXPERIMENT_DIR/
    -d $IN_HEIGHT,$IN_WIDTH,$IN_CHANNELS
    -e $SPECS_DIR/bpnet_retrain_m1_coco.yaml
    -t tfonnx
    --data_type fp16
    --batch_size 1
    --max_batch_size 1
    --data_format channels_last
    --engine_file $USER_EXPERIMENT_DIR/models/exp_m1_final/bpnet_model.$IN_HEIGHT.$IN_WIDTH.fp16.engine
"""
#: INT8 without --engine_file: its engine flags are taken, not used.
INT8_NO_ENGINE = "\n".join(line for line in INT8.splitlines() if "--engine_file" not in line)


def argv(line: str, values: dict[str, str]) -> list[str]:
    for name in sorted(values, key=len, reverse=True):  # $IN_HEIGHT before $IN_H...
        line = line.replace(name, values[name])
    assert "$" not in line, line
    return line.split()


@pytest.fixture
def values(
    sample_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> dict[str, str]:
    monkeypatch.setenv("BODYPOSE_MODEL_KEY", SAMPLE_KEY)
    caplog.set_level(logging.INFO)  # what the CLI logs at INFO (cli/main.py)
    return experiment(tmp_path / "experiments", sample_dir)


def final(values: dict[str, str]) -> Path:
    return Path(values["$USER_EXPERIMENT_DIR"]) / "models" / "exp_m1_final"


def assert_taken(r: CliRun) -> None:
    """No TAO flag refused: neither argparse's nor this tool's refusal."""
    assert "unrecognized arguments" not in r.err and "invalid choice" not in r.err, r.err
    assert "only used with" not in r.err and "only used when" not in r.err, r.err


@pytest.mark.parametrize(
    ("line", "unused"),
    [
        (FP16, ["--batch_size 1: not used: only INT8 calibration reads it, and this run is fp16"]),
        (INT8, []),
        (DEPLOY, []),
    ],
    ids=["fp16", "int8", "deploy"],
)
def test_engine_lines_reach_the_tensorrt_step_and_stop_there_clearly(
    run_cli: RunCli,
    values: dict[str, str],
    line: str,
    unused: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    r = run_cli(*argv(line, values))
    assert_taken(r)
    assert r.code == 2, r.err
    assert f"bpnet-export: error: {TENSORRT_MISSING}" in r.err
    assert "`import tensorrt` fails here" in r.err and "--engine_backend onnxruntime" in r.err
    results_dir = values["$USER_EXPERIMENT_DIR"] + "/"
    logged = caplog.text
    assert f"-r/--results_dir {results_dir}: not used: TAO writes its status.json there" in logged
    for text in unused:
        assert text in logged
    # Early: before any work, so nothing is written.
    assert sorted(p.name for p in final(values).iterdir()) == []


def test_fp32_line_exports_the_onnx_it_names(
    run_cli: RunCli, values: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    r = run_cli(*argv(FP32, values))
    assert_taken(r)
    assert r.code == 0, r.err
    out = final(values)
    # TAO 5 writes the ONNX model at -o; the .etlt goes beside it, and the log says so.
    assert {"bpnet_model.onnx", "bpnet_model.etlt", "manifest.json"} <= {
        p.name for p in out.iterdir()
    }
    assert f"-o/--output_file {out}/bpnet_model.onnx: the plain ONNX model is written there" in (
        caplog.text
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["inputDims"] == [256, 256, 3]  # TAO's default -d


def test_int8_line_without_engine_file_exports_and_calibrates(
    run_cli: RunCli, values: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    r = run_cli(*argv(INT8_NO_ENGINE, values))
    assert_taken(r)
    assert r.code == 0, r.err
    out = final(values)
    logged = caplog.text
    assert "--max_batch_size 1: not used: no engine is built without --engine_file" in logged
    # --cal_cache_file NAME writes NAME; the copy under the fixed name stays, and the log says
    # why.
    assert (out / f"calibration.{H}.{W}.bin").is_file()
    assert (out / f"coco.{H}.{W}.tensorfile").is_file()
    assert (out / "cal.bin").read_bytes() == (out / f"calibration.{H}.{W}.bin").read_bytes()
    assert f"--cal_cache_file {out}/calibration.{H}.{W}.bin: written there as asked; the copy " in (
        logged
    )
    assert "because manifest.json lists the export's artifacts under fixed names" in logged


def test_int8_line_with_a_cpu_backend_runs_through_the_engine(
    run_cli: RunCli, values: dict[str, str]
) -> None:
    r = run_cli(*argv(INT8, values), "--engine_backend", "onnxruntime")
    assert_taken(r)
    assert r.code == 0, r.err
    out = final(values)
    manifest = json.loads((out / "manifest.json").read_text())
    engine = manifest["engine"]
    assert engine["verification"]["passed"] is True, engine
    # Calibrated for real: from the images, into the notebook's tensorfile and cache names.
    calibration = manifest["calibration"]
    assert calibration["cacheReused"] is False and calibration["tensorfileWritten"] is True
    assert (out / f"calibration.{H}.{W}.bin").is_file()
    assert (out / f"coco.{H}.{W}.tensorfile").is_file()
    built = [a["path"] for a in manifest["artifacts"] if a["kind"] == "engine"]
    assert built and all(Path(p).is_file() for p in built), manifest["artifacts"]
    assert all(Path(p).name.startswith(f"bpnet_model.{H}.{W}.int8") for p in built)
