"""Evaluation through the export and build stages' real CLIs.

The trained sample (`bpnet sample --trained`, from the cache after its first
training) is exported by `bpnet-export` with an evaluation set and built by
`bpnet-build --engine_backend onnxruntime --eval_reference .../evaluation.json`,
as the operator's Jobs run them: the figures land in both manifests, an int8
engine calibrated on blank images is refused with AccuracyDropTooLarge and
the library's sentence (stderr, termination message, manifest.rejected.json),
`--sdk_compatible_model` publishes both graphs and both engines from one
cal.bin with the plain one evaluated, the URIs work on S3 (MinIO), and bad
flag combinations are refused before any work. Verification gates are lifted
(`--min_peak_agreement 0` ...) where a build must reach the AP gate with an
engine verification would refuse first (blank calibration, damaged weights),
so that the AP gate alone judges it; the SDK-compatible build runs with the
real gates, both its engines judged by them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnx
import pytest

from bodypose_exporter.calibration import calibration_cache
from bodypose_exporter.calibration.tensors import select_tensors
from bodypose_exporter.cli.main import build_main, export_main
from bodypose_exporter.evaluation import artifact_ap
from bodypose_exporter.evaluation.ap_gate import CAPPED_ADVICE
from bodypose_exporter.evaluation.digest import set_digest
from bodypose_exporter.evaluation.peaks import MAX_CANDIDATES_PER_JOINT
from bodypose_exporter.evaluation.sources import open_set
from bodypose_exporter.result import ENV_VAR
from bodypose_exporter.stages.sample import TrainedSample, write_trained_sample
from bodypose_exporter.verification.agreement_gates import DEFAULT_GATES, judge
from tests.conftest import S3Endpoint
from tests.evaluation import trained
from tests.evaluation.trained import BATCH_SIZE, BATCHES, HEIGHT, KEY, WIDTH

pytestmark = pytest.mark.slow

IMAGES = 40
AP_FLOOR = 35.0  # AP points; measured 52.63 (tests/evaluation/test_trained_sample.py)
LIFTED = ["--max_abs_diff", "1e9", "--min_cosine", "0", "--min_peak_agreement", "0"]
EXPORT_KEYS = {
    "images", "people", "figures", "peakCandidatesCapped", "annotations", "imagesUri", "note"
}  # fmt: skip
BUILD_KEYS = {"images", "figures", "reference", "apDrop", "maxApDrop", "passed"}
FIGURE_NAMES = ["AP", "AP50", "AP75", "APm", "APl"]

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    """A CLI entry point in-process: (exit code, stdout, stderr)."""

    def call(main: Callable[[list[str]], int], *argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse's refusals
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return call


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> TrainedSample:
    return write_trained_sample(tmp_path_factory.mktemp("trained"), KEY, images=IMAGES)


def _export(sample: TrainedSample, out: Path, *extra: str, cal: Path | None = None) -> list[str]:
    """bpnet-export's argv: int8 calibrated on `cal` (the sample's drawings by default)."""
    return [
        "-m", str(sample.model), "-k", KEY, "-d", f"{HEIGHT},{WIDTH},3",
        "-o", str(out / "bpnet_model.etlt"), "--data_type", "int8",
        "--cal_image_dir", str(cal or sample.calibration_images),
        "--batches", str(BATCHES), "--batch_size", str(BATCH_SIZE),
        "--cal_cache_file", str(out / "cal.bin"),
        "--eval_annotations", str(sample.annotations), "--eval_images", str(sample.images),
        *extra,
    ]  # fmt: skip


def _build(exported: Path, engine_dir: Path, *extra: str, gates: list[str] = LIFTED) -> list[str]:
    return [
        "--onnx", str(exported / "bpnet_model.onnx"),
        "--reference", str(exported / "reference.npz"), "--data_type", "int8",
        "--cal_cache_file", str(exported / "cal.bin"),
        "--qdq_model", str(exported / "bpnet_model.qdq.onnx"),
        "--eval_reference", str(exported / "evaluation.json"),
        "--engine_backend", "onnxruntime",
        "--engine_file", str(engine_dir / f"bpnet_model.{HEIGHT}.{WIDTH}.int8.engine"),
        *gates, *extra,
    ]  # fmt: skip


def _manifest(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def _kinds(manifest: dict[str, Any]) -> dict[str, str]:
    return {a["kind"]: a["path"] for a in manifest["artifacts"]}


@pytest.fixture(scope="module")
def int8_export(sample: TrainedSample, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("int8")
    assert export_main(_export(sample, out)) == 0
    return out


def test_the_export_records_the_fp32_figures(int8_export: Path, sample: TrainedSample) -> None:
    manifest = _manifest(int8_export / "manifest.json")
    block = manifest["evaluation"]
    assert set(block) == EXPORT_KEYS
    assert list(block["figures"]) == FIGURE_NAMES
    assert (block["images"], block["note"]) == (IMAGES, None)
    assert block["people"] > 0
    assert block["figures"]["AP"] >= AP_FLOOR  # AP points
    assert (block["annotations"], block["imagesUri"]) == (
        str(sample.annotations),
        str(sample.images),
    )
    assert _kinds(manifest)["evaluation-reference"] == str(int8_export / "evaluation.json")
    recorded = _manifest(int8_export / "evaluation.json")
    assert recorded["figures"]["AP"] * 100 == pytest.approx(block["figures"]["AP"], abs=1e-3)
    assert recorded["inputHW"] == [HEIGHT, WIDTH]
    evaluated = open_set(str(sample.annotations), str(sample.images), int8_export / "set")
    assert recorded["setDigest"] == set_digest(evaluated).as_dict()


def test_an_int8_build_records_its_figures_and_passes(
    int8_export: Path, run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "termination-log"))
    code, out, err = run(build_main, *_build(int8_export, tmp_path / "cpu"))
    assert code == 0, err
    manifest = _manifest(tmp_path / "cpu" / "manifest.json")
    block = manifest["evaluation"]
    assert set(block) >= BUILD_KEYS
    reference = _manifest(int8_export / "manifest.json")["evaluation"]["figures"]
    assert block["reference"] == reference
    assert block["images"] == IMAGES
    assert (block["maxApDrop"], block["passed"]) == (3.0, True)
    assert block["apDrop"] == pytest.approx(reference["AP"] - block["figures"]["AP"], abs=1e-3)
    assert block["figures"]["AP"] >= AP_FLOOR
    assert block["evaluatedEngine"] == _kinds(manifest)["engine"]
    assert "evaluation AP" in out and out.rstrip().endswith("passed")
    result = json.loads((tmp_path / "termination-log").read_text())
    assert result["ok"] is True
    assert result["evaluation"] == {
        k: block[k]
        for k in ("images", "people", "figures", "reference", "apDrop", "maxApDrop", "passed")
    }


def test_a_blank_calibration_is_refused_with_the_numbers(
    sample: TrainedSample, run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blank = trained.blank_images(tmp_path / "blank", BATCHES * BATCH_SIZE)
    exported = tmp_path / "export"
    code, _, err = run(export_main, *_export(sample, exported, cal=blank))
    assert code == 0, err
    log = tmp_path / "termination-log"
    monkeypatch.setenv(ENV_VAR, str(log))
    code, _, err = run(build_main, *_build(exported, tmp_path / "cpu"))
    assert code == 3
    rejected = _manifest(tmp_path / "cpu" / "manifest.rejected.json")
    assert not (tmp_path / "cpu" / "manifest.json").exists()
    assert not list((tmp_path / "cpu").glob("*.onnx"))  # no engine published
    block = rejected["evaluation"]
    assert (block["passed"], block["maxApDrop"]) == (False, 3.0)
    assert block["figures"]["AP"] < 5.0 and block["apDrop"] > 3.0
    # Blank ranges saturate the heatmaps flat: every image hits the decoder's candidate cap
    # , which the refusal names before the drop.
    assert block["peakCandidatesCapped"] == IMAGES
    message = (
        f"int8 engine refused: its heatmaps gave more than {MAX_CANDIDATES_PER_JOINT} peak "
        f"candidates of a joint (the decoder's cap per joint) on {IMAGES} of {IMAGES} "
        "evaluation images, the FP32 model's on 0. Heatmaps that flat or noisy come from a "
        "broken engine, so its AP says nothing about its keypoints (AP "
        f"{block['figures']['AP']:.2f} vs FP32 AP {block['reference']['AP']:.2f}, a drop of "
        f"{block['apDrop']:.2f} AP points; limit 3). {CAPPED_ADVICE['int8']}"
    )
    assert f"bpnet-build: error: {message}" in err
    assert block["message"] == message
    result = json.loads(log.read_text())
    assert (result["ok"], result["reason"], result["message"]) == (
        False,
        "AccuracyDropTooLarge",
        message,
    )


def test_an_engine_with_flat_heatmaps_is_refused_naming_the_decoders_cap(
    int8_export: Path, run: Run, tmp_path: Path
) -> None:
    """Issue 26, item 5: a broken engine's flat heatmaps are decoded within the cap (not an
    OOM kill), counted in its figures and refused by the AP gate with the cap named."""
    flat = trained.flattened(int8_export / "bpnet_model.onnx", tmp_path / "flat.onnx")
    engines = tmp_path / "cpu"
    code, _, err = run(
        build_main,
        "--onnx", str(flat), "--reference", str(int8_export / "reference.npz"),
        "--eval_reference", str(int8_export / "evaluation.json"),
        "--engine_backend", "onnxruntime",
        "--engine_file", str(engines / f"bpnet_model.{HEIGHT}.{WIDTH}.fp32.engine"), *LIFTED,
    )  # fmt: skip
    assert code == 3, err
    block = _manifest(engines / "manifest.rejected.json")["evaluation"]
    assert (block["passed"], block["peakCandidatesCapped"], block["images"]) == (
        False, IMAGES, IMAGES
    )  # fmt: skip
    head = (
        f"fp32 engine refused: its heatmaps gave more than {MAX_CANDIDATES_PER_JOINT} peak "
        "candidates of a joint (the decoder's cap per joint) on "
        f"{IMAGES} of {IMAGES} evaluation images, the FP32 model's on 0."
    )
    assert block["message"].startswith(head)
    assert f"bpnet-build: error: {head}" in err
    assert "these figures are a broken one's" in block["note"]


def test_a_build_given_another_set_of_the_same_size_is_refused_before_evaluating(
    int8_export: Path,
    sample: TrainedSample,
    run: Run,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 26, item 2: same images, same people, one joint moved: another set, refused by
    digest before the engine runs on it, both sets named."""
    moved = json.loads(sample.annotations.read_text())
    moved["annotations"][0]["keypoints"][0] += 3
    other = tmp_path / "other.json"
    other.write_text(json.dumps(moved))

    def ran(*args: object, **kwargs: object) -> None:
        raise AssertionError("the engine was evaluated before the set was compared")

    monkeypatch.setattr(artifact_ap, "evaluate_artifact", ran)
    log = tmp_path / "termination-log"
    monkeypatch.setenv(ENV_VAR, str(log))
    argv = _build(int8_export, tmp_path / "cpu", "--eval_annotations", str(other),
                  "--eval_images", str(sample.images))  # fmt: skip
    code, _, err = run(build_main, *argv)
    assert code == 2, err
    reference = int8_export / "evaluation.json"
    for part in (
        f"bpnet-build: error: the engine's evaluation set is not the one the reference "
        f"{reference} was measured on (their annotations differ), so the AP drop would mean "
        f"nothing: this build's set is annotations {other}, images {sample.images} ({IMAGES} "
        "images, ",
        f"; the reference's is annotations {sample.annotations}, images {sample.images} "
        f"({IMAGES} images, ",
        "Give the export's --eval_annotations, --eval_images and --eval_max_images",
    ):
        assert part in err, err
    result = json.loads(log.read_text())
    assert (result["ok"], result["reason"]) == (False, "EvaluationSetMismatch")


def test_sdk_compatible_publishes_both_engines_and_evaluates_the_plain_one(
    sample: TrainedSample, run: Run, tmp_path: Path
) -> None:
    exported = tmp_path / "export"
    # Percentile ranges, as the demo's resource: this network's PAFs are mostly zero, and
    # entropy clips them past the int8 verification gate (PAF cosine 0.95 < 0.98).
    argv = _export(sample, exported, "--sdk_compatible_model", "--cal_method", "percentile")
    code, _, err = run(export_main, *argv)
    assert code == 0, err
    manifest = _manifest(exported / "manifest.json")
    kinds = _kinds(manifest)
    assert kinds["onnx"] == str(exported / "bpnet_model.onnx")
    assert kinds["deploy-onnx"] == str(exported / "bpnet_model.deploy.onnx")
    plain = onnx.load(str(exported / "bpnet_model.onnx"))
    deploy = onnx.load(str(exported / "bpnet_model.deploy.onnx"))
    assert "conv2d_transpose_1/BiasAdd:0" not in {o.name for o in plain.graph.output}
    assert "conv2d_transpose_1/BiasAdd:0" in {o.name for o in deploy.graph.output}
    assert manifest["deploy"]["tensors"]["outputs"][0]["name"] == "conv2d_transpose_1/BiasAdd:0"
    # One cal.bin: a scale for every calibration tensor of both graphs.
    scales = calibration_cache.read(exported / "cal.bin").scales
    for graph in (plain, deploy):
        assert set(select_tensors(graph).names) <= set(scales)
    # The deploy graph's own tensors were not measured: each holds a copy of its source
    # tensor's values (a layout op's input; the PAF upsampling's, paf_out/BiasAdd:0), and
    # carries that tensor's scale bit for bit.
    tensors = select_tensors(deploy)
    own = set(tensors.names) - set(select_tensors(plain).names)
    producer = {out: node for node in deploy.graph.node for out in node.output}
    upsampled = [n for n in own if producer[n].op_type == "ConvTranspose"]
    assert len(upsampled) == 1 and "conv2d_transpose_1" in producer[upsampled[0]].name
    assert scales[upsampled[0]] == scales["paf_out/BiasAdd:0"]
    layout = own - set(upsampled)  # tf2onnx's Transposes, named apart in each conversion
    assert "conv2d_transpose_1/BiasAdd:0" in layout, sorted(own)
    for name in layout:
        assert producer[name].op_type == "Transpose" and tensors.source(name) != name
        assert scales[name] == scales[tensors.source(name)], name
    assert manifest["evaluation"]["figures"]["AP"] >= AP_FLOOR

    engines = tmp_path / "cpu"
    deploy_uri = str(exported / "bpnet_model.deploy.onnx")
    # The real gates (int8's defaults): both engines must pass verification, not only AP.
    argv = _build(exported, engines, "--deploy_onnx", deploy_uri, gates=[])
    # As the operator names an sdkCompatible target's engine (TAO's deploy name).
    argv[argv.index("--engine_file") + 1] = str(
        engines / f"bpnet_model.{HEIGHT}.{WIDTH}.int8.deploy.engine"
    )
    code, out, err = run(build_main, *argv)
    assert code == 0, err
    built = _manifest(engines / "manifest.json")
    kinds = _kinds(built)
    plain_engine = engines / f"bpnet_model.{HEIGHT}.{WIDTH}.int8.onnx"
    deploy_engine = engines / f"bpnet_model.{HEIGHT}.{WIDTH}.int8.deploy.onnx"
    assert (kinds["engine"], kinds["deploy-engine"]) == (str(plain_engine), str(deploy_engine))
    assert built["evaluation"]["evaluatedEngine"] == str(plain_engine)
    assert built["evaluation"]["deployEngine"] == str(deploy_engine)
    assert built["evaluation"]["passed"] is True
    for verification in (built["verification"], built["deploy"]["verification"]):
        assert verification["gates"] == DEFAULT_GATES["int8"]
        assert verification["passed"] is True
        assert judge("int8", verification["figures"], {}).passed, verification["figures"]
    assert built["deploy"]["calibration"] == str(exported / "cal.bin")
    outputs = {o.name for o in onnx.load(str(deploy_engine)).graph.output}
    assert "conv2d_transpose_1/BiasAdd:0" in outputs
    assert (engines / "triton" / "bpnet_deploy" / "config.pbtxt").is_file()
    nvinfer = (engines / "bodypose2d_pgie_config.deploy.txt").read_text()
    assert "output-blob-names=conv2d_transpose_1/BiasAdd:0;heatmap_out/BiasAdd:0" in nvinfer
    assert "int8-calib-file=../export/cal.bin" in nvinfer
    assert f"deploy engine {deploy_engine}" in out


@pytest.mark.parametrize(
    ("main", "argv", "message"),
    [
        (export_main, ["--eval_images", "imgs/"],
         "--eval_images needs --eval_annotations (the COCO person-keypoints JSON"),
        (export_main, ["--eval_annotations", "a.json"],
         "--eval_annotations needs --eval_images (the directory or s3:// prefix"),
        (export_main, ["--eval_max_images", "5"],
         "--eval_max_images: only used with --eval_annotations and --eval_images"),
        (export_main, ["--eval_annotations", "a.json", "--eval_images", "i/",
                       "--eval_max_images", "0"],
         "--eval_max_images must be at least 1, got 0"),
        (build_main, ["--max_ap_drop", "2"],
         "--max_ap_drop: the AP gate needs --eval_reference (the export's evaluation.json"),
        (build_main, ["--eval_annotations", "a.json", "--eval_images", "i/"],
         "--eval_annotations, --eval_images: the AP gate needs --eval_reference"),
        (build_main, ["--eval_reference", "e.json", "--max_ap_drop", "-1"],
         "--max_ap_drop must not be negative, got -1 AP points"),
        (build_main, ["--eval_reference", "e.json", "--eval_images", "i/"],
         "--eval_images needs --eval_annotations"),
    ],
)  # fmt: skip
def test_bad_flags_are_refused_before_any_work(
    run: Run, tmp_path: Path, main: Callable[[list[str]], int], argv: list[str], message: str
) -> None:
    if main is export_main:
        base = ["-m", str(tmp_path / "missing.tlt"), "-k", KEY, "-d", f"{HEIGHT},{WIDTH},3"]
    else:
        base = ["--onnx", str(tmp_path / "missing.onnx"), "--engine_backend", "onnxruntime",
                "--engine_file", str(tmp_path / "e.engine")]  # fmt: skip
    code, _, err = run(main, *base, *argv)
    assert code == 2
    assert message in err, err
    assert not list(tmp_path.iterdir())  # nothing fetched, nothing written


def test_a_missing_reference_or_set_names_the_uri(
    int8_export: Path, sample: TrainedSample, run: Run, tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere" / "evaluation.json"
    argv = _build(int8_export, tmp_path / "cpu")
    argv[argv.index("--eval_reference") + 1] = str(missing)
    code, _, err = run(build_main, *argv)
    assert code == 2
    assert f"evaluation reference {missing} does not exist" in err
    not_one = tmp_path / "not-evaluation.json"
    not_one.write_text("{}")
    argv[argv.index("--eval_reference") + 1] = str(not_one)
    code, _, err = run(build_main, *argv)
    assert code == 2 and f"--eval_reference {not_one} is not the evaluation.json" in err
    # The export refuses a bad set before converting anything, naming the user's URI.
    gone = tmp_path / "gone.json"
    argv = _export(sample, tmp_path / "export")
    argv[argv.index("--eval_annotations") + 1] = str(gone)
    code, _, err = run(export_main, *argv)
    assert code == 2 and f"evaluation annotations {gone} do not exist" in err
    assert not (tmp_path / "export" / "manifest.json").exists()


def test_evaluation_uris_on_s3(
    sample: TrainedSample, run: Run, s3_endpoint: S3Endpoint, s3_bucket: str
) -> None:
    """An fp32 export and build with every evaluation URI on MinIO, as a Job runs them."""
    client = s3_endpoint.client()
    client.upload_file(str(sample.annotations), s3_bucket, "eval/person_keypoints.json")
    for image in sorted(sample.images.iterdir()):
        client.upload_file(str(image), s3_bucket, f"eval/images/{image.name}")
    client.upload_file(str(sample.model), s3_bucket, "models/bpnet.tlt")
    prefix = f"s3://{s3_bucket}/out"
    annotations = f"s3://{s3_bucket}/eval/person_keypoints.json"
    images = f"s3://{s3_bucket}/eval/images/"
    code, _, err = run(
        export_main,
        "-m", f"s3://{s3_bucket}/models/bpnet.tlt", "-k", KEY, "-d", f"{HEIGHT},{WIDTH},3",
        "-o", f"{prefix}/bpnet_model.etlt", "--eval_annotations", annotations,
        "--eval_images", images, "--eval_max_images", "10",
    )  # fmt: skip
    assert code == 0, err
    body = client.get_object(Bucket=s3_bucket, Key="out/manifest.json")["Body"].read()
    exported = json.loads(body)
    assert exported["evaluation"]["images"] == 10
    assert exported["evaluation"]["imagesUri"] == images
    assert _kinds(exported)["evaluation-reference"] == f"{prefix}/evaluation.json"
    code, _, err = run(
        build_main,
        "--onnx", f"{prefix}/bpnet_model.onnx", "--reference", f"{prefix}/reference.npz",
        "--engine_backend", "onnxruntime", "--eval_reference", f"{prefix}/evaluation.json",
        "--eval_annotations", annotations, "--eval_images", images, "--eval_max_images", "10",
        "--engine_file", f"{prefix}/targets/cpu/bpnet_model.{HEIGHT}.{WIDTH}.fp32.engine",
    )  # fmt: skip
    assert code == 0, err
    body = client.get_object(Bucket=s3_bucket, Key="out/targets/cpu/manifest.json")["Body"].read()
    block = json.loads(body)["evaluation"]
    assert (block["images"], block["maxApDrop"], block["passed"]) == (10, 0.5, True)
    assert abs(block["apDrop"]) <= 0.5
    assert block["referenceUri"] == f"{prefix}/evaluation.json"


def test_export_engine_file_builds_evaluates_and_deploys_in_one_run(
    sample: TrainedSample, run: Run, tmp_path: Path
) -> None:
    """`bpnet-export --engine_file` with a set and --sdk_compatible_model: the plain engine is
    the one built, gated and named `.engine` (`.onnx` here); the deploy one goes beside it."""
    out = tmp_path / "export"
    engines = tmp_path / "engines"
    engines.mkdir()
    code, _, err = run(
        export_main,
        *_export(sample, out, "--sdk_compatible_model", "--engine_file", f"{engines}/",
                 "--engine_backend", "onnxruntime", *LIFTED),
    )  # fmt: skip
    assert code == 0, err
    engine = _manifest(out / "manifest.json")["engine"]
    assert engine["path"] == str(engines / f"bpnet_model.{HEIGHT}.{WIDTH}.int8.onnx")
    assert engine["evaluation"]["passed"] is True
    assert engine["evaluation"]["referenceUri"] == str(out / "evaluation.json")
    assert engine["deploy"]["path"] == str(
        engines / f"bpnet_model.{HEIGHT}.{WIDTH}.int8.deploy.onnx"
    )
    assert (engines / f"bpnet_model.{HEIGHT}.{WIDTH}.int8.deploy.onnx").is_file()


def test_an_engine_file_naming_the_deploy_engine_keeps_both(
    int8_sdk_names: tuple[str, str, str],
) -> None:
    """The operator names an sdkCompatible target's engine TAO's way, `x.int8.deploy.engine`:
    that name is the deploy engine's, and the evaluated one drops `.deploy`."""
    given, plain, deploy = int8_sdk_names
    from bodypose_exporter.stages.deploy import engine_file, plain_engine_file

    assert plain_engine_file(given) == plain
    assert engine_file(plain_engine_file(given)) == deploy
    assert plain_engine_file(plain) == plain


@pytest.fixture(params=["s3://b/t/a100/", "/tmp/t/"])
def int8_sdk_names(request: pytest.FixtureRequest) -> tuple[str, str, str]:
    base = f"{request.param}bpnet_model.{HEIGHT}.{WIDTH}.int8"
    return f"{base}.deploy.engine", f"{base}.engine", f"{base}.deploy.engine"
