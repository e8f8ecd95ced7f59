"""No function over 60 lines where issue 31 asked for small steps: the build stages, the
controller, the engines and the dev cluster.

A long function there was each time several jobs in one (the build stage's run_build,
LocalCluster._start): the limit keeps the next one from growing back unseen.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = (
    "exporter_image/bodypose_exporter/stages",
    "exporter_image/bodypose_exporter/engines",
    "operator/bodypose_operator/controller",
    "devcluster",
)
LIMIT = 60


def longer_than(limit: int, folder: Path, root: Path = ROOT) -> list[str]:
    found = []
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > limit:
                    where = path.relative_to(root)
                    found.append(f"{where}:{node.lineno} {node.name} ({lines} lines)")
    return found


@pytest.mark.parametrize("folder", FOLDERS)
def test_no_function_is_longer_than_the_limit(folder: str) -> None:
    assert longer_than(LIMIT, ROOT / folder) == []


def test_the_check_sees_a_long_function(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(LIMIT))
    (tmp_path / "long.py").write_text(f"def long():\n{body}\n")
    assert longer_than(LIMIT, tmp_path, tmp_path) == [f"long.py:1 long ({LIMIT + 1} lines)"]
