"""What a stage's manifest says, as status fields. Pure functions, no I/O.

Each stage writes a `manifest.json` last (the exporter's `manifest.py`): the
artifacts it published (kind, path, sha256, bytes), the hardware and
compatibility record of a build, its timings, verification and evaluation
figures. `controller/decide.py` turns those into the resource's status with
these functions; the kinds they look for and the keys they read are the contract
both images install (`bodypose_contract/artifacts.py`, `bodypose_contract/manifest.py`).
"""

from __future__ import annotations

from typing import Any

from bodypose_contract.artifacts import Kind, file_name
from bodypose_contract.manifest import Key
from bodypose_operator.api.status import COMPATIBILITY_FIELDS, ServingConfigs


def artifact_ref(manifest: dict[str, Any], kind: Kind) -> dict[str, Any] | None:
    """The status' ArtifactRef of the manifest's artifact of `kind`, or None."""
    for artifact in manifest.get(Key.ARTIFACTS, []):
        if artifact.get("kind") == kind:
            return {
                "uri": artifact["path"],
                "sha256": artifact.get("sha256"),
                "sizeBytes": artifact.get("bytes"),
            }
    return None


def _tensorfile(manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The tensorfile lives where the spec named it, not among the published artifacts."""
    uri = (manifest.get(Key.CALIBRATION) or {}).get("tensorfile")
    return {"uri": uri} if uri else None


def shared_artifacts(manifest: dict[str, Any], manifest_uri: str) -> dict[str, Any]:
    """`status.artifacts`: what the export published for every target, the manifest too."""
    refs = {
        "etlt": artifact_ref(manifest, Kind.ETLT),
        "onnx": artifact_ref(manifest, Kind.ONNX),
        "calibrationCache": artifact_ref(manifest, Kind.CALIBRATION_CACHE),
        "qdqModel": artifact_ref(manifest, Kind.QDQ_MODEL),
        "tensorfile": _tensorfile(manifest),
        "manifest": {"uri": manifest_uri},
    }
    return {name: ref for name, ref in refs.items() if ref}


def calibration_message(manifest: dict[str, Any]) -> str:
    """The Calibrated condition's message: where cal.bin came from, how the QDQ model agrees."""
    cal = manifest.get(Key.CALIBRATION) or {}
    cache = file_name(Kind.CALIBRATION_CACHE)
    if cal.get("cacheReused"):
        return f"{cache} reused from {cal.get('cacheFile')}"
    text = (
        f"{cache} from {cal.get('images', 0)} images in {cal.get('batches', 0)} batches "
        f"({cal.get('method', 'entropy')})"
    )
    agreement = cal.get("agreement") or {}
    if agreement:
        text += (
            f"; QDQ vs FP32 on {agreement.get('images')} held-back images: heatmap cosine "
            f"{agreement.get('heatmap_cosine_mean', 0):.4f}, peaks at the same pixel "
            f"{100 * agreement.get('peak_match', 0):.1f}%"
        )
    return text


def evaluation_status(manifest: dict[str, Any]) -> dict[str, Any] | None:
    """`status.evaluation`: the FP32 model's AP on the evaluation set, as the export
    recorded it."""
    evaluation = manifest.get(Key.EVALUATION)
    if not isinstance(evaluation, dict):
        return None
    figures = evaluation.get("figures") or {}
    reference: dict[str, Any] = {}
    if isinstance(evaluation.get("images"), int):
        reference["images"] = evaluation["images"]
    for src, dst in (("AP", "ap"), ("AP50", "ap50"), ("AP75", "ap75"), ("APm", "apM"),
                     ("APl", "apL")):  # fmt: skip
        if isinstance(figures.get(src), int | float):
            reference[dst] = round(float(figures[src]), 2)
    if isinstance(evaluation.get("note"), str):
        reference["note"] = evaluation["note"]
    return reference or None


def target_fields(manifest: dict[str, Any], status_keys: tuple[str, ...] = ()) -> dict[str, Any]:
    """A built target's status fields from its manifest: its artifact, what it was built
    for and what loads it, the serving configs beside it, its timings and figures. The
    record keys its backend owns (`status_keys`, `Backend.status_keys`) go to the
    `backendStatus` map."""
    fields: dict[str, Any] = {}
    engine = artifact_ref(manifest, Kind.ENGINE)
    if engine:
        fields["engineUri"] = engine["uri"]
        fields["sha256"] = engine["sha256"]
        fields["sizeBytes"] = engine["sizeBytes"]
    deploy = artifact_ref(manifest, Kind.DEPLOY_ENGINE)
    if deploy:
        fields["deployEngine"] = {k: v for k, v in deploy.items() if v is not None}
    fields.update(_record_fields(manifest, status_keys))
    if isinstance(manifest.get(Key.RUNTIME), str):
        fields["runtime"] = manifest[Key.RUNTIME]
    fields.update(_precision_fields(manifest))
    serving = manifest.get(Key.SERVING) or {}
    configs = {
        k: serving[k] for k in ServingConfigs.model_fields if isinstance(serving.get(k), str)
    }
    if configs:
        fields["serving"] = configs
    if manifest.get(Key.TIMINGS, {}).get("build") is not None:
        fields["buildSeconds"] = float(manifest[Key.TIMINGS]["build"])
    fields.update(_evaluation_fields(manifest))
    fields.update(_latency_fields(manifest))
    fields.update(_speedup_fields(manifest))
    verification = manifest.get(Key.VERIFICATION, {})
    figures = verification.get("figures")
    if isinstance(figures, dict) and figures:
        fields["verification"] = {
            k: float(v) for k, v in figures.items() if isinstance(v, (int, float))
        }
    if verification.get(Key.RUN) is False:
        # Built ahead of time for GPUs this pod does not have: a build, no figures.
        fields["notRun"] = str(verification.get(Key.NOT_RUN_REASON) or "not run")
    return fields


def _record_fields(manifest: dict[str, Any], status_keys: tuple[str, ...]) -> dict[str, Any]:
    """What the artifact was built for: the compatibility record (a TensorRT engine's GPU,
    an int8 CPU artifact's instruction set) over what the hardware said. A key the backend
    owns is in `backendStatus` only, even where it shares a top-level field's name."""
    record = {**manifest.get(Key.HARDWARE, {}), **(manifest.get(Key.COMPATIBILITY) or {})}
    fields: dict[str, Any] = {
        key: str(record[key])
        for key in COMPATIBILITY_FIELDS
        if key not in status_keys and record.get(key) is not None
    }
    own = {key: str(record[key]) for key in status_keys if record.get(key) is not None}
    if own:
        fields["backendStatus"] = own
    return fields


def _precision_fields(manifest: dict[str, Any]) -> dict[str, Any]:
    """What the artifact computes in: the builder's own word first (ONNX Runtime's
    `effectivePrecision`, also in manifests written before `precision` said it), then the
    manifest's `precision`; and why it is not the one asked for."""
    built = (manifest.get(Key.BUILD) or {}).get(Key.EFFECTIVE_PRECISION) or manifest.get(
        Key.PRECISION
    )
    if not isinstance(built, str):
        return {}
    fields = {"precision": built}
    asked = manifest.get(Key.REQUESTED_PRECISION, manifest.get(Key.PRECISION))
    if isinstance(manifest.get(Key.PRECISION_REASON), str):
        fields["precisionReason"] = manifest[Key.PRECISION_REASON]
    elif isinstance(asked, str) and asked != built:
        fields["precisionReason"] = f"{asked} was asked for; the builder made {built}"
    return fields


def _evaluation_fields(manifest: dict[str, Any]) -> dict[str, Any]:
    """A target's AP on the evaluation set and its drop below the FP32 model's."""
    evaluation = manifest.get(Key.EVALUATION) or {}
    ap = (evaluation.get("figures") or {}).get("AP")
    if not isinstance(ap, int | float):
        return {}
    fields = {"ap": round(float(ap), 2)}
    # COCO's medium and large people: TAO's resolution advice is about the medium ones.
    for source, name in (("APm", "apM"), ("APl", "apL")):
        value = (evaluation.get("figures") or {}).get(source)
        if isinstance(value, int | float):
            fields[name] = round(float(value), 2)
    for key in ("apDrop", "maxApDrop"):
        if isinstance(evaluation.get(key), int | float):
            fields[key] = round(float(evaluation[key]), 2)
    return fields


def _latency_fields(manifest: dict[str, Any]) -> dict[str, Any]:
    """The engine's latency on its build node, as the build measured it (nothing when it
    could not run the engine: a figure nobody measured is never reported)."""
    latency = manifest.get(Key.LATENCY) or {}
    if latency.get("measured") is False or "batch1" not in latency:
        return {}
    timed = {}
    for key in ("batch1", "batchMax"):
        entry = latency.get(key) or {}
        if isinstance(entry.get("medianMs"), int | float):
            timed[key] = {"median": float(entry["medianMs"]), "p90": float(entry["p90Ms"]),
                          "batch": int(entry.get("batch", 1))}  # fmt: skip
            # Builds before the spread was recorded wrote only the median and p90.
            for source, name in (("p10Ms", "p10"), ("spreadPct", "spreadPct")):
                if isinstance(entry.get(source), int | float):
                    timed[key][name] = float(entry[source])
            if isinstance(entry.get("runs"), int):
                timed[key]["runs"] = entry["runs"]
    fields: dict[str, Any] = {"latencyMs": timed} if timed else {}
    top = latency.get("batchMax") or {}
    if isinstance(top.get("imagesPerSecond"), int | float):
        fields["throughput"] = float(top["imagesPerSecond"])
    if isinstance(latency.get("device"), str):
        fields["latencyDevice"] = latency["device"]
    if timed:
        fields["latency"] = _measurement(latency)
    return fields


def _speedup_fields(manifest: dict[str, Any]) -> dict[str, Any]:
    """An int8 CPU artifact's speed against FP32 where its build measured both, and the
    build's warnings (an int8 artifact no faster than FP32 is published, and says so)."""
    fields: dict[str, Any] = {}
    speedup = manifest.get(Key.INT8_SPEEDUP) or {}
    figures = [speedup.get(k) for k in ("int8MedianMs", "fp32MedianMs", "ratio")]
    if all(isinstance(v, int | float) for v in figures):
        fields["int8Speedup"] = dict(zip(("int8Ms", "fp32Ms", "ratio"), figures, strict=True))
        if isinstance(speedup.get("runs"), int):
            fields["int8Speedup"]["runs"] = speedup["runs"]
    warnings = [str(w) for w in manifest.get(Key.WARNINGS) or [] if isinstance(w, str)]
    if warnings:
        fields["warnings"] = warnings
    return fields


#: The clocks a figure can be measured by (`LatencyMeasurement.clock`).
CLOCKS = ("cuda-events", "wall")
#: The clock as a manifest written before `clock` named only the kind said it.
_OLD_CLOCKS = {"wall clock around run()": "wall"}


def _measurement(latency: dict[str, Any]) -> dict[str, Any]:
    """`latency`: the clock, what the figure includes, the CPU quota and threads it ran with."""
    clock = str(latency.get("clock", ""))
    clock = _OLD_CLOCKS.get(clock, "cuda-events" if clock.startswith("CUDA events") else clock)
    measured: dict[str, Any] = {"clock": clock} if clock in CLOCKS else {}
    if isinstance(latency.get("includes"), list):
        measured["includes"] = [str(i) for i in latency["includes"]]
    quota = (latency.get("cpuBudget") or {}).get("quotaCpus")
    if isinstance(quota, int | float) and quota > 0:
        measured["cpus"] = _quantity(float(quota))
    if isinstance(latency.get("threads"), int):
        measured["threads"] = latency["threads"]
    if isinstance(latency.get("threadsFrom"), str):
        measured["threadsFrom"] = latency["threadsFrom"]
    return measured


def _quantity(cpus: float) -> str:
    """CPUs as Kubernetes writes them: 2, 1500m."""
    millis = round(cpus * 1000)
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def stage_seconds(manifest: dict[str, Any]) -> float:
    """How long a stage took, all its timed steps together."""
    timings = manifest.get(Key.TIMINGS) or {}
    return float(sum(v for v in timings.values() if isinstance(v, int | float)))
