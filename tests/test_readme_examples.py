"""The README's shell examples for the exporter, run as written, so the documentation cannot drift.

As kopf and Polygraphy run their examples: every command in the README's
`sh` blocks between "## The exporter" and "## The operator" that starts with
`.venv/bin/` is run, in order, in a temporary directory standing for the
repository root (`.venv/bin` links to this interpreter's bin directory).
Commands that need what a test machine lacks are skipped and counted: an
`s3://` location or `$KEY` (a user's bucket and key), or a COCO dataset.
The runnable ones use a small resolution and few batches, so this stays
about a minute or two.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SKIP = ("s3://", "$KEY", "person_keypoints", '"$KEY"')


def exporter_examples() -> tuple[list[str], list[str]]:
    """(commands to run, commands skipped) from the exporter sections, in order."""
    text = README.read_text()
    section = text[text.index("## The exporter") : text.index("## The operator")]
    commands: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", section, flags=re.S):
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith(".venv/bin/"):
                commands.append(" ".join(line.split()))
    run = [c for c in commands if not any(s in c for s in SKIP)]
    skipped = [c for c in commands if any(s in c for s in SKIP)]
    return run, skipped


def test_the_examples_are_found() -> None:
    run, skipped = exporter_examples()
    names = {shlex.split(c)[0].rpartition("/")[2] for c in run}
    assert {"bpnet-sample", "bpnet-export", "bpnet-build", "bpnet"} <= names
    assert any("--data_type int8" in c for c in run)
    assert len(skipped) <= 4, skipped


@pytest.mark.slow
def test_readme_exporter_examples_run(tmp_path: Path) -> None:
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "bin").symlink_to(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if k != "BODYPOSE_TERMINATION_LOG"}
    run, _ = exporter_examples()
    for command in run:
        done = subprocess.run(
            shlex.split(command), cwd=tmp_path, env=env, capture_output=True, text=True,
            timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    assert (tmp_path / "sample" / "bpnet_sample.etlt").exists()
    assert (tmp_path / "sample" / "int8" / "cal.bin").exists()
    assert (tmp_path / "sample" / "cpu" / "bpnet_model.224.320.fp32.onnx").exists()
