"""The termination message: what the exporter writes is what the operator reads.

The exporter's side is real: the CLI run in-process with BODYPOSE_TERMINATION_LOG
set, as a Job's pod runs it (`bodypose_exporter.result`). The kubelet's side is
reproduced byte for byte: it reads the file with `tail.ReadAtMost(path,
MaxContainerTerminationMessageLength)` (kubernetes pkg/kubelet/kuberuntime,
`getTerminationMessage`), i.e. the *last* 4096 bytes, and puts them in
`status.containerStatuses[].state.terminated.message`. The operator's side is
real too: `controller.pods.report` on a kubernetes.client V1Pod, and the stage
state `controller.decide` derives from it for a failed or succeeded Job.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import (
    V1ContainerState,
    V1ContainerStateTerminated,
    V1ContainerStatus,
    V1Job,
    V1JobCondition,
    V1JobStatus,
    V1ObjectMeta,
    V1Pod,
    V1PodStatus,
)

from bodypose_exporter import result
from bodypose_exporter.cli.main import export_main
from bodypose_operator.controller.facts import StageFacts
from bodypose_operator.controller.pods import PodReport, report
from bodypose_operator.controller.stage_state import StageState, stage_state
from bodypose_operator.settings import Settings
from tests.conftest import SAMPLE_KEY

# Kubernetes' MaxContainerTerminationMessageLength (pkg/kubelet/container).
KUBELET_MAX_BYTES = 4096
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def kubelet_message(written: bytes) -> str:
    """What the API server shows for a termination-log file holding `written`."""
    kept = written[-KUBELET_MAX_BYTES:]  # tail.ReadAtMost: the end of the file
    return kept.decode("utf-8", errors="replace")  # Go string -> JSON: invalid UTF-8 replaced


def pod(written: bytes, exit_code: int) -> V1Pod:
    terminated = V1ContainerStateTerminated(
        exit_code=exit_code,
        reason="Error" if exit_code else "Completed",
        message=kubelet_message(written),
    )
    status = V1ContainerStatus(
        name="exporter",
        image="bodypose-exporter:test",
        image_id="",
        ready=False,
        restart_count=0,
        state=V1ContainerState(terminated=terminated),
    )
    return V1Pod(
        metadata=V1ObjectMeta(name="export-abc-x1", creation_timestamp=NOW),
        status=V1PodStatus(phase="Failed" if exit_code else "Succeeded",
                           container_statuses=[status]),
    )  # fmt: skip


def derived(
    pod_report: PodReport, *, failed: bool, manifest: dict[str, Any] | None = None
) -> StageState:
    """The export stage's state as the operator derives it for a finished Job."""
    job_status = (
        V1JobStatus(failed=1, conditions=[V1JobCondition(type="Failed", status="True")])
        if failed
        else V1JobStatus(succeeded=1)
    )
    job = V1Job(metadata=V1ObjectMeta(name="export-abc", creation_timestamp=NOW), status=job_status)
    stage = StageFacts(
        manifest_uri="s3://b/out/manifest.json",
        index="s3://b/index",
        desired={},
        job=job,
        manifest=manifest,
        report=pod_report,
    )
    return stage_state(stage, "export", Settings(), NOW)


@pytest.fixture
def termination_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "termination-log"
    monkeypatch.setenv(result.ENV_VAR, str(path))
    return path


def test_a_real_failure_reaches_the_resource_word_for_word(
    termination_log: Path, tmp_path: Path
) -> None:
    model = tmp_path / "models" / "nope.tlt"
    code = export_main(["-m", str(model), "-k", SAMPLE_KEY, "-o", str(tmp_path / "x.etlt")])
    assert code == 2
    written = termination_log.read_bytes()

    parsed = report([pod(written, code)])
    assert parsed.exit_code == 2 and parsed.start_failure is None
    assert parsed.result == {
        "stage": "export",
        "ok": False,
        "reason": "NotFound",
        "message": f"model {model} does not exist",
    }
    state = derived(parsed, failed=True)
    assert (state.phase, state.reason) == ("Failed", "NotFound")
    assert state.message == f"export: model {model} does not exist"


def test_a_long_failure_message_is_cut_to_1000_characters_and_stays_json(
    termination_log: Path, tmp_path: Path
) -> None:
    # A path of 3,000 characters: the message would be longer than the limit.
    model = tmp_path / "/".join(["d" * 99] * 30) / "m.tlt"
    code = export_main(["-m", str(model), "-k", SAMPLE_KEY, "-o", str(tmp_path / "x.etlt")])
    assert code == 2
    written = termination_log.read_bytes()
    assert len(written) <= KUBELET_MAX_BYTES

    full = f"model {model} does not exist"
    state = derived(report([pod(written, code)]), failed=True)
    assert (state.phase, state.reason) == ("Failed", "NotFound")
    assert state.message == f"export: {full[:1000]}"


def test_a_success_report_longer_than_4096_bytes_is_cut_to_valid_json(
    termination_log: Path,
) -> None:
    # 40 engines' worth of artifacts: about 7,000 bytes of JSON in full.
    artifacts = [
        {
            "kind": "engine",
            "path": f"s3://bucket/exports/bpnet/targets/pool-{i:02d}/bpnet_model.int8.engine",
            "sha256": f"{i:064x}",
            "bytes": 1_000_000 + i,
        }
        for i in range(40)
    ]
    full = json.dumps({"stage": "build", "ok": True, "artifacts": artifacts})
    assert len(full.encode()) > KUBELET_MAX_BYTES
    result.report_success("build", {"artifacts": artifacts})
    written = termination_log.read_bytes()
    assert len(written) <= KUBELET_MAX_BYTES

    parsed = report([pod(written, 0)])
    # The artifacts are dropped, not cut mid-way: the operator still parses a result
    # (and takes the artifacts from the manifest in S3, which the report never replaces).
    assert parsed.result == {"stage": "build", "ok": True, "truncated": True}
    state = derived(parsed, failed=False, manifest={"artifacts": artifacts})
    assert (state.phase, state.reason, state.message) == ("Ready", "Complete", "export complete")


def test_a_real_success_report_lists_the_manifests_artifacts(
    termination_log: Path, sample_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out" / "bpnet.etlt"
    code = export_main(
        ["-m", str(sample_dir / "bpnet_sample.tlt"), "-k", SAMPLE_KEY, "-d", "224,320,3",
         "-o", str(out)]
    )  # fmt: skip
    assert code == 0
    written = termination_log.read_bytes()
    manifest = json.loads((out.parent / "manifest.json").read_text())

    parsed = report([pod(written, code)])
    assert parsed.result == {
        "stage": "export",
        "ok": True,
        "artifacts": [
            {k: a[k] for k in ("kind", "path", "sha256", "bytes")} for a in manifest["artifacts"]
        ],
    }
    state = derived(parsed, failed=False, manifest=manifest)
    assert (state.phase, state.reason) == ("Ready", "Complete")


def test_a_failure_report_longer_than_4096_bytes_keeps_its_reason(
    termination_log: Path, tmp_path: Path
) -> None:
    # A model path with 903 Japanese characters (モデル/データ...): 5,418 bytes once escaped.
    model = tmp_path / "モデル" / ("データ" * 300 + ".tlt")
    code = export_main(["-m", str(model), "-k", SAMPLE_KEY, "-o", str(tmp_path / "x.etlt")])
    assert code == 2
    written = termination_log.read_bytes()
    assert len(written) <= KUBELET_MAX_BYTES

    state = derived(report([pod(written, code)]), failed=True)
    assert (state.phase, state.reason) == ("Failed", "NotFound")
    assert state.message.startswith(f"export: model {tmp_path}/モデル/データ")
