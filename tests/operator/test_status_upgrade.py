"""A status the previous operator wrote converges in one pass of this one, on the real API server.

The previous operator wrote a tensorrt-rtx target's own record as top-level fields of
`status.targets[]` (`computeCapabilities`, `tensorrtRtxVersion`); this one writes it in
the target's `backendStatus` map, and its CRD no longer has those fields. An upgrade
replaces the CRD and the operator; a resource Ready before it must, after one pass,
carry the map and none of the old fields, with no rebuild (its artifact is still its
own). The test installs the previous CRD's shape of `targets[]` (this CRD with the two
fields back and the map away), takes a resource to Ready under it with the old status
written as the old operator wrote it, then installs this CRD and makes one pass.

What the API server does with the old fields once the CRD drops them is part of what
the test checks rather than assumes. A structural schema's pruning runs where the
server decodes an object (KEP-2332, https://www.kubernetes.dev/resources/keps/2332/):
on writes, and, as the test finds, on reads of an object stored before the change too.
The pass does not depend on it: the status patch (`controller/act.py`, a JSON merge
patch) replaces `targets` whole, so it leaves no old field even where one were read.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from devcluster.crd import CRD_FILE
from tests.conftest import S3Endpoint
from tests.support.operator_api import Served
from tests.support.operator_fakes import body, put_artifact, put_manifest, put_target_manifest

OLD_FIELDS = ("computeCapabilities", "tensorrtRtxVersion")
RTX_VERSION = "1.7.1.116"
RECORD = {"computeCapabilities": "8.9", "tensorrtRtxVersion": RTX_VERSION}


def _target_properties(crd: dict[str, Any]) -> dict[str, Any]:
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    properties: dict[str, Any] = schema["properties"]["status"]["properties"]["targets"]
    return dict(properties["items"]["properties"])


def _previous_crd() -> dict[str, Any]:
    """This CRD with `targets[]` as the previous operator's: the two fields, no map."""
    crd: dict[str, Any] = yaml.safe_load(CRD_FILE.read_text())
    old = copy.deepcopy(crd)
    schema = old["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    items = schema["properties"]["status"]["properties"]["targets"]["items"]
    del items["properties"]["backendStatus"]
    for name in OLD_FIELDS:
        items["properties"][name] = {"type": "string"}
    return old


def _install(served: Served, crd: dict[str, Any], probe: str) -> None:
    """Replace the CRD with `crd` and wait until the API server serves its schema: a
    status written to the resource `probe` keeps what `crd` has and loses what it has not."""
    from kubernetes import client

    ext: Any = client.ApiextensionsV1Api(served.api.api)
    name = crd["metadata"]["name"]
    current = ext.read_custom_resource_definition(name)
    replaced = {
        **crd,
        "metadata": {**crd["metadata"], "resourceVersion": current.metadata.resource_version},
    }
    ext.replace_custom_resource_definition(name, replaced)
    fields = _target_properties(crd)
    target = {"name": "p", "phase": "Pending", "backendStatus": {"k": "v"},
              **dict.fromkeys(OLD_FIELDS, "x")}  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        served.kube.patch_status(served.namespace, probe, {"targets": [target]})
        kept = set(served.get(probe)["status"]["targets"][0])
        if all((key in kept) == (key in fields) for key in ("backendStatus", *OLD_FIELDS)):
            return
        time.sleep(0.2)
    raise TimeoutError(f"the API server did not serve the CRD's new schema: {kept}")


@pytest.fixture
def previous_crd(served: Served, bucket: str) -> Iterator[str]:
    """The previous CRD installed (this one again afterwards, whatever happens); the name
    of the probe resource that tells which schema is served."""
    probe = body(bucket)
    probe["metadata"]["name"] = "schema-probe"
    served.apply(probe)
    try:
        _install(served, _previous_crd(), "schema-probe")
        yield "schema-probe"
    finally:
        _install(served, yaml.safe_load(CRD_FILE.read_text()), "schema-probe")


def _ready_under_previous_operator(served: Served, s3: S3Endpoint, bucket: str) -> None:
    """A tensorrt-rtx target built and Ready, its status as the previous operator wrote it."""
    resource = body(bucket, precision="fp16", targets=[
        {"name": "l4", "backend": "tensorrt-rtx", "computeCapabilities": ["8.9"]},
    ])  # fmt: skip
    resource["metadata"]["name"] = "upgraded"
    served.apply(resource)
    key = served.reconcile("upgraded")["contentKey"]
    prefix = f"s3://{bucket}/out/{served.namespace}/upgraded/{key}"
    put_manifest(s3, f"{prefix}/manifest.json", {"artifacts": [
        put_artifact(s3, "etlt", f"{prefix}/bpnet_model.etlt", b"etlt!"),
    ]})  # fmt: skip
    assert served.reconcile("upgraded")["phase"] == "Building"
    put_target_manifest(s3, prefix, resource, "l4", {
        "artifacts": [put_artifact(s3, "engine", f"{prefix}/targets/l4/e.engine", b"rtx")],
        "compatibility": RECORD,
        "verification": {"run": False, "notRunReason": "no GPU in this pod"},
    })  # fmt: skip
    status = served.reconcile("upgraded")
    assert status["phase"] == "Ready"
    # This operator's map, under the previous CRD: pruned on write.
    assert "backendStatus" not in status["targets"][0]
    # The status as the previous operator wrote it: the record top-level.
    old_targets = [{**status["targets"][0], **RECORD}]
    served.kube.patch_status(served.namespace, "upgraded", {"targets": old_targets})
    assert {k: served.get("upgraded")["status"]["targets"][0][k] for k in OLD_FIELDS} == RECORD


def test_a_status_the_previous_operator_wrote_carries_the_map_after_one_pass(
    served: Served, bucket: str, s3_endpoint: S3Endpoint, previous_crd: str
) -> None:
    _ready_under_previous_operator(served, s3_endpoint, bucket)
    jobs = {j.metadata.name for j in served.jobs("upgraded")}

    # The upgrade: this CRD served. The API server prunes the dropped fields from what it
    # reads back of the stored object (checked here, not assumed).
    _install(served, yaml.safe_load(CRD_FILE.read_text()), previous_crd)
    stored = served.get("upgraded")["status"]["targets"][0]
    assert not set(OLD_FIELDS) & set(stored), stored

    status = served.reconcile("upgraded")
    l4 = status["targets"][0]
    assert l4["backendStatus"] == RECORD
    assert not set(OLD_FIELDS) & set(l4), l4
    assert status["phase"] == "Ready" and l4["notRun"] == "no GPU in this pod"
    # Nothing rebuilt: the artifact is still the target's own.
    assert {j.metadata.name for j in served.jobs("upgraded")} == jobs
