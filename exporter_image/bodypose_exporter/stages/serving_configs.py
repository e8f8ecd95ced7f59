"""The serving configs of one built artifact: beside it, and where `--triton_repository` /
`--deepstream_config` ask (the build stage's serving configs; README, "Serving configs").

Beside every artifact the build publishes, with the manifest listing each:

    <engine dir>/triton/<model>/config.pbtxt
    <engine dir>/triton/<model>/1/model.plan   (or model.onnx)
    <engine dir>/bodypose2d_pgie_config.txt

`--triton_repository DIR` writes the same entry into DIR; when DIR already
holds this model from another GPU target (written by this tool), the plan
goes in as `model.sm<cc>.plan` and `cc_model_filenames` maps every compute
capability to its plan, so one repository serves every pool.
`--deepstream_config FILE` writes the nvinfer config at FILE, its paths
relative to FILE's directory.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bodypose_contract.manifest import Key
from bodypose_exporter.engines.base import BackendFacts, CompatibilityRecord, Graph
from bodypose_exporter.errors import NotFoundError, UserError
from bodypose_exporter.manifest import Kind, file_name
from bodypose_exporter.serving import bindings as onnx_bindings
from bodypose_exporter.serving import deepstream, triton
from bodypose_exporter.serving.bindings import Bindings
from bodypose_exporter.serving.paths import parent, relative
from bodypose_exporter.stages.build_engine import VerifiedEngine
from bodypose_exporter.stages.build_request import BuildStageRequest
from bodypose_exporter.storage.location import Location
from bodypose_exporter.storage.outputs import OutputSet

log = logging.getLogger(__name__)

TRITON_DIR = "triton"


@dataclass(frozen=True)
class Served:
    """One artifact and what its configs say about it."""

    facts: BackendFacts  # the backend that built the artifact
    precision: str
    max_batch_size: int
    bindings: Bindings
    artifact: Path  # the built file, local
    artifact_location: str  # where it is published (path or s3://)
    onnx_source: str  # the ONNX the artifact was built from (path or s3://)
    cal_bin: str | None  # int8: cal.bin (path or s3://)
    compute_capability: str | None
    model_name: str = triton.DEFAULT_MODEL_NAME

    def triton_model(self) -> triton.TritonModel:
        if self.facts.triton is None:
            raise UserError(
                f"--triton_repository: Triton has no platform for {self.facts.name} artifacts"
            )
        return triton.TritonModel(
            self.model_name, self.facts.triton, self.bindings, self.max_batch_size
        )

    def nvinfer(self, config_location: str) -> deepstream.NvinferConfig:
        where = parent(config_location)
        return deepstream.NvinferConfig(
            bindings=self.bindings,
            precision=self.precision,
            batch_size=self.max_batch_size,
            onnx_file=relative(self.onnx_source, where),
            engine_file=(
                relative(self.artifact_location, where) if self.facts.nvinfer_loads else None
            ),
            calib_file=relative(self.cal_bin, where) if self.cal_bin else None,
        )


def for_engine(
    engine: VerifiedEngine,
    request: BuildStageRequest,
    facts: BackendFacts,
    record: CompatibilityRecord | None,
    location: str,
    graphs: tuple[Path, Path | None],
) -> Served:
    """What the configs of a built engine say: `graphs` are its local ONNX model and QDQ
    model (or None). An engine built from the QDQ model is served as one (its bindings,
    and nvinfer's `onnx-file`, are the QDQ model's)."""
    onnx, qdq = graphs
    inputs, options = request.inputs, request.engine
    from_qdq = engine.graph is Graph.QDQ and bool(inputs.qdq_model)
    fields = record.as_dict() if record is not None else {}
    return Served(
        facts=facts,
        precision=options.precision,
        max_batch_size=options.max_batch_size,
        bindings=onnx_bindings.read(qdq if from_qdq and qdq is not None else onnx),
        artifact=engine.built.path,
        artifact_location=location,
        onnx_source=str(inputs.qdq_model) if from_qdq else inputs.onnx,
        cal_bin=inputs.calibration_cache if options.precision == "int8" else None,
        compute_capability=fields.get(Key.COMPUTE_CAPABILITY),
    )


def stage_beside(out: OutputSet, served: Served) -> list[tuple[Kind, str]]:
    """Stage the Triton entry (where Triton has a platform for the artifact) and the
    DeepStream config in `out`; (kind, name) of each."""
    staged: list[tuple[Kind, str]] = []
    if served.facts.triton is not None:
        model = served.triton_model()
        out.staged(f"{TRITON_DIR}/{model.config_path()}").write_text(triton.config_text(model))
        shutil.copyfile(served.artifact, out.staged(f"{TRITON_DIR}/{model.model_path()}"))
        staged += [
            (Kind.TRITON_CONFIG, f"{TRITON_DIR}/{model.config_path()}"),
            (Kind.TRITON_MODEL, f"{TRITON_DIR}/{model.model_path()}"),
        ]
    ds_name = file_name(Kind.DEEPSTREAM_CONFIG)
    config = served.nvinfer(out.final_location(ds_name))
    out.staged(ds_name).write_text(deepstream.config_text(config))
    return [*staged, (Kind.DEEPSTREAM_CONFIG, ds_name)]


def _inside(directory: str) -> str:
    """An OutputSet destination whose siblings are `directory`'s children."""
    return directory.rstrip("/") + "/.bodypose-export"


def write_triton_repository(directory: str, served: Served) -> list[str]:
    """The entry in the repository at `directory`, merged with other GPU targets' plans."""
    model = served.triton_model()
    with (
        tempfile.TemporaryDirectory(prefix="bpnet-triton-") as tmp,
        OutputSet(_inside(directory)) as out,
    ):
        config_uri = out.final_location(model.config_path())
        try:
            existing = Location(config_uri).fetch(Path(tmp), "Triton config").read_text()
        except NotFoundError:
            existing = None
        file_name = None
        if served.compute_capability:  # plans for one GPU each, keyed by compute capability
            model = triton.merge(existing, model, served.compute_capability, config_uri)
            file_name = triton.plan_file_for(served.compute_capability)
        elif existing is not None:
            triton.check_replaceable(existing, model, config_uri)
        out.staged(model.config_path()).write_text(triton.config_text(model))
        shutil.copyfile(served.artifact, out.staged(model.model_path(file_name)))
        published = out.publish([model.model_path(file_name), model.config_path()])
    log.info("Triton repository %s: model %s", directory, model.name)
    return published


def write_deepstream_config(file: str, served: Served) -> str:
    """The nvinfer config at `file` (path or s3://), its paths relative to its directory."""
    name = file.rstrip("/").rpartition("/")[2] or file_name(Kind.DEEPSTREAM_CONFIG)
    with OutputSet(file) as out:
        out.staged(name).write_text(
            deepstream.config_text(served.nvinfer(out.final_location(name)))
        )
        return out.publish([name])[-1]
