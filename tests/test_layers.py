"""The layers in .importlinter hold, `lint-imports` catches a broken one, and no private imports.

The contracts themselves run in `make lint`; here a temporary copy of the
packages gets a forbidden import and `lint-imports` must fail naming the
contract (as kopf checks its own contracts), so a contract that silently
stops matching anything cannot pass unnoticed.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
PACKAGES = {
    "bodypose_contract": ROOT / "bodypose_contract",
    "bodypose_exporter": ROOT / "exporter_image" / "bodypose_exporter",
    "bodypose_operator": ROOT / "operator" / "bodypose_operator",
    "devcluster": ROOT / "devcluster",
}


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    # The packages of the tree at `root` (this checkout's, or a test's copy with them at its
    # top), never the venv's editable install of another checkout, whose modules may differ.
    paths = (root / "exporter_image", root / "operator", root)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in paths)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(root / ".importlinter"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    for name, src in PACKAGES.items():
        shutil.copytree(src, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    return tmp_path


def test_the_repository_keeps_its_contracts() -> None:
    done = _lint(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout or "broken" not in done.stdout.split("Contracts:")[-1]


def _add_import(module: Path, line: str) -> None:
    text = module.read_text()
    head, sep, rest = text.partition("from __future__ import annotations\n")
    module.write_text(head + sep + line + "\n" + rest if sep else line + "\n" + text)


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        (
            "bodypose_exporter/calibration/thresholds.py",
            "import bodypose_exporter.stages.build",
            "Exporter layers",
        ),
        (
            "bodypose_exporter/verification/agreement_gates.py",
            "import bodypose_exporter.evaluation.coco",
            "Exporter layers",
        ),
        (
            "bodypose_exporter/stages/build.py",
            "import tensorflow",
            "TensorFlow and tf2onnx are imported only through model.keras_backend",
        ),
        (
            "bodypose_operator/api/spec.py",
            "import bodypose_operator.builders.naming",
            "Operator layers",
        ),
        (
            "bodypose_operator/controller/decide.py",
            "import bodypose_operator.controller.observe",
            "Operator controller layers",
        ),
        (
            "bodypose_operator/api/admission.py",
            "import bodypose_operator.api.status",
            "Operator api layers",
        ),
        (
            "bodypose_operator/__init__.py",
            "import bodypose_exporter.errors",
            "The operator never imports the exporter",
        ),
        ("devcluster/__init__.py", "import bodypose_operator", "The dev cluster imports neither"),
        # The contract both images install stays apart from both halves.
        (
            "bodypose_contract/backends.py",
            "import bodypose_exporter.errors",
            "The contract both images install imports neither half",
        ),
        # Kueue knows the cluster only through its Protocol: the old circle stays dissolved.
        ("devcluster/kueue.py", "import devcluster.controlplane", "Dev cluster layers"),
    ],
)
def test_a_forbidden_import_fails_lint_with_the_contract_name(
    copy: Path, module: str, line: str, contract: str
) -> None:
    _add_import(copy / module, line)
    done = _lint(copy)
    assert done.returncode != 0, done.stdout
    broken = done.stdout.split("Broken contracts")[-1]
    assert contract in " ".join(broken.split()), done.stdout


def _private_imports(path: Path, package: str) -> list[str]:
    """`from X import _name` where X is another module than the importer's own package."""
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if not node.module.startswith(package):
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{path}:{node.lineno} from {node.module} import {alias.name}")
    return found


def test_no_module_imports_another_modules_private_names() -> None:
    offenders = []
    for package in ("bodypose_exporter",):
        for path in PACKAGES[package].rglob("*.py"):
            offenders += _private_imports(path, package)
    for path in (ROOT / "tests").rglob("*.py"):
        offenders += _private_imports(path, "bodypose_exporter")
    assert offenders == []
