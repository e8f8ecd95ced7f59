"""`python -m devcluster.images build|list` (`make images`)."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Sequence
from typing import IO

from devcluster import images as package
from devcluster.images.archives import BuiltImage, describe
from devcluster.images.base import base_key
from devcluster.images.buildah import image_id
from devcluster.images.builds import build_images, make_plan
from devcluster.images.cache import cache_dir
from devcluster.images.commands import ImageBuildError, human, say
from devcluster.images.sources import configured_index_url
from devcluster.images.specs import BASE_REF, BASE_TAG, DEFAULT_NAMES, IMAGES, version


def _list(out: IO[str]) -> None:
    base_id = image_id(BASE_TAG) if shutil.which("buildah") else None
    directory = cache_dir()
    base_archive = directory / f"base-{base_key()}.tar"
    state = "cached" if base_archive.exists() and base_id else "not built"
    say(out, f"base: {BASE_REF} ({BASE_TAG}) {state}")
    base = BuiltImage("base", BASE_REF, base_archive, "", 0)
    index_url = configured_index_url()
    for spec in IMAGES.values():
        ref = f"{spec.repository}:{version()}"
        if not spec.built_here:
            say(out, f"{spec.name}: {ref} {spec.note}")
            continue
        if base_id is None:
            say(out, f"{spec.name}: {ref} not built (no base yet)")
            continue
        plan = make_plan(spec, base, base_id, None, index_url)
        if plan.archive.exists():
            image = describe(spec.name, ref, plan.archive)
            say(out, f"{spec.name}: {ref} {image.digest} {human(image.size_bytes)} cached")
        else:
            say(out, f"{spec.name}: {ref} not built for the current sources ({spec.dockerfile})")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devcluster.images", description=package.__doc__
    )
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build what is missing, print every image")
    build.add_argument("--only", action="append", choices=DEFAULT_NAMES, metavar="NAME")
    build.add_argument("--no-cache", action="store_true", help="rebuild every layer")
    build.add_argument(
        "--index-url",
        help="the package index for pip (default: the one this machine's pip is configured "
        "with, else pip's own)",
    )
    build.add_argument("--tag", help="tag instead of the version (throwaway builds)")
    sub.add_parser("list", help="the images, their refs and whether they are built")
    args = parser.parse_args(argv)
    out = sys.stdout
    try:
        if args.command == "list":
            _list(out)
            return 0
        started = time.monotonic()
        names = tuple(args.only or DEFAULT_NAMES)
        build_images(
            names,
            no_cache=args.no_cache,
            index_url=args.index_url,
            tag=args.tag,
            progress=out,
        )
        say(out, f"make images: done in {time.monotonic() - started:.1f}s")
        say(out, f"exporter-gpu: {IMAGES['exporter-gpu'].note}")
        return 0
    except ImageBuildError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("make images: interrupted", file=sys.stderr)
        return 130
