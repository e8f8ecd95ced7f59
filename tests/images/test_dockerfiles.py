"""Static checks of the Dockerfiles, the install script and the locks (no build)."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = {
    "operator": ROOT / "operator/Dockerfile",
    "exporter": ROOT / "exporter_image/Dockerfile",
    "exporter-gpu": ROOT / "exporter_image/Dockerfile.gpu",
}
LABELS = ("version", "revision", "created", "source", "title", "licenses")
SCRIPT = "images/install-python-env.sh"


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
    text = "\n".join(lines).replace("\\\n", " ")
    result = []
    for line in text.splitlines():
        words = line.strip().split(None, 1)
        if words:
            result.append((words[0].upper(), words[1] if len(words) > 1 else ""))
    return result


def lock_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", line)
        if match:
            names.add(normalize(match.group(1)))
    return names


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, requirement
    return normalize(match.group(1))


def install_runs(path: Path) -> list[str]:
    return [
        args for op, args in instructions(path) if op == "RUN" and SCRIPT.split("/")[-1] in args
    ]


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_dockerfile_has_base_arg_labels_and_numeric_user(name: str) -> None:
    steps = instructions(DOCKERFILES[name])
    assert steps[0][0] == "ARG" and steps[0][1].startswith("BASE_IMAGE="), steps[0]
    assert steps[1] == ("FROM", "${BASE_IMAGE}")
    label_text = " ".join(args for op, args in steps if op == "LABEL")
    for label in LABELS:
        assert f"org.opencontainers.image.{label}=" in label_text, label
    for arg in ("VERSION", "REVISION", "CREATED"):
        assert any(op == "ARG" and args.startswith(arg + "=") for op, args in steps), arg
    users = [args for op, args in steps if op == "USER"]
    assert users and re.fullmatch(r"[1-9][0-9]*:[1-9][0-9]*", users[-1]), users
    env = " ".join(args for op, args in steps if op == "ENV")
    for setting in ("PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1", "HOME=/tmp"):
        assert setting in env
    assert "PATH=/opt/venv/bin:$PATH" in env


def test_operator_has_entrypoint_exporters_have_cmd_only() -> None:
    operator = instructions(DOCKERFILES["operator"])
    assert ("ENTRYPOINT", '["bodypose-operator"]') in operator
    for name in ("exporter", "exporter-gpu"):
        steps = instructions(DOCKERFILES[name])
        assert not any(op == "ENTRYPOINT" for op, _ in steps)
        assert ("CMD", '["bpnet-export", "--help"]') in steps


def test_both_exporter_images_run_the_same_script_with_the_same_lock() -> None:
    cpu = install_runs(DOCKERFILES["exporter"])
    gpu = install_runs(DOCKERFILES["exporter-gpu"])
    assert len(cpu) == 2 and len(gpu) == 2  # deps, then the project
    for runs in (cpu, gpu):
        assert "deps" in runs[0] and "exporter.lock" in runs[0]
        assert "project" in runs[1]
    assert "--system-site-packages" in gpu[0]
    for name in ("exporter", "exporter-gpu"):
        copies = [args for op, args in instructions(DOCKERFILES[name]) if op == "COPY"]
        assert any(args.startswith(SCRIPT + " ") for args in copies)
        assert any(args.startswith("requirements/exporter.lock ") for args in copies)


def test_dependencies_install_from_the_lock_with_hashes() -> None:
    script = (ROOT / SCRIPT).read_text()
    assert "--require-hashes --no-deps" in script
    assert "--no-deps --no-build-isolation" in script
    for path in DOCKERFILES.values():
        deps = [run for run in install_runs(path) if " deps " in run]
        assert deps and "--mount=type=secret,id=pip-cert,required=false" in deps[0]
        # Declared, with no default: the builder's index, else pip's own.
        assert ("ARG", "PIP_INDEX_URL") in instructions(path)


@pytest.mark.parametrize("extra", ["operator", "exporter"])
def test_lock_covers_every_dependency_of_the_extra(extra: str) -> None:
    with (ROOT / "pyproject.toml").open("rb") as f:
        project = tomllib.load(f)
    wanted = {requirement_name(r) for r in project["project"]["dependencies"]}
    wanted |= {requirement_name(r) for r in project["project"]["optional-dependencies"][extra]}
    wanted |= {requirement_name(r) for r in project["build-system"]["requires"]}
    lock = ROOT / f"requirements/{extra}.lock"
    header = lock.read_text().splitlines()[1]
    assert "uv pip compile" in header and f"--extra {extra}" in header
    assert "--universal" in header and "--generate-hashes" in header
    missing = wanted - lock_names(lock)
    assert not missing, f"{lock.name} lacks {sorted(missing)}: run `make lock`"


def test_operator_lock_has_no_tensorflow_or_tensorrt() -> None:
    names = lock_names(ROOT / "requirements/operator.lock")
    assert not {n for n in names if n.startswith(("tensorflow", "tensorrt", "onnx", "tf2onnx"))}


def test_gpu_lock_adds_cuda_python_without_repinning_the_exporter_lock() -> None:
    gpu = lock_names(ROOT / "requirements/gpu.lock")
    assert "cuda-python" in gpu
    assert not gpu & lock_names(ROOT / "requirements/exporter.lock")


def test_gpu_base_is_a_pinned_tensorrt_10_container() -> None:
    steps = instructions(DOCKERFILES["exporter-gpu"])
    base = steps[0][1].split("=", 1)[1]
    assert re.fullmatch(r"nvcr\.io/nvidia/tensorrt:\d\d\.\d\d-py3", base), base
    text = DOCKERFILES["exporter-gpu"].read_text()
    assert re.search(r"TensorRT 10\.\d+", text) and "tao-toolkit" in text
    assert "eff_tao_encryption" in text


def test_context_ignores_keep_it_small() -> None:
    for name in (".dockerignore", ".containerignore"):
        patterns = (ROOT / name).read_text().split()
        for entry in (".venv", ".git", ".cluster", "demo-output", "tests", "benchmarks"):
            assert entry in patterns, (name, entry)


URL = re.compile(r"[a-z][a-z0-9+.-]*://[^\s\"']+", re.I)
#: The project's own repository: the `source` label's value, not where anything is fetched.
PROJECT = "https://github.com/bodypose-export/bodypose-export"


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_no_package_index_or_mirror_host_is_written_in_a_dockerfile(name: str) -> None:
    """A build without arguments takes pip's own default index; the base image's reference
    names its image (container tools map a registry to a mirror by its name, registries.conf
    and the daemon's registry-mirrors; pip and apt have no such map: the URL is the mirror)."""
    for op, args in instructions(DOCKERFILES[name]):
        if op == "ARG" and args.partition("=")[0] in ("BASE_IMAGE", "SOURCE"):
            continue
        assert not URL.search(args), (op, args)
    assert not URL.search((ROOT / SCRIPT).read_text())


def test_no_package_index_or_mirror_host_is_written_in_the_image_builder() -> None:
    """devcluster/images/: no URL in the code of any of its modules (docstrings and comments
    may cite documentation), but the project's own, which the images carry as their source
    label."""
    modules = sorted((ROOT / "devcluster/images").glob("*.py"))
    assert len(modules) > 1  # the package, not an empty glob
    urls = set()
    for module in modules:
        tree = ast.parse(module.read_text())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        urls |= {
            found
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docstrings
            for found in URL.findall(node.value)
        }  # fmt: skip
    assert urls == {PROJECT}
