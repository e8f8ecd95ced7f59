"""A Job's pod gets only the S3 keys it needs, by name; and no credential a pod prints
reaches the status or an event.

The pods' environment: each key of the credentials Secret the exporter reads, as its own
`secretKeyRef` (never `envFrom` of the whole Secret). The operator's words: a container
that fails without its JSON result leaves the tail of its log as its termination message
(`FallbackToLogsOnError`), which the operator copies into the status and an event; it
redacts every credential value it knows of, and what reads as one, before it keeps it.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from kubernetes.client import (
    V1ContainerState,
    V1ContainerStateTerminated,
    V1JobCondition,
    V1JobStatus,
)

from bodypose_operator.api.v1alpha1 import BodyPoseExportSpec
from bodypose_operator.builders.jobs import build_export_job, build_target_job
from bodypose_operator.controller import pods
from bodypose_operator.controller.credentials import ResourceStores
from bodypose_operator.controller.reconcile import reconcile
from bodypose_operator.controller.redact import REDACTED, redact
from bodypose_operator.settings import Settings
from tests.conftest import S3Endpoint
from tests.support.operator_fakes import RecordedCluster, body, pod, resource, spec_dict

NAMED = {
    "AWS_ACCESS_KEY_ID": False,
    "AWS_SECRET_ACCESS_KEY": False,
    "AWS_SESSION_TOKEN": True,
    "AWS_ENDPOINT_URL": True,
    "AWS_ENDPOINT_URL_S3": True,
    "AWS_REGION": True,
    "AWS_DEFAULT_REGION": True,
}


def s3_refs(container: dict[str, Any]) -> dict[str, tuple[str, str, bool]]:
    """name -> (Secret, key, optional) of the container's variables from the S3 Secret."""
    return {
        e["name"]: (ref["name"], ref["key"], ref["optional"])
        for e in container.get("env", [])
        if (ref := e.get("valueFrom", {}).get("secretKeyRef")) and ref["name"] == "s3"
    }


def test_export_and_build_pods_get_each_s3_key_by_name_never_the_whole_secret() -> None:
    raw = resource(spec_dict(targets=[{"name": "a100"}, {"name": "cpu", "backend": "onnxruntime"}]))
    spec = BodyPoseExportSpec.model_validate(raw["spec"])
    settings = Settings()
    export = build_export_job(raw, spec, "k" * 16, settings)["spec"]["template"]["spec"]
    builds = [
        build_target_job(raw, spec, t, "k" * 16, settings, "i" * 16)["spec"]["template"]["spec"]
        for t in spec.targets
    ]
    for pod_spec in (export, *builds):
        (container,) = pod_spec["containers"]
        assert "envFrom" not in container
        assert s3_refs(container) == {k: ("s3", k, optional) for k, optional in NAMED.items()}
    # The export pod's one other Secret: the model key, by name too.
    key_refs = [
        e for e in export["containers"][0]["env"]
        if e.get("valueFrom", {}).get("secretKeyRef", {}).get("name") == "bpnet-key"
    ]  # fmt: skip
    assert key_refs == [{"name": "BODYPOSE_MODEL_KEY", "valueFrom": {
        "secretKeyRef": {"name": "bpnet-key", "key": "key"}}}]  # fmt: skip


def test_a_resource_naming_no_secret_gives_its_pods_no_s3_keys() -> None:
    raw = resource(spec_dict(output={"uri": "s3://artifacts/bpnet"}))
    spec = BodyPoseExportSpec.model_validate(raw["spec"])
    (container,) = build_export_job(raw, spec, "k" * 16, Settings())["spec"]["template"]["spec"][
        "containers"
    ]
    assert not [e for e in container["env"] if e["name"].startswith("AWS_")]
    assert "envFrom" not in container


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("BODYPOSE_MODEL_KEY=nvidia_tlt python ...", "BODYPOSE_MODEL_KEY=[redacted] python ..."),
        ('{"aws_secret_access_key": "wJalrXUtnFEMI"}', '{"aws_secret_access_key": "[redacted]"}'),
        ("AWS_SESSION_TOKEN: IQoJb3JpZ2luX2Vj", "AWS_SESSION_TOKEN: [redacted]"),
        ("password=hunter22 host=db", "password=[redacted] host=db"),
        ("signed with AKIAIOSFODNN7EXAMPLE/2026", "signed with [redacted]/2026"),
        # Prose keeps its words.
        ("argument -k/--key: expected one argument", "argument -k/--key: expected one argument"),
        ("KeyError: 'input_1'", "KeyError: 'input_1'"),
        (
            "wrong key for /scratch/m.tlt: decrypting it",
            "wrong key for /scratch/m.tlt: decrypting it",
        ),
    ],
)
def test_what_reads_as_a_credential_is_redacted_whatever_its_value(
    text: str, expected: str
) -> None:
    assert redact(text) == expected


def test_known_values_are_redacted_wherever_they_stand() -> None:
    secret = "Zk3+q/x9SECRETvalue"
    assert redact(f"upload failed ({secret}) at 3", {secret}) == f"upload failed ({REDACTED}) at 3"
    # Too short a value would blank ordinary words; real keys are longer.
    assert redact("a b c", {"a"}) == "a b c"


def _crashed(message: str) -> Any:
    """A failed pod whose container left `message` (a log tail) as its termination message."""
    found = pod(V1ContainerState(terminated=V1ContainerStateTerminated(
        exit_code=1, reason="Error", message=message)))  # fmt: skip
    found.status.phase = "Failed"
    return found


def test_a_log_tail_with_the_secret_key_reaches_the_report_redacted() -> None:
    secret, key_id = "xY7+secret/ACCESS/key0", "minio-admin-id"
    tail = f"Traceback (most recent call last):\nRuntimeError: upload refused: {key_id} {secret}\n"
    found = pods.report([_crashed(tail)], {secret, key_id})
    assert found.result is not None and found.last_failure is not None
    text = json.dumps(found.result) + found.last_failure[1]
    assert secret not in text and key_id not in text
    assert f"RuntimeError: upload refused: {REDACTED} {REDACTED}" in found.result["message"]


def test_a_crashed_export_says_why_in_status_and_events_without_the_credentials(
    bucket: str, s3_endpoint: S3Endpoint
) -> None:
    """The export pod's log tail (FallbackToLogsOnError) holds the S3 access key id and secret
    key the resource's Secret gives it: the status and the events say it crashed, not them."""
    key_id, secret = os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]
    cluster, settings = RecordedCluster(), Settings(pending_check_seconds=0)
    stores = ResourceStores(cluster, settings)
    first = reconcile(body(bucket), cluster, settings, stores)  # type: ignore[arg-type]
    assert first.status["phase"] == "Exporting"
    (job,) = cluster.jobs.values()
    job.status = V1JobStatus(failed=1, conditions=[V1JobCondition(type="Failed", status="True")])
    tail = (
        "2026-12-05 INFO botocore: upload s3://out/x with env "
        f"{{'AWS_ACCESS_KEY_ID': '{key_id}', 'AWS_SECRET_ACCESS_KEY': '{secret}'}}\n"
        f"RuntimeError: signature mismatch for {key_id}:{secret}\n"
    )
    cluster.pods[job.metadata.name] = [_crashed(tail)]
    again = reconcile(body(bucket), cluster, settings, stores)  # type: ignore[arg-type]
    told = json.dumps(again.status) + json.dumps([(e.reason, e.message) for e in again.events])
    assert "signature mismatch" in told, told  # the crash is reported...
    assert secret not in told and key_id not in told, told  # ...without the credentials
    assert REDACTED in told


def test_a_results_records_are_kept_exactly_its_words_redacted() -> None:
    """A short credential that happens to be part of a digest or a path must not corrupt
    the artifacts the status records: only the result's texts are redacted."""
    digest = "ab" * 32
    result = {
        "stage": "build", "ok": False, "reason": "GateFailed",
        "message": "cosine 0.91 < 0.99 (key id abab)",
        "artifacts": [{"kind": "engine", "path": "s3://b/abab/e", "sha256": digest, "bytes": 5}],
    }  # fmt: skip
    message = json.dumps(result)
    found = pods.report([_crashed(message)], {"abab"})
    assert found.result is not None
    assert found.result["artifacts"] == result["artifacts"]
    assert found.result["message"] == f"cosine 0.91 < 0.99 (key id {REDACTED})"
