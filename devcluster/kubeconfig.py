"""Self-contained kubeconfigs for the local cluster (credentials embedded: copy them anywhere)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path

import yaml

CLUSTER_NAME = "bodypose-local"


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def write_kubeconfig(path: Path, server: str, ca: Path, user: str, auth: dict[str, str]) -> Path:
    """A kubeconfig for `user` (authenticated by `auth`) at `server`, trusting `ca`."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": CLUSTER_NAME,
                "cluster": {"server": server, "certificate-authority-data": _b64(ca)},
            }
        ],
        "users": [{"name": user, "user": auth}],
        "contexts": [
            {"name": user, "context": {"cluster": CLUSTER_NAME, "user": user}},
        ],
        "current-context": user,
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def cert_auth(pki: Mapping[str, Path], stem: str) -> dict[str, str]:
    """The user entry of a client certificate `<stem>.crt` and its key (devcluster/pki.py)."""
    return {
        "client-certificate-data": _b64(pki[f"{stem}.crt"]),
        "client-key-data": _b64(pki[f"{stem}.key"]),
    }
