#!/bin/sh
# The images' Python environment, one script for all three Dockerfiles
# (operator/Dockerfile, exporter_image/Dockerfile, exporter_image/Dockerfile.gpu),
# so the CPU and the GPU exporter images install the same requirements/exporter.lock
# the same way.
#
#   install-python-env.sh deps [--system-site-packages] LOCK [LOCK ...]
#       Creates the venv at $VENV (/opt/venv) and installs every package of the
#       locks exactly as pinned: hashes checked (--require-hashes), no dependency
#       resolution at build time (--no-deps: the lock is the resolution; `make lock`
#       regenerates it with `uv pip compile --universal`), wheels only.
#       --system-site-packages: the venv also sees the base image's own packages
#       (the TensorRT Python bindings of NVIDIA's TensorRT and TAO deploy containers).
#   install-python-env.sh project SRC
#       Installs the project from its source tree SRC: --no-deps (all in the lock),
#       --no-build-isolation (setuptools and wheel are in the lock), --no-index.
#
# pip itself is not left in the image: it runs from a throwaway venv in /tmp and
# installs into $VENV with `pip --python` (pip >= 22.3). Bytecode is compiled
# here: the containers run with a read-only root filesystem and
# PYTHONDONTWRITEBYTECODE=1. Test suites shipped inside wheels (`tests`
# directories) are dropped.
#
# TLS: if the build mounts a secret `pip-cert` (a CA bundle, e.g. a proxy's), pip
# trusts it; the index is $PIP_INDEX_URL (a build ARG), or pip's own default when
# the build passes none. Nothing else from the build host reaches pip: no cache,
# no find-links, no config files.
set -eu

VENV="${VENV:-/opt/venv}"
BOOTSTRAP=/tmp/bootstrap-pip

usage() {
    echo "usage: $0 deps [--system-site-packages] LOCK [LOCK ...] | $0 project SRC" >&2
    exit 2
}

if [ -f /run/secrets/pip-cert ]; then
    export PIP_CERT=/run/secrets/pip-cert
fi
export PIP_CONFIG_FILE=/dev/null PIP_NO_CACHE_DIR=1 PIP_NO_INPUT=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
unset PIP_FIND_LINKS PIP_EXTRA_INDEX_URL PIP_TARGET PIP_PREFIX PIP_USER PIP_REQUIRE_VIRTUALENV
# An ARG declared without a value may still arrive empty: pip would take "" as the index.
if [ -z "${PIP_INDEX_URL:-}" ]; then
    unset PIP_INDEX_URL
fi

pip() {
    if [ ! -x "$BOOTSTRAP/bin/python" ]; then
        python3 -m venv "$BOOTSTRAP"
    fi
    "$BOOTSTRAP/bin/python" -m pip --python "$VENV/bin/python" "$@"
}

finish() {
    rm -rf "$BOOTSTRAP"
    find "$VENV" -depth -type d -name tests -path '*/site-packages/*' -exec rm -rf {} +
    "$VENV/bin/python" -m compileall -q -j 0 "$VENV" \
        || echo "note: the files named above could not be byte-compiled" >&2
}

mode="${1:-}"
[ "$#" -gt 0 ] && shift
case "$mode" in
    deps)
        venv_options=""
        if [ "${1:-}" = "--system-site-packages" ]; then
            venv_options="--system-site-packages"
            shift
        fi
        [ "$#" -gt 0 ] || usage
        requirements=""
        for lock in "$@"; do
            requirements="$requirements -r $lock"
        done
        # shellcheck disable=SC2086  # empty or one word
        python3 -m venv --without-pip $venv_options "$VENV"
        # shellcheck disable=SC2086  # one word per -r and per path
        # Wheels only, but for the one source package in the locks: NVIDIA publishes
        # TensorRT-RTX's import name, `tensorrt_rtx`, only as the sdist tensorrt-rtx-cu13
        # (its libraries and bindings are wheels). pip builds it in an isolated
        # environment; its own archive is checked against the lock's hash.
        pip install --require-hashes --no-deps --only-binary=:all: \
            --no-binary=tensorrt-rtx-cu13 $requirements
        ;;
    project)
        [ "$#" -eq 1 ] || usage
        pip install --no-deps --no-build-isolation --no-index "$1"
        rm -rf "$1/build"
        ;;
    *)
        usage
        ;;
esac
finish
