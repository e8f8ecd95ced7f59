"""The project's container images, built here with buildah: `make images`.

    python -m devcluster.images build [--only NAME ...] [--no-cache] [--index-url URL]
    python -m devcluster.images list

What it does, in order:

1. the tools: buildah, mmdebstrap, umoci and skopeo, installed with apt-get when
   missing (which needs root; otherwise it stops and says so);
2. the base: Debian bookworm `minbase` plus python3, python3-venv and
   ca-certificates, made with mmdebstrap from the Debian mirror this machine's
   apt uses (`debian_mirrors`: its sources.list and sources.list.d, one-line
   `.list` and deb822 `.sources` alike; or $BODYPOSE_DEBIAN_MIRROR and
   $BODYPOSE_DEBIAN_SECURITY_MIRROR), imported into buildah as
   `localhost/bodypose-base:bookworm` and saved as an OCI archive
   (`bodypose-export/base:bookworm`) that tests run small pods in;
3. each image: `buildah bud --isolation chroot --layers` with the base as
   BASE_IMAGE, the version from pyproject.toml, the commit (revision) and its
   time (created), the package index this machine's pip is configured with
   (`configured_index_url`: $PIP_INDEX_URL or pip's configuration files, as
   `pip config list` shows them; `--index-url` overrides it; none configured:
   no PIP_INDEX_URL, and pip in the build uses its own default), the CA bundle
   ($PIP_CERT) as the build secret `pip-cert`;
4. the result: an OCI archive under $BODYPOSE_IMAGE_CACHE (default
   ${XDG_CACHE_HOME:-~/.cache}/bodypose-export/images) named by a content key, a
   sha256 over everything the image is made from: the Dockerfile, every file
   its COPY lines bring in (the install script, the lock, the sources), the base
   image's id and the build args other than revision and created. An archive for
   the current key means nothing changed: no build at all.

The archives are gzip-compressed OCI archives (`oci-archive:` transport, the ref
in index.json's org.opencontainers.image.ref.name). Uncompressed archives would
unpack faster, but neither `buildah push --disable-compression` (1.28) nor
`skopeo copy --dest-decompress` (1.9) writes uncompressed layers to an
oci-archive here (both reuse the gzip blobs), so the archives are what the tools
write by default; `size_bytes` is the uncompressed size, counted once per build.

No registry's or mirror's host name is written here or in the Dockerfiles: a user
behind a private index or Debian mirror builds with what the machine is set up with.

Followed: buildah-bud(1) and buildah-push(1) (`--layers`, `--isolation chroot`,
`--secret`, the `oci-archive:` destination), containers-storage.conf(5) (overlay,
vfs as the fallback), mmdebstrap(1) (`--variant=minbase`, the merged-usr hook,
`--dpkgopt=path-exclude` as in its "minimal Docker image" example), the OCI
image-layout and image-spec (index.json, manifest, config, the pre-defined
org.opencontainers.image.* annotations), skopeo-inspect(1), sources.list(5) (the
one-line and deb822 formats), pip's "Configuration" page (files, environment
variables, `pip config list`; https://pip.pypa.io/en/stable/topics/configuration/).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import fnmatch
import gzip
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

REPO_ROOT = Path(__file__).resolve().parent.parent
TOOLS = ("buildah", "mmdebstrap", "umoci", "skopeo")

BASE_TAG = "localhost/bodypose-base:bookworm"
BASE_REF = "bodypose-export/base:bookworm"
BASE_SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
# Bumped when the recipe below changes in a way the arguments do not show.
BASE_RECIPE = "1"
BASE_KEY_LABEL = "dev.bodypose.base-key"

# Left out of the content key: they change with every commit, not with the image.
UNKEYED_ARGS = ("REVISION", "CREATED")
SOURCE_URL = "https://github.com/bodypose-export/bodypose-export"


@dataclass(frozen=True)
class BuiltImage:
    name: str  # "operator" | "exporter" | "base"
    ref: str  # e.g. "bodypose-export/operator:0.1.0"
    archive: Path  # OCI archive; index.json's org.opencontainers.image.ref.name is `ref`
    digest: str  # "sha256:..." manifest digest
    size_bytes: int  # uncompressed


@dataclass(frozen=True)
class ImageSpec:
    name: str
    repository: str
    dockerfile: str  # relative to REPO_ROOT, which is the build context
    built_here: bool = True
    note: str = ""


IMAGES: dict[str, ImageSpec] = {
    spec.name: spec
    for spec in (
        ImageSpec("operator", "bodypose-export/operator", "operator/Dockerfile"),
        ImageSpec("exporter", "bodypose-export/exporter", "exporter_image/Dockerfile"),
        ImageSpec(
            "exporter-gpu",
            "bodypose-export/exporter-gpu",
            "exporter_image/Dockerfile.gpu",
            built_here=False,
            note=(
                "not built here: its base, NVIDIA's TensorRT container (nvcr.io), is not "
                "reachable from this machine; build it where it is, e.g. "
                "`docker build -f exporter_image/Dockerfile.gpu .`"
            ),
        ),
    )
}
DEFAULT_NAMES = ("operator", "exporter")


class ImageBuildError(Exception):
    """A step failed; the message is what `make images` prints (no traceback)."""


# ----------------------------------------------------------------------------- helpers


def version() -> str:
    with (REPO_ROOT / "pyproject.toml").open("rb") as f:
        return str(tomllib.load(f)["project"]["version"])


def cache_dir() -> Path:
    explicit = os.environ.get("BODYPOSE_IMAGE_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "bodypose-export" / "images"


def _say(progress: IO[str] | None, line: str) -> None:
    if progress is not None:
        progress.write(line + "\n")
        progress.flush()


def _clean_env() -> dict[str, str]:
    """The host's environment minus pip's settings (find-links, timeouts, ...)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}


def _run(cmd: Sequence[str], *, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        list(cmd),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env if env is not None else _clean_env(),
        check=False,
    )
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()[-20:]
        raise ImageBuildError(f"`{shlex.join(cmd)}` failed:\n" + "\n".join(detail))
    return proc.stdout


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One builder at a time per cache directory (make and pytest may overlap)."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _git(*args: str) -> str | None:
    try:
        proc = subprocess.run(
            ["git", "-C", str(REPO_ROOT), *args],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return None
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else None


def revision() -> str:
    return _git("rev-parse", "HEAD") or "unknown"


def created() -> str:
    """The commit's time (reproducible across rebuilds of one commit), else the epoch."""
    stamp = _git("show", "-s", "--format=%cI", "HEAD")
    if stamp is None:
        return "1970-01-01T00:00:00Z"
    return stamp


# ----------------------------------------------------------------------------- tools


def ensure_tools(progress: IO[str] | None = None) -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if not missing:
        return
    if os.geteuid() != 0:
        raise ImageBuildError(
            f"make images needs {', '.join(missing)}; installing them takes root: "
            f"sudo apt-get install -y {' '.join(missing)}"
        )
    if shutil.which("apt-get") is None:
        raise ImageBuildError(f"make images needs {', '.join(missing)} and there is no apt-get")
    _say(progress, f"installing {' '.join(missing)} with apt-get (running as root)")
    env = {**_clean_env(), "DEBIAN_FRONTEND": "noninteractive"}
    _run(["apt-get", "update", "-q"], env=env)
    _run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], env=env)


# ----------------------------------------------------------------------------- storage


@dataclass(frozen=True)
class _Storage:
    driver: str
    root: str | None  # None: buildah's default graph root

    def args(self) -> list[str]:
        extra = ["--root", self.root] if self.root else []
        return ["--storage-driver", self.driver, *extra]


_storage: _Storage | None = None


def storage() -> _Storage:
    """overlay if this kernel and sandbox let buildah mount it, else vfs.

    The probe mounts an empty working container. vfs gets a graph root of its
    own: buildah refuses a root that another driver initialised.
    """
    global _storage
    if _storage is not None:
        return _storage
    overlay = _Storage("overlay", None)
    try:
        ctr = _run(["buildah", *overlay.args(), "from", "scratch"]).strip().splitlines()[-1]
        try:
            _run(["buildah", *overlay.args(), "mount", ctr])
        finally:
            with contextlib.suppress(ImageBuildError):
                _run(["buildah", *overlay.args(), "rm", ctr])
        _storage = overlay
    except ImageBuildError:
        _storage = _Storage("vfs", "/var/lib/containers/storage-vfs")
    return _storage


def _buildah(*args: str) -> str:
    return _run(["buildah", *storage().args(), *args])


def _image_id(ref: str) -> str | None:
    try:
        out = _buildah("inspect", "--type", "image", "--format", "{{.FromImageID}}", ref)
    except ImageBuildError:
        return None
    return out.strip() or None


def _image_label(ref: str, label: str) -> str | None:
    try:
        out = _buildah("inspect", "--type", "image", ref)
    except ImageBuildError:
        return None
    labels = (json.loads(out).get("OCIv1") or {}).get("config", {}).get("Labels") or {}
    value = labels.get(label)
    return str(value) if value is not None else None


# ----------------------------------------------------------------------------- archives


def _read_member(tar: tarfile.TarFile, name: str) -> bytes:
    member = tar.extractfile(name)
    if member is None:
        raise ImageBuildError(f"{tar.name!s}: no {name}")
    return member.read()


def read_archive(archive: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """index.json, the manifest and the image config of a single-image OCI archive."""
    with tarfile.open(archive) as tar:
        index = json.loads(_read_member(tar, "index.json"))
        digest = index["manifests"][0]["digest"]
        manifest = json.loads(_read_member(tar, "blobs/sha256/" + digest.split(":", 1)[1]))
        config_digest = manifest["config"]["digest"]
        config = json.loads(_read_member(tar, "blobs/sha256/" + config_digest.split(":", 1)[1]))
    return index, manifest, config


def _uncompressed_size(archive: Path, manifest: dict[str, Any]) -> int:
    total = 0
    with tarfile.open(archive) as tar:
        for layer in manifest["layers"]:
            blob = tar.extractfile("blobs/sha256/" + layer["digest"].split(":", 1)[1])
            if blob is None:
                raise ImageBuildError(f"{archive}: layer {layer['digest']} missing")
            if layer["mediaType"].endswith("+gzip"):
                with gzip.GzipFile(fileobj=blob) as stream:
                    while chunk := stream.read(1 << 20):
                        total += len(chunk)
            else:
                total += int(layer["size"])
    return total


def _describe(name: str, ref: str, archive: Path) -> BuiltImage:
    """From the sidecar written next to the archive, else from the archive itself."""
    sidecar = archive.with_suffix(".json")
    if sidecar.exists():
        meta = json.loads(sidecar.read_text())
        if meta.get("ref") == ref:
            return BuiltImage(name, ref, archive, str(meta["digest"]), int(meta["size_bytes"]))
    index, manifest, _ = read_archive(archive)
    digest = str(index["manifests"][0]["digest"])
    size = _uncompressed_size(archive, manifest)
    sidecar.write_text(json.dumps({"ref": ref, "digest": digest, "size_bytes": size}) + "\n")
    return BuiltImage(name, ref, archive, digest, size)


def _save(name: str, local_tag: str, ref: str, archive: Path) -> BuiltImage:
    """`buildah push` to a temporary file, renamed into place once complete."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_name(archive.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        _buildah("push", "--quiet", local_tag, f"oci-archive:{partial}:{ref}")
        partial.replace(archive)
    finally:
        partial.unlink(missing_ok=True)
    archive.with_suffix(".json").unlink(missing_ok=True)
    return _describe(name, ref, archive)


# ----------------------------------------------------------------------------- base


@dataclass(frozen=True)
class AptSource:
    """One entry of apt's sources: a one-line `deb URI SUITE COMPONENT...` or a deb822
    paragraph (several URIs and suites)."""

    types: tuple[str, ...]
    uris: tuple[str, ...]
    suites: tuple[str, ...]
    components: tuple[str, ...]


def parse_sources_list(text: str) -> list[AptSource]:
    """The one-line format (sources.list(5)): `deb [options] uri suite [component ...]`."""
    found = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        kind, _, rest = line.partition(" ")
        rest = rest.strip()
        if rest.startswith("["):  # [arch=amd64 signed-by=...]
            rest = rest.partition("]")[2].strip()
        words = rest.split()
        if len(words) >= 2:
            found.append(AptSource((kind,), (words[0],), (words[1],), tuple(words[2:])))
    return found


def parse_deb822_sources(text: str) -> list[AptSource]:
    """The deb822 format (sources.list(5), `.sources` files): paragraphs of `Field: value`,
    continuation lines indented, `#` comments anywhere, `Enabled: no` skipped."""
    found = []
    for paragraph in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        last = None
        for line in paragraph.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0].isspace() and last is not None:
                fields[last] += " " + line.strip()
                continue
            name, _, value = line.partition(":")
            last = name.strip().lower()
            fields[last] = value.strip()
        if not fields.get("uris") or fields.get("enabled", "yes").lower() == "no":
            continue
        found.append(AptSource(*(tuple(fields.get(f, "").split())
                                 for f in ("types", "uris", "suites", "components"))))  # fmt: skip
    return found


def apt_sources(etc_apt: Path = Path("/etc/apt")) -> list[AptSource]:
    """Every source apt reads: sources.list, then sources.list.d/*.list and *.sources in
    name order (files with other suffixes, `.disabled` ones, apt ignores too)."""
    found = []
    main = etc_apt / "sources.list"
    if main.is_file():
        found += parse_sources_list(main.read_text())
    parts = etc_apt / "sources.list.d"
    for path in sorted(parts.iterdir()) if parts.is_dir() else []:
        if path.suffix == ".list":
            found += parse_sources_list(path.read_text())
        elif path.suffix == ".sources":
            found += parse_deb822_sources(path.read_text())
    return found


def debian_mirrors(sources: Sequence[AptSource], release: str) -> tuple[str | None, str | None]:
    """(archive, security): the first `deb` source of component main for the machine's
    Debian `release` itself (`bookworm`, `bookworm-updates`) and the first for its
    `-security` suite. Another vendor's repository (its own suite, or components other
    than main, as Docker's `bookworm stable`) is neither."""
    archive = security = None
    for source in sources:
        if "deb" not in source.types or "main" not in source.components or not source.uris:
            continue
        uri = source.uris[0].rstrip("/")
        if security is None and f"{release}-security" in source.suites:
            security = uri
        if archive is None and {release, f"{release}-updates"} & set(source.suites):
            archive = uri
    return archive, security


def _os_release(path: Path) -> dict[str, str]:
    text = path.read_text() if path.is_file() else ""
    return {k: v.strip('"') for k, v in re.findall(r"^([A-Z_]+)=(.*)$", text, re.M)}


def _debian_sources(
    env: Mapping[str, str] | None = None,
    etc_apt: Path = Path("/etc/apt"),
    os_release: Path = Path("/etc/os-release"),
) -> list[str]:
    """The mmdebstrap sources of the base: the Debian mirrors this machine's apt uses, or
    the ones $BODYPOSE_DEBIAN_MIRROR and $BODYPOSE_DEBIAN_SECURITY_MIRROR name."""
    env = os.environ if env is None else env
    mirror = env.get("BODYPOSE_DEBIAN_MIRROR") or None
    security = env.get("BODYPOSE_DEBIAN_SECURITY_MIRROR") or None
    if mirror is None or security is None:
        system = _os_release(os_release)
        if system.get("ID") != "debian":
            raise ImageBuildError(
                f"make images: the base is Debian {BASE_SUITE}, and this machine's apt "
                f"sources are not Debian's (ID={system.get('ID', 'unknown')} in "
                f"{os_release}): set BODYPOSE_DEBIAN_MIRROR and "
                "BODYPOSE_DEBIAN_SECURITY_MIRROR to a Debian mirror and its security mirror"
            )
        release = system.get("VERSION_CODENAME", "")
        archive, found = debian_mirrors(apt_sources(etc_apt), release)
        mirror, security = mirror or archive, security or found
    for value, what, variable in (
        (mirror, "archive", "BODYPOSE_DEBIAN_MIRROR"),
        (security, "security", "BODYPOSE_DEBIAN_SECURITY_MIRROR"),
    ):
        if value is None:
            raise ImageBuildError(
                f"make images: apt's sources in {etc_apt} name no Debian {what} mirror "
                f"(a deb entry of component main for this machine's release"
                f"{'' if what == 'archive' else ', its -security suite'}): set {variable}"
            )
    return [
        f"deb {mirror} {BASE_SUITE} main",
        f"deb {mirror} {BASE_SUITE}-updates main",
        f"deb {security} {BASE_SUITE}-security main",
    ]


def _mmdebstrap_args(rootfs: Path) -> list[str]:
    hooks = Path("/usr/share/mmdebstrap/hooks/merged-usr")
    return [
        "mmdebstrap",
        "--mode=root",
        "--variant=minbase",
        "--include=" + ",".join(BASE_PACKAGES),
        # Merged /usr without the usrmerge package (and the perl it pulls in).
        *([f"--hook-dir={hooks}"] if hooks.is_dir() else []),
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-include=/usr/share/doc/*/copyright",
        "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*",
        "--dpkgopt=path-exclude=/usr/share/info/*",
        BASE_SUITE,
        str(rootfs),
        *_debian_sources(),
    ]


def _base_key() -> str:
    recipe = [BASE_RECIPE, *_mmdebstrap_args(Path("rootfs.tar"))]
    return hashlib.sha256(json.dumps(recipe).encode()).hexdigest()[:32]


def base_image(progress: IO[str] | None = None) -> BuiltImage:
    """The Debian bookworm + python3 base: in buildah's storage and as an OCI archive."""
    ensure_tools(progress)
    directory = cache_dir()
    with _locked(directory):
        return _base_image_locked(directory, progress)


def _base_image_locked(directory: Path, progress: IO[str] | None) -> BuiltImage:
    key = _base_key()
    archive = directory / f"base-{key}.tar"
    in_storage = _image_label(BASE_TAG, BASE_KEY_LABEL) == key
    if in_storage and archive.exists():
        return _describe("base", BASE_REF, archive)
    if not in_storage and archive.exists():
        _say(progress, f"base: restoring {BASE_TAG} from {archive.name}")
        image_id = _buildah("pull", "--quiet", f"oci-archive:{archive}").strip().splitlines()[-1]
        _buildah("tag", image_id, BASE_TAG)
        with contextlib.suppress(ImageBuildError):  # the name the pull gave it
            _buildah("rmi", f"localhost/{BASE_REF}")  # drops the name, not the image
        return _describe("base", BASE_REF, archive)
    if not in_storage:
        started = time.monotonic()
        _say(progress, f"base: mmdebstrap {BASE_SUITE} minbase + {' '.join(BASE_PACKAGES)}")
        with tempfile.TemporaryDirectory(prefix="bodypose-base-") as tmp:
            rootfs = Path(tmp) / "rootfs.tar"
            log = directory / "base-mmdebstrap.log"
            with log.open("w") as out:
                proc = subprocess.run(
                    _mmdebstrap_args(rootfs),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=_clean_env(),
                    check=False,
                )
            if proc.returncode != 0:
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
                raise ImageBuildError(f"make images: base failed at mmdebstrap\n{tail}")
            ctr = _buildah("from", "scratch").strip().splitlines()[-1]
            try:
                _buildah("add", "--quiet", ctr, str(rootfs), "/")
                _buildah(
                    "config",
                    "--env",
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "--env",
                    "LANG=C.UTF-8",
                    "--cmd",
                    "/bin/bash",
                    "--label",
                    f"{BASE_KEY_LABEL}={key}",
                    "--label",
                    f"org.opencontainers.image.title=bodypose-export base (Debian {BASE_SUITE})",
                    ctr,
                )
                _buildah("commit", "--quiet", "--rm", ctr, BASE_TAG)
            except ImageBuildError:
                with contextlib.suppress(ImageBuildError):
                    _buildah("rm", ctr)
                raise
        _say(progress, f"base: made in {time.monotonic() - started:.0f}s")
    return _save("base", BASE_TAG, BASE_REF, archive)


# ----------------------------------------------------------------------------- images


def _ignore_patterns() -> list[str]:
    path = REPO_ROOT / ".dockerignore"
    if not path.exists():
        return []
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line.rstrip("/") for line in lines if line and not line.startswith("#")]


def _ignored(rel: str, patterns: Sequence[str]) -> bool:
    """.dockerignore matching: a pattern names a path from the context root (and all
    below it); `**/` in front matches at any depth."""
    parts = rel.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        if pattern.startswith("**/"):
            bare = pattern.removeprefix("**/")
            if any(fnmatch.fnmatch(part, bare) for part in parts):
                return True
        elif any(fnmatch.fnmatch(prefix, pattern) for prefix in prefixes):
            return True
    return False


def copied_files(dockerfile: Path) -> list[Path]:
    """Every file of the build context that the Dockerfile's COPY/ADD lines bring in."""
    text = dockerfile.read_text().replace("\\\n", " ")
    patterns = _ignore_patterns()
    files: set[Path] = set()
    for line in text.splitlines():
        words = line.strip().split()
        if not words or words[0].upper() not in ("COPY", "ADD"):
            continue
        args = [w for w in words[1:] if not w.startswith("--")]
        if any(w.startswith("--from") for w in words[1:]):
            continue
        for source in args[:-1]:
            for match in sorted(REPO_ROOT.glob(source)):
                candidates = [match] if match.is_file() else sorted(match.rglob("*"))
                for path in candidates:
                    rel = path.relative_to(REPO_ROOT).as_posix()
                    if path.is_file() and not _ignored(rel, patterns):
                        files.add(path)
    return sorted(files)


def content_key(spec: ImageSpec, base_id: str, build_args: dict[str, str]) -> str:
    digest = hashlib.sha256()

    def feed(label: str, data: bytes) -> None:
        digest.update(f"{label}\0{len(data)}\0".encode())
        digest.update(data)

    dockerfile = REPO_ROOT / spec.dockerfile
    feed("dockerfile", dockerfile.read_bytes())
    for path in copied_files(dockerfile):
        feed("file:" + path.relative_to(REPO_ROOT).as_posix(), path.read_bytes())
    feed("base", base_id.encode())
    keyed = {k: v for k, v in sorted(build_args.items()) if k not in UNKEYED_ARGS}
    feed("args", json.dumps(keyed, sort_keys=True).encode())
    return digest.hexdigest()[:32]


@dataclass(frozen=True)
class _Plan:
    spec: ImageSpec
    ref: str
    local_tag: str
    build_args: dict[str, str]
    archive: Path


def pip_config_index_url(listing: str) -> str | None:
    """The index in `pip config list`'s lines (`<where>.index-url='...'`), ranked as pip
    ranks them for `pip install`: the environment (`:env:`, $PIP_INDEX_URL) over the
    `[install]` section over `[global]`."""
    found = dict(re.findall(r"^([^\s=]+)\.index-url='(.*)'$", listing, re.M))
    return next((found[w] for w in (":env:", "install", "global") if found.get(w)), None)


def configured_index_url(env: Mapping[str, str] | None = None) -> str | None:
    """The package index this machine's pip is configured with, as pip itself reads it
    (`pip config list`: $PIP_INDEX_URL, $PIP_CONFIG_FILE, the site, user and global
    pip.conf files); None: none configured, pip's own default.

    A URL with credentials in it reaches the image's build history as a build argument:
    prefer an index that authenticates otherwise (a netrc, a keyring) for such builds."""
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        env=dict(os.environ if env is None else env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return pip_config_index_url(proc.stdout) if proc.returncode == 0 else None


def _plan(
    spec: ImageSpec, base: BuiltImage, base_id: str, tag: str | None, index_url: str | None
) -> _Plan:
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
    return _Plan(spec, ref, f"localhost/{ref}", build_args, archive)


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


def _build(plan: _Plan, no_cache: bool, progress: IO[str] | None) -> None:
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
        _say(
            progress,
            f"{plan.spec.name}: buildah failed at step {step} with a known transient error "
            f"({cause.strip()[:120]}); retrying ({attempt + 1} of {TRANSIENT_RETRIES}), "
            "the layer cache resumes at that step",
        )


def _bud(
    plan: _Plan, no_cache: bool, progress: IO[str] | None
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
            env=_clean_env(),
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            text = line.rstrip("\n")
            tail.append(text)
            match = _STEP.match(text)
            if match:
                step = " ".join(match.group(1).split())
                _say(progress, f"  {plan.spec.name}: {text[:150]}")
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
    base_id = _image_id(BASE_TAG)
    if base_id is None:
        raise ImageBuildError(f"make images: {BASE_TAG} is missing from buildah's storage")
    index_url = index_url or configured_index_url()
    results: list[BuiltImage] = []
    with _locked(base.archive.parent):
        for name in names:
            plan = _plan(IMAGES[name], base, base_id, tag, index_url)
            if plan.archive.exists() and not no_cache:
                image = _describe(name, plan.ref, plan.archive)
                _report(progress, image, "cached", None)
                results.append(image)
                continue
            started = time.monotonic()
            _say(progress, f"{name}: building {plan.ref} ({plan.spec.dockerfile})")
            _build(plan, no_cache, progress)
            replan = _plan(IMAGES[name], base, base_id, tag, index_url)
            if replan.archive != plan.archive:
                # A file the Dockerfile copies changed while it built: build again (the
                # unchanged layers come from the cache) so the key names what is inside.
                _say(progress, f"{name}: its sources changed during the build; again")
                plan = replan
                _build(plan, no_cache, progress)
            image = _save(name, plan.local_tag, plan.ref, plan.archive)
            _report(progress, image, "built", time.monotonic() - started)
            results.append(image)
            _prune_archives(name, keep=plan.archive)
    return results


# An exporter archive is about 1 GB: keep the newest few per image (another checkout
# may still use one), not one per source change for ever.
KEEP_ARCHIVES = 3


def _prune_archives(name: str, keep: Path) -> None:
    archives = sorted(
        keep.parent.glob(f"{name}-*.tar"), key=lambda p: p.stat().st_mtime, reverse=True
    )
    for old in archives[KEEP_ARCHIVES:]:
        if old != keep:
            old.unlink(missing_ok=True)
            old.with_suffix(".json").unlink(missing_ok=True)


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit in ("B", "kB") else f"{value:.2f} {unit}"
        value /= 1000
    return f"{size} B"


def _report(progress: IO[str] | None, image: BuiltImage, how: str, seconds: float | None) -> None:
    took = f" in {seconds:.0f}s" if seconds is not None else ""
    _say(
        progress,
        f"{image.name}: {image.ref} {image.digest} {_human(image.size_bytes)} uncompressed, "
        f"archive {_human(image.archive.stat().st_size)} ({how}{took}) -> {image.archive}",
    )


# ----------------------------------------------------------------------------- CLI


def _list(out: IO[str]) -> None:
    base_id = _image_id(BASE_TAG) if shutil.which("buildah") else None
    directory = cache_dir()
    base_archive = directory / f"base-{_base_key()}.tar"
    state = "cached" if base_archive.exists() and base_id else "not built"
    _say(out, f"base: {BASE_REF} ({BASE_TAG}) {state}")
    base = BuiltImage("base", BASE_REF, base_archive, "", 0)
    index_url = configured_index_url()
    for spec in IMAGES.values():
        ref = f"{spec.repository}:{version()}"
        if not spec.built_here:
            _say(out, f"{spec.name}: {ref} {spec.note}")
            continue
        if base_id is None:
            _say(out, f"{spec.name}: {ref} not built (no base yet)")
            continue
        plan = _plan(spec, base, base_id, None, index_url)
        if plan.archive.exists():
            image = _describe(spec.name, ref, plan.archive)
            _say(out, f"{spec.name}: {ref} {image.digest} {_human(image.size_bytes)} cached")
        else:
            _say(out, f"{spec.name}: {ref} not built for the current sources ({spec.dockerfile})")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devcluster.images", description=__doc__)
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
        _say(out, f"make images: done in {time.monotonic() - started:.1f}s")
        _say(out, f"exporter-gpu: {IMAGES['exporter-gpu'].note}")
        return 0
    except ImageBuildError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("make images: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
