"""The builds: a plan per image (its ref, build arguments and archive by content key),
`buildah bud` with retries of known transient failures, the archive saved and pruned."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from devcluster.images.archives import BuiltImage, describe, save
from devcluster.images.base import base_image
from devcluster.images.buildah import image_id, storage
from devcluster.images.cache import content_key, locked, prune_archives
from devcluster.images.commands import ImageBuildError, clean_env, human, say
from devcluster.images.sources import configured_index_url
from devcluster.images.specs import (
    BASE_TAG,
    DEFAULT_NAMES,
    IMAGES,
    REPO_ROOT,
    SOURCE_URL,
    ImageSpec,
    created,
    revision,
    version,
)


@dataclass(frozen=True)
class Plan:
    spec: ImageSpec
    ref: str
    local_tag: str
    build_args: dict[str, str]
    archive: Path


def make_plan(
    spec: ImageSpec, base: BuiltImage, base_id: str, tag: str | None, index_url: str | None
) -> Plan:
    ref = f"{spec.repository}:{tag or version()}"
    build_args = {
        "BASE_IMAGE": BASE_TAG,
        "VERSION": version(),
        "REVISION": revision(),
        "CREATED": created(),
        "SOURCE": SOURCE_URL,
        # None: not passed, so pip in the build uses its own default index.
        **({"PIP_INDEX_URL": index_url} if index_url else {}),
    }
    key = content_key(spec, base_id, {**build_args, "ref": ref})
    archive = base.archive.parent / f"{spec.name}-{key}.tar"
    return Plan(spec, ref, f"localhost/{ref}", build_args, archive)


_STEP = re.compile(r"^STEP \d+/\d+: (.*)$")

#: Failures of buildah's chroot runner itself, not of the Dockerfile: the same build
#: run again with nothing changed succeeds. Seen on this project's build machines:
#: the runner cannot seal the memfd copy of itself it re-executes inside the chroot
#: ("Close_Fd sealing memfd copy: Device or resource busy"); buildah's run code in
#: containers/buildah `run_common.go` / `chroot/run_common.go` makes that copy.
TRANSIENT_FAILURES = (re.compile(r"sealing memfd copy: device or resource busy", re.I),)
#: How often a build that failed transiently is run again (its layer cache resumes it).
TRANSIENT_RETRIES = 2


def _transient(lines: Sequence[str]) -> str | None:
    """The line that makes a failed build a known transient one, if any."""
    return next((ln for ln in lines if any(p.search(ln) for p in TRANSIENT_FAILURES)), None)


def build(plan: Plan, no_cache: bool, progress: IO[str] | None) -> None:
    """`buildah bud`, run again (at most TRANSIENT_RETRIES times) after a transient failure."""
    for attempt in range(TRANSIENT_RETRIES + 1):
        failure = _bud(plan, no_cache and attempt == 0, progress)
        if failure is None:
            return
        step, tail, log_path = failure
        cause = _transient(tail)
        if cause is None or attempt == TRANSIENT_RETRIES:
            retried = f" (after {attempt} retries of a transient failure)" if attempt else ""
            raise ImageBuildError(
                f"make images: {plan.spec.name} failed at step {step}{retried}\n"
                + "\n".join(tail)
                + f"\n(full output: {log_path})"
            )
        say(
            progress,
            f"{plan.spec.name}: buildah failed at step {step} with a known transient error "
            f"({cause.strip()[:120]}); retrying ({attempt + 1} of {TRANSIENT_RETRIES}), "
            "the layer cache resumes at that step",
        )


def _bud(
    plan: Plan, no_cache: bool, progress: IO[str] | None
) -> tuple[str, list[str], Path] | None:
    """One `buildah bud`: None when it built, else (failed step, output tail, full log)."""
    cmd = [
        "buildah",
        *storage().args(),
        "bud",
        "--isolation",
        "chroot",
        "--layers",
        "--force-rm",
        "-f",
        str(REPO_ROOT / plan.spec.dockerfile),
        "-t",
        plan.local_tag,
    ]
    if no_cache:
        cmd.append("--no-cache")
    cert = os.environ.get("PIP_CERT") or "/etc/ssl/certs/ca-certificates.crt"
    if Path(cert).is_file():
        cmd += ["--secret", f"id=pip-cert,src={cert}"]
    for name, value in plan.build_args.items():
        cmd += ["--build-arg", f"{name}={value}"]
    cmd.append(str(REPO_ROOT))

    log_path = plan.archive.parent / f"{plan.spec.name}-build.log"
    tail: deque[str] = deque(maxlen=20)
    step = "(before the first step)"
    with log_path.open("w") as log:
        log.write("$ " + shlex.join(cmd) + "\n")
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            env=clean_env(),
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            text = line.rstrip("\n")
            tail.append(text)
            match = _STEP.match(text)
            if match:
                step = " ".join(match.group(1).split())
                say(progress, f"  {plan.spec.name}: {text[:150]}")
        code = proc.wait()
    return None if code == 0 else (step, list(tail), log_path)


def ensure_images(
    names: Sequence[str] = DEFAULT_NAMES, progress: IO[str] | None = None
) -> list[BuiltImage]:
    """Builds what is missing (cached by content key) and returns all, in order."""
    return build_images(names, progress=progress)


def build_images(
    names: Sequence[str] = DEFAULT_NAMES,
    *,
    no_cache: bool = False,
    index_url: str | None = None,
    tag: str | None = None,
    progress: IO[str] | None = None,
) -> list[BuiltImage]:
    """ensure_images with the CLI's options: --no-cache, --index-url and --tag."""
    for name in names:
        if name not in IMAGES:
            raise ImageBuildError(f"make images: no image named {name!r} ({', '.join(IMAGES)})")
        if not IMAGES[name].built_here:
            raise ImageBuildError(f"make images: {name} is {IMAGES[name].note}")
    base = base_image(progress)
    base_id = image_id(BASE_TAG)
    if base_id is None:
        raise ImageBuildError(f"make images: {BASE_TAG} is missing from buildah's storage")
    index_url = index_url or configured_index_url()
    results: list[BuiltImage] = []
    with locked(base.archive.parent):
        for name in names:
            plan = make_plan(IMAGES[name], base, base_id, tag, index_url)
            if plan.archive.exists() and not no_cache:
                image = describe(name, plan.ref, plan.archive)
                _report(progress, image, "cached", None)
                results.append(image)
                continue
            started = time.monotonic()
            say(progress, f"{name}: building {plan.ref} ({plan.spec.dockerfile})")
            build(plan, no_cache, progress)
            replan = make_plan(IMAGES[name], base, base_id, tag, index_url)
            if replan.archive != plan.archive:
                # A file the Dockerfile copies changed while it built: build again (the
                # unchanged layers come from the cache) so the key names what is inside.
                say(progress, f"{name}: its sources changed during the build; again")
                plan = replan
                build(plan, no_cache, progress)
            image = save(name, plan.local_tag, plan.ref, plan.archive)
            _report(progress, image, "built", time.monotonic() - started)
            results.append(image)
            prune_archives(name, keep=plan.archive)
    return results


def _report(progress: IO[str] | None, image: BuiltImage, how: str, seconds: float | None) -> None:
    took = f" in {seconds:.0f}s" if seconds is not None else ""
    say(
        progress,
        f"{image.name}: {image.ref} {image.digest} {human(image.size_bytes)} uncompressed, "
        f"archive {human(image.archive.stat().st_size)} ({how}{took}) -> {image.archive}",
    )
