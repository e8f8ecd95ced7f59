"""How a config file names a file beside it: relative when both live in one tree, else as given.

DeepStream resolves the paths in an nvinfer config relative to the config
file's directory, so a repository copied or synced as a whole (an S3 prefix
to a node's disk) keeps working; a path into another bucket or volume stays
as it was given.
"""

from __future__ import annotations

import os
import posixpath

S3 = "s3://"


def _split(uri: str) -> tuple[str, str]:
    """(tree, path in it): the bucket for s3://, "" for a local path."""
    if uri.startswith(S3):
        bucket, _, key = uri[len(S3) :].partition("/")
        return f"{S3}{bucket}", "/" + key
    return "", os.path.abspath(os.path.expanduser(uri))


def relative(target: str, from_dir: str) -> str:
    """`target` as seen from the directory `from_dir` (both paths or s3:// URIs)."""
    tree_t, path_t = _split(target)
    tree_d, path_d = _split(from_dir)
    if tree_t != tree_d:
        return target
    return posixpath.relpath(path_t, path_d or "/")


def parent(uri: str) -> str:
    return uri.rpartition("/")[0] if "/" in uri else "."
