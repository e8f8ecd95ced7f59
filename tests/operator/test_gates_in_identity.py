"""The gates an engine must pass are part of what reuse compares (issue 26, item 1).

`builders/naming.content_key` holds `spec.verification` (when a gate is set) and
`spec.evaluation` (its maxApDrop too): an engine published under the default gates is
not reused by a resource that asks for stricter ones, and gates tightened after Ready
build again. The first test pins the keys of resources that set no gate; the others run
the operator's service against the real API server (tests/operator/conftest.py,
`served`) and MinIO, with each stage completed by writing its manifest as its Job would.
"""

from __future__ import annotations

from typing import Any

from bodypose_operator.api.v1alpha1 import BodyPoseExportSpec
from bodypose_operator.builders.naming import LABEL_CONTENT_KEY, LABEL_STAGE, content_key
from tests.conftest import S3Endpoint
from tests.support.operator_api import Served
from tests.support.operator_fakes import (
    body,
    put_artifact,
    put_manifest,
    put_target_manifest,
    spec_dict,
)

DIGEST = "etag:x:size:1"
EVALUATION = {"annotationsUri": "s3://data/a.json", "imagesUri": "s3://data/val/"}


def key_of(**overrides: Any) -> str:
    return content_key(DIGEST, BodyPoseExportSpec.model_validate(spec_dict(**overrides)))


def test_a_resource_without_gates_keeps_its_key_and_every_gate_changes_it() -> None:
    # The keys issue22 computed, before the gates entered the key: a resource that sets no
    # gate keeps its artifacts and Jobs' names across the upgrade.
    assert key_of() == "044d732f3149b11e"
    assert key_of(verification={}) == "044d732f3149b11e"
    assert key_of(evaluation=EVALUATION) == "cea0a836a598d93c"
    keys = {
        key_of(),
        key_of(verification={"minCosine": 0.999}),
        key_of(verification={"minCosine": 0.9999}),
        key_of(verification={"maxAbsDiff": 0.05}),
        key_of(verification={"minPeakAgreement": 0.99}),
        key_of(evaluation=EVALUATION),
        key_of(evaluation={**EVALUATION, "maxApDrop": 0.2}),
    }
    assert len(keys) == 7


def _export_done(s3: S3Endpoint, prefix: str) -> None:
    put_manifest(s3, f"{prefix}/manifest.json", {"artifacts": [
        put_artifact(s3, "etlt", f"{prefix}/bpnet_model.etlt", b"etlt!"),
    ]})  # fmt: skip


def _targets_done(s3: S3Endpoint, prefix: str, cosine: float, min_cosine: float) -> None:
    """Both targets built, verified with these figures against these gates."""
    for target in ("a100", "cpu"):
        put_target_manifest(s3, prefix, body("any"), target, {
            "artifacts": [put_artifact(s3, "engine", f"{prefix}/targets/{target}/e", b"engine")],
            "verification": {"figures": {"cosine": cosine}, "passed": True,
                             "gates": {"cosine": min_cosine}},
        })  # fmt: skip


def _ready(served: Served, s3: S3Endpoint, bucket: str, name: str) -> str:
    """The resource `name` (a100 and cpu targets, default gates) taken to Ready; its key."""
    resource = body(bucket)
    resource["metadata"]["name"] = name
    served.apply(resource)
    key = served.reconcile(name)["contentKey"]
    prefix = f"s3://{bucket}/out/{served.namespace}/{name}/{key}"
    _export_done(s3, prefix)
    assert served.reconcile(name)["phase"] == "Building"
    _targets_done(s3, prefix, cosine=0.9995, min_cosine=0.999)
    assert served.reconcile(name)["phase"] == "Ready"
    return str(key)


def test_stricter_gates_do_not_reuse_an_engine_published_under_the_defaults(
    served: Served, bucket: str, s3_endpoint: S3Endpoint
) -> None:
    first = _ready(served, s3_endpoint, bucket, "loose")

    # The same content and gates: everything reused, no Job (the index is there).
    same = body(bucket)
    same["metadata"]["name"] = "same"
    served.apply(same)
    assert served.reconcile("same")["phase"] == "Ready"
    assert served.jobs("same") == []

    strict = body(bucket, verification={"minCosine": 0.999})
    strict["metadata"]["name"] = "strict"
    served.apply(strict)
    before = len(served.events.posted)
    status = served.reconcile("strict")
    assert status["contentKey"] != first
    assert status["phase"] == "Exporting"
    assert "Reused" not in served.events.reasons()[before:]
    (export,) = served.jobs("strict")
    assert export.metadata.labels[LABEL_STAGE] == "export"
    assert export.metadata.labels[LABEL_CONTENT_KEY] == status["contentKey"]


def test_gates_tightened_after_ready_build_again_judged_by_them(
    served: Served, bucket: str, s3_endpoint: S3Endpoint
) -> None:
    old = _ready(served, s3_endpoint, bucket, "demo")
    served.patch_spec("demo", {"verification": {"minCosine": 0.9999}})

    status = served.reconcile("demo")
    key = status["contentKey"]
    assert key != old and status["phase"] == "Exporting"
    current = [j for j in served.jobs("demo") if j.metadata.labels[LABEL_CONTENT_KEY] == key]
    assert [j.metadata.labels[LABEL_STAGE] for j in current] == ["export"]
    prefix = f"s3://{bucket}/out/{served.namespace}/demo/{key}"
    _export_done(s3_endpoint, prefix)

    assert served.reconcile("demo")["phase"] == "Building"
    builds = [j for j in served.jobs("demo")
              if j.metadata.labels[LABEL_CONTENT_KEY] == key
              and j.metadata.labels[LABEL_STAGE] == "build"]  # fmt: skip
    assert len(builds) == 2
    for job in builds:
        args = job.spec.template.spec.containers[0].args
        assert args[args.index("--min_cosine") + 1] == "0.9999"
        assert all(a.startswith(prefix) for a in args if a.startswith("s3://") and "/targets/" in a)
