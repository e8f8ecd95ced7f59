"""The walk of one build request: which files of `bodypose_exporter` `run_build` passes
through, how often control crosses between them, and where it talks to S3.

    cd <worktree> && PYTHONPATH=<worktree>/exporter_image:<worktree>/operator:<worktree> \\
        /work/main/.venv/bin/python hack/walk.py [--work DIR]

The package measured is whichever `bodypose_exporter` the PYTHONPATH puts first (printed
first): run it once with main's (`PYTHONPATH=/work/main/exporter_image:...`) and once with
a branch's to compare the two walks.

Setup (not traced; kept in `--work`, default /tmp/bpnet-walk, and reused by the next
run): the untrained sample model exported at 224x320 as int8 (cal.bin, the QDQ model)
with an evaluation set of 8 drawn people (`evaluation.json`), then a MinIO of its own
(devcluster/minio.py, a fresh one per run) holding the export's artifacts and the
evaluation set. Traced: `run_build` for the onnxruntime backend, fp32 then int8, every
input an s3:// URI and the engine written under s3://, the AP gate on.

What is counted, with `sys.setprofile` on the main thread (S3 transfers' worker threads
are not traced; their requests start from a traced call):

- files entered: the modules under `bodypose_exporter/` that run at all;
- entries: how many ways control enters each file from another one: the distinct
  call edges (caller file and function -> callee function) of a call whose nearest
  enclosing `bodypose_exporter` frame is in another file (a loop calling the same
  function a thousand times is one edge; the raw count is printed beside it as
  calls across files);
- climbs back up: returns across files (a `bodypose_exporter` frame returning to a
  caller in another file), counted as distinct edges (callee file -> caller file and
  function), the raw count beside it; a generator's yield counts as a return, its
  resume as a call, as the profiler reports them;
- S3: each call of `storage/s3.py`'s requests (download, upload, exists, list,
  delete, the write check): where it happens (the nearest frame outside
  `storage/`) and in which step of the build (the function `run_build` called).
  Goal: each file entered once or twice, S3 only at the edges (the fetch at the
  start, the publish at the end).
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
KEY = "nvidia_tlt"
HEIGHT, WIDTH = 224, 320


#: The functions of `storage/s3.py` that talk to S3 (the rest parse and name URIs).
S3_IO = {"download", "upload", "check_writable", "delete", "exists", "list_directory"}


@dataclass(frozen=True)
class _Frame:
    """The nearest package frame of a live Python frame: its file and function."""

    file: str
    function: str


@dataclass
class Walk:
    """The counters of one traced call (module docstring)."""

    root: str  # the package's directory, with a trailing slash
    calls: collections.Counter[str] = field(default_factory=collections.Counter)
    entries: collections.Counter[str] = field(default_factory=collections.Counter)
    returns: int = 0
    climbs: int = 0
    s3: collections.Counter[str] = field(default_factory=collections.Counter)
    _stack: list[_Frame | None] = field(default_factory=list)
    _own: list[bool] = field(default_factory=list)
    _files: dict[str, str | None] = field(default_factory=dict)
    _edges: set[tuple[str, str, str, str]] = field(default_factory=set)
    _climbed: set[tuple[str, str, str]] = field(default_factory=set)

    def _relative(self, filename: str) -> str | None:
        if filename not in self._files:
            inside = filename.startswith(self.root)
            self._files[filename] = filename[len(self.root) :] if inside else None
        return self._files[filename]

    def _where(self) -> str:
        """The nearest package frame outside `storage/`, and the build step it is in (the
        frame `stages/build.py:run_build` called)."""
        frames = [f for f in self._stack if f is not None]
        near = next((f for f in reversed(frames) if not f.file.startswith("storage/")), None)
        top = next((i for i, f in enumerate(frames) if f.function == "run_build"), None)
        step = frames[top + 1] if top is not None and top + 1 < len(frames) else None
        near_name = f"{near.file}:{near.function}" if near else "?"
        return f"{near_name}, in step {step.file}:{step.function}" if step else near_name

    def profile(self, frame: FrameType, event: str, arg: Any) -> None:
        if event == "call":
            self._call(frame)
        elif event == "return" and self._stack:
            own, inner = self._own.pop(), self._stack.pop()
            outer = self._stack[-1] if self._stack else None
            if own and inner is not None and outer is not None and outer.file != inner.file:
                self.returns += 1
                edge = (inner.file, outer.file, outer.function)
                if edge not in self._climbed:
                    self._climbed.add(edge)
                    self.climbs += 1

    def _call(self, frame: FrameType) -> None:
        code = frame.f_code
        outer = self._stack[-1] if self._stack else None
        file = self._relative(code.co_filename)
        if file is None:
            self._stack.append(outer)
            self._own.append(False)
            return
        if outer is None or outer.file != file:
            self.calls[file] += 1
            edge = (outer.file, outer.function) if outer else ("", "")
            if (*edge, file, code.co_name) not in self._edges:
                self._edges.add((*edge, file, code.co_name))
                self.entries[file] += 1
            if file == "storage/s3.py" and code.co_name in S3_IO:
                self.s3[f"s3.{code.co_name} from {self._where()}"] += 1
        self._stack.append(_Frame(file, code.co_name))
        self._own.append(True)

    @contextmanager
    def tracing(self) -> Iterator[None]:
        sys.setprofile(self.profile)
        try:
            yield
        finally:
            sys.setprofile(None)

    def report(self, title: str) -> dict[str, Any]:
        print(f"\n== {title}")
        print(f"files entered: {len(self.entries)}; entries from another file: "
              f"{sum(self.entries.values())} (calls across files: {sum(self.calls.values())}); "
              f"climbs back up: {self.climbs} (returns across files: {self.returns})")  # fmt: skip
        for file, count in self.entries.most_common():
            print(f"  {count:4d} entries ({self.calls[file]:6d} calls)  {file}")
        print(f"S3 calls (storage/s3.py's requests): {sum(self.s3.values())}")
        for call, count in sorted(self.s3.items()):
            print(f"  {count:4d}  {call}")
        return {
            "files": len(self.entries),
            "entries": sum(self.entries.values()),
            "maxEntries": max(self.entries.values(), default=0),
            "climbs": self.climbs,
            "calls": sum(self.calls.values()),
            "returns": self.returns,
            "s3": sum(self.s3.values()),
        }


def export(work: Path) -> Path:
    """The int8 export with an evaluation set (module docstring), made once per `work`."""
    out = work / "export"
    if (out / "manifest.json").is_file():
        return out
    from bodypose_exporter.evaluation.artifact_ap import EvaluationRequest
    from bodypose_exporter.stages.calibrate import CalibrationRequest
    from bodypose_exporter.stages.export import ExportRequest, InputDims, run_export
    from bodypose_exporter.stages.sample import write_sample_images, write_sample_model
    from bodypose_exporter.synthetic.people import write_set

    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    write_sample_model(out / "bpnet_model.tlt", KEY)
    write_sample_images(work / "calibration", 8)
    images, annotations = write_set(work / "evaluation", 8, 1000)
    run_export(
        ExportRequest(
            model=str(out / "bpnet_model.tlt"), key=KEY, output=str(out / "bpnet_model.etlt"),
            dims=InputDims(HEIGHT, WIDTH, 3), data_type="int8",
            calibration=CalibrationRequest(cache_file=str(out / "cal.bin"),
                                           image_dir=str(work / "calibration"), batches=6),
            evaluation=EvaluationRequest(str(annotations), str(images)),
        )
    )  # fmt: skip
    return out


def upload(client: Any, bucket: str, exported: Path, work: Path) -> dict[str, str]:
    """The export's artifacts and the evaluation set into `bucket`; their s3:// URIs."""
    from bodypose_exporter.manifest import Kind, artifact_path

    manifest = json.loads((exported / "manifest.json").read_text())
    uris = {}
    for kind in (Kind.ONNX, Kind.REFERENCE, Kind.CALIBRATION_CACHE, Kind.QDQ_MODEL,
                 Kind.EVALUATION):  # fmt: skip
        local = Path(str(artifact_path(manifest, kind)))
        client.upload_file(str(local), bucket, f"export/{local.name}")
        uris[kind.value] = f"s3://{bucket}/export/{local.name}"
    for path in sorted((work / "evaluation").rglob("*")):
        if path.is_file():
            client.upload_file(str(path), bucket, f"eval/{path.relative_to(work / 'evaluation')}")
    uris["annotations"] = f"s3://{bucket}/eval/person_keypoints.json"
    uris["images"] = f"s3://{bucket}/eval/images"
    return uris


def request(bucket: str, uris: dict[str, str], precision: str) -> Any:
    from bodypose_exporter.engines.base import EngineOptions
    from bodypose_exporter.manifest import Kind
    from bodypose_exporter.stages.build import BuildInputs, BuildStageRequest

    int8 = precision == "int8"
    return BuildStageRequest(
        engine=EngineOptions(backend="onnxruntime", precision=precision, max_batch_size=2),
        engine_file=f"s3://{bucket}/targets/cpu/{precision}/"
        f"bpnet_model.{HEIGHT}.{WIDTH}.{precision}.onnx",
        inputs=BuildInputs(
            onnx=uris[Kind.ONNX.value], reference=uris[Kind.REFERENCE.value],
            calibration_cache=uris[Kind.CALIBRATION_CACHE.value] if int8 else None,
            qdq_model=uris[Kind.QDQ_MODEL.value] if int8 else None,
            eval_reference=uris[Kind.EVALUATION.value],
        ),
        eval_annotations=uris["annotations"], eval_images=uris["images"],
    )  # fmt: skip


def walk_builds(work: Path) -> list[dict[str, Any]]:
    import bodypose_exporter
    from bodypose_exporter.errors import UserError
    from bodypose_exporter.stages.build import run_build
    from devcluster.controlplane import ensure_binaries
    from devcluster.minio import start_minio

    package = Path(bodypose_exporter.__file__).resolve().parent
    print(f"bodypose_exporter: {package}")
    exported = export(work)
    minio_dir = work / f"minio-{uuid.uuid4().hex[:8]}"
    minio_dir.mkdir()
    figures = []
    try:
        with start_minio(ensure_binaries(("minio",))["minio"], minio_dir) as server:
            import os

            os.environ.update(server.environment())
            client = server.client()
            bucket = f"walk-{uuid.uuid4().hex[:8]}"
            client.create_bucket(Bucket=bucket)
            uris = upload(client, bucket, exported, work)
            for precision in ("fp32", "int8"):
                walk = Walk(f"{package}/")
                outcome = "published"
                with walk.tracing():
                    try:
                        run_build(request(bucket, uris, precision))
                    except UserError as exc:  # a rejection is a walk too
                        outcome = f"{type(exc).__name__}: {exc}"
                figures.append(walk.report(f"run_build onnxruntime {precision}: {outcome}"))
    finally:
        shutil.rmtree(minio_dir, ignore_errors=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--work", type=Path, default=Path("/tmp/bpnet-walk"))
    args = p.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    figures = walk_builds(args.work)
    print("\nsummary: " + json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
