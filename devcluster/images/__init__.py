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

The modules, one job each (lower ones never import higher ones, .importlinter):
`cli` (the command line), `builds` (a plan per image, `buildah bud`, retries),
`base` (the Debian base), `archives` (OCI archives read back) and `cache` (the
content key, the cache directory and its lock), `buildah` (its storage) and
`sources` (apt's mirrors, pip's index), `specs` (what each image is made from),
`commands` (running the tools). This package's own names are its public face.

Followed: buildah-bud(1) and buildah-push(1) (`--layers`, `--isolation chroot`,
`--secret`, the `oci-archive:` destination), containers-storage.conf(5) (overlay,
vfs as the fallback), mmdebstrap(1) (`--variant=minbase`, the merged-usr hook,
`--dpkgopt=path-exclude` as in its "minimal Docker image" example), the OCI
image-layout and image-spec (index.json, manifest, config, the pre-defined
org.opencontainers.image.* annotations), skopeo-inspect(1), sources.list(5) (the
one-line and deb822 formats), pip's "Configuration" page (files, environment
variables, `pip config list`; https://pip.pypa.io/en/stable/topics/configuration/).
"""

from devcluster.images.archives import BuiltImage, read_archive
from devcluster.images.base import base_image
from devcluster.images.builds import build_images, ensure_images
from devcluster.images.commands import ImageBuildError
from devcluster.images.specs import IMAGES, ImageSpec, version

__all__ = [
    "IMAGES",
    "BuiltImage",
    "ImageBuildError",
    "ImageSpec",
    "base_image",
    "build_images",
    "ensure_images",
    "read_archive",
    "version",
]
