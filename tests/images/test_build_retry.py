"""`make images` runs a build again after one of buildah's known transient failures, only those.

The buildah here is a stand-in script on PATH that fails the way buildah's
chroot runner failed on a fresh machine (the output of that run, shortened)
a given number of times, then builds. A real Dockerfile error, failing at
once with no retry, is `test_build.py::test_failed_build_names_the_step_without_a_traceback`,
against the real buildah.
"""

from __future__ import annotations

import io
import stat
from pathlib import Path

import pytest

from devcluster.images import ImageBuildError, buildah, builds, specs

SEEN = """STEP 10/18: RUN --mount=type=secret,id=pip-cert images/install-python-env.sh project
Close_Fd sealing memfd copy: Device or resource busy
error building at STEP "RUN ...": error while running runtime: exit status 1
subprocess exited with status 1"""
DOCKERFILE_ERROR = """STEP 3/9: RUN false
error building at STEP "RUN false": error while running runtime: exit status 1"""


def _fake_buildah(bin_dir: Path, fail_times: int, output: str) -> Path:
    calls = bin_dir / "calls"
    script = bin_dir / "buildah"
    script.write_text(
        "#!/bin/sh\n"
        f'n=$(cat "{calls}" 2>/dev/null || echo 0); n=$((n + 1)); echo $n > "{calls}"\n'
        f'if [ "$n" -le {fail_times} ]; then cat <<"EOF"\n{output}\nEOF\nexit 1; fi\n'
        'echo "STEP 1/1: FROM base"\nexit 0\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return calls


@pytest.fixture
def plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> builds.Plan:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setattr(buildah, "_storage", buildah.Storage("vfs", str(tmp_path / "storage")))
    archive = tmp_path / "cache" / "exporter-0123.tar"
    archive.parent.mkdir()
    return builds.Plan(specs.IMAGES["exporter"], "r:1", "localhost/r:1", {}, archive)


def test_a_transient_runner_failure_is_retried_and_said(plan: builds.Plan, tmp_path: Path) -> None:
    calls = _fake_buildah(tmp_path / "bin", fail_times=1, output=SEEN)
    progress = io.StringIO()
    builds.build(plan, no_cache=False, progress=progress)
    assert calls.read_text().strip() == "2"
    said = progress.getvalue()
    assert (
        "exporter: buildah failed at step RUN --mount=type=secret,id=pip-cert "
        "images/install-python-env.sh project with a known transient error (Close_Fd sealing "
        "memfd copy: Device or resource busy); retrying (1 of 2)"
    ) in said, said


def test_a_transient_failure_that_persists_fails_after_two_retries(
    plan: builds.Plan, tmp_path: Path
) -> None:
    calls = _fake_buildah(tmp_path / "bin", fail_times=9, output=SEEN)
    with pytest.raises(ImageBuildError) as caught:
        builds.build(plan, no_cache=False, progress=io.StringIO())
    assert calls.read_text().strip() == "3"
    message = str(caught.value)
    assert message.startswith(
        "make images: exporter failed at step RUN --mount=type=secret,id=pip-cert "
        "images/install-python-env.sh project (after 2 retries of a transient failure)"
    ), message
    assert "Close_Fd sealing memfd copy" in message


def test_a_dockerfile_error_fails_at_once(plan: builds.Plan, tmp_path: Path) -> None:
    calls = _fake_buildah(tmp_path / "bin", fail_times=9, output=DOCKERFILE_ERROR)
    progress = io.StringIO()
    with pytest.raises(ImageBuildError) as caught:
        builds.build(plan, no_cache=False, progress=progress)
    assert calls.read_text().strip() == "1"
    assert str(caught.value).startswith("make images: exporter failed at step RUN false\n")
    assert "retrying" not in progress.getvalue()
