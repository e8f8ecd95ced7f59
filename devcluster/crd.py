"""Install the generated CRD into a test cluster and wait until it is served."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml

CRD_FILE = Path(__file__).resolve().parents[1] / "crds" / "bodyposeexports.bodypose.dev.yaml"


def install_crd(api_client: Any, timeout: float = 30) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    ext = client.ApiextensionsV1Api(api_client)
    manifest = yaml.safe_load(CRD_FILE.read_text())
    try:
        ext.create_custom_resource_definition(manifest)
    except ApiException as exc:
        if exc.status != 409:
            raise
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        crd: Any = ext.read_custom_resource_definition(manifest["metadata"]["name"])
        if any(c.type == "Established" and c.status == "True" for c in crd.status.conditions or []):
            return
        time.sleep(0.3)
    raise TimeoutError("the BodyPoseExport CRD was not established")
