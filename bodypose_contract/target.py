"""A target's identity and where its artifact lives.

The operator computes a target's identity (`bodypose_operator/builders/naming.py`:
a hash of everything that changes its artifact), passes it to the build
(`bpnet build --target_identity`), which records it in the artifact's manifest
(`manifest.Key.TARGET_IDENTITY`); a target is Ready only on an artifact recorded
under its identity now.
"""

from __future__ import annotations

from bodypose_contract.artifacts import TARGETS_DIR

#: Hex digits of a target identity (a sha256 prefix).
IDENTITY_LENGTH = 16
#: The build's argument that carries it.
IDENTITY_FLAG = "--target_identity"


def target_prefix(prefix: str, target: str, identity: str) -> str:
    """`<prefix>/targets/<target>/<identity>`: where one target's artifact set lives."""
    return f"{prefix}/{TARGETS_DIR}/{target}/{identity}"
