#!/usr/bin/env bash
# Build the local control plane's binaries from their Go modules with the Go
# toolchain, one component at a time, into a cache keyed by version:
#
#   ${BODYPOSE_BIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bodypose-export/bin}/<component>-<version>/
#
# Each component is pinned by a small Go module of ours, committed under
# hack/cluster/modules/<component>/ (go.mod + go.sum): the component's module at
# its release, every dependency at the version that release resolves to, and
# `tool` lines naming the commands to build. go.sum makes the build verify every
# downloaded module. Nothing is downloaded but Go modules through the module
# proxy; no release binary, no container image.
#
#   hack/cluster/build.sh                 build the default set if missing (etcd kubernetes kwok helm)
#   hack/cluster/build.sh kwok minio      build just these if missing
#   hack/cluster/build.sh kstatus         our kstatus checker (cli-utils' library, main.go)
#   hack/cluster/build.sh kueue           Kueue's controller manager (devcluster/kueue.py runs it)
#   hack/cluster/build.sh pin kwok v0.9.0 re-pin a component (rewrites its go.mod/go.sum)
#
# stdout carries only the bin directories (one a line) so callers can parse it;
# progress goes to stderr.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
modules="$here/modules"
bin_cache="${BODYPOSE_BIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bodypose-export/bin}"
default_components=(etcd kubernetes kwok helm)

# -trimpath and -s -w keep binaries small and the build cache shareable across
# checkouts; CGO off gives static binaries and needs no C compiler. GOFLAGS is
# replaced, not extended: a stray -mod=vendor or -race from the environment
# would break or slow the build. GOTOOLCHAIN=local: use the machine's Go, never
# fetch another one silently.
export CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false" GOTOOLCHAIN=local

log() { printf '[cluster-build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# component -> module whose version keys the cache, and the commands it builds
module_of() {
  case "$1" in
    etcd) echo go.etcd.io/etcd/server/v3 ;;
    kubernetes) echo k8s.io/kubernetes ;;
    kwok) echo sigs.k8s.io/kwok ;;
    helm) echo helm.sh/helm/v3 ;;
    minio) echo github.com/minio/minio ;;
    kstatus) echo sigs.k8s.io/cli-utils ;;
    kueue) echo sigs.k8s.io/kueue ;;
    *) log "unknown component '$1' (etcd kubernetes kwok helm minio kstatus kueue)"; exit 2 ;;
  esac
}
tools_of() {
  case "$1" in
    etcd) echo go.etcd.io/etcd/server/v3 ;;
    kubernetes)
      echo k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
        k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl ;;
    kwok) echo sigs.k8s.io/kwok/cmd/kwok ;;
    helm) echo helm.sh/helm/v3/cmd/helm ;;
    minio) echo github.com/minio/minio ;;
    # Our own small program over cli-utils' kstatus library (main.go beside go.mod).
    kstatus) echo . ;;
    # The manager upstream's Dockerfile builds (`go build ... cmd/kueue/main.go`).
    kueue) echo sigs.k8s.io/kueue/cmd/kueue ;;
  esac
}

# The pinned version, read from our go.mod (canonical `path version` lines).
version_of() {
  local module
  module="$(module_of "$1")"
  awk -v m="$module" '($1 == m || ($1 == "require" && $2 == m)) { v = ($1 == m) ? $2 : $3 } END { print v }' \
    "$modules/$1/go.mod"
}

# A component with a program of our own (kstatus) is keyed by its source too.
source_key() {
  local files=("$modules/$1"/*.go)
  [[ -e "${files[0]}" ]] || return 0
  printf -- '-%s' "$(cat "${files[@]}" "$modules/$1/go.sum" | sha256sum | cut -c1-12)"
}

bin_dir() { echo "$bin_cache/$1-$(version_of "$1")$(source_key "$1")"; }

# Version stamps the upstream Makefiles inject, so `kubectl version`, the API
# server's /version and helm's idea of the cluster's Kubernetes version are true.
ldflags_of() {
  local component="$1" version="$2" flags="-s -w"
  case "$component" in
    kubernetes)
      local minor="${version#v1.}"; minor="${minor%%.*}"
      local key val
      for kv in "gitVersion=$version" gitMajor=1 "gitMinor=$minor" gitTreeState=clean \
        "buildDate=1970-01-01T00:00:00Z"; do
        key="${kv%%=*}" val="${kv#*=}"
        flags+=" -X k8s.io/component-base/version.$key=$val -X k8s.io/client-go/pkg/version.$key=$val"
      done ;;
    helm)
      local k8s minor
      k8s="$(awk '$1 == "k8s.io/client-go" { print $2 }' "$modules/helm/go.mod")"
      minor="${k8s#v0.}"; minor="${minor%%.*}"
      flags+=" -X helm.sh/helm/v3/internal/version.version=$version -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
      flags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor"
      flags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor" ;;
    kueue)
      # As Kueue's Makefile sets them (version_pkg, LD_FLAGS); the module proxy
      # serves no commit id, so GitCommit stays empty rather than the placeholder.
      flags+=" -X sigs.k8s.io/kueue/pkg/version.GitVersion=$version -X sigs.k8s.io/kueue/pkg/version.GitCommit="
      flags+=" -X sigs.k8s.io/kueue/pkg/version.BuildDate=1970-01-01T00:00:00Z" ;;
  esac
  echo "$flags"
}

# devcluster/kueue.py installs Kueue from the release's own files under
# config/components/ (what its kustomize overlays and Helm chart are made from):
# the CRDs and their conversion patches, the webhook configurations, the RBAC.
# They are copied next to the binary from the module go.sum verified, so that the
# two are always one version and nothing is fetched at run time.
kueue_manifests() {
  local version="$1" out="$2" dir
  dir="$(cd "$modules/kueue" && GOFLAGS= go mod download -json "sigs.k8s.io/kueue@$version" |
    sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
  [[ -f "$dir/config/components/crd/kustomization.yaml" ]] || { log "no config/ in $dir"; return 1; }
  mkdir -p "$out/manifests"
  for part in crd webhook rbac; do cp -R "$dir/config/components/$part" "$out/manifests/"; done
  # The module cache is read-only; the bin cache must stay removable.
  chmod -R u+w "$out/manifests"
}

build() {
  local component="$1" version out started
  version="$(version_of "$component")"
  out="$(bin_dir "$component")"
  if [[ -f "$out/.complete" ]]; then
    echo "$out"
    return
  fi
  log "building $component $version (cold: several minutes on 2 cores; cached afterwards in $out)"
  started=$(date +%s)
  rm -rf "$out.tmp"
  mkdir -p "$out.tmp"
  # A cold build is silent for minutes; say it is alive so CI logs do not look hung.
  (while sleep 60; do log "... still building $component ($(( $(date +%s) - started ))s)"; done) &
  local ticker=$!
  # One `go build` for all of a component's commands: they share compilation.
  # `tool` expands to the commands named by our go.mod's tool lines.
  local what=tool
  [[ "$(tools_of "$component")" == . ]] && what=.
  if ! (cd "$modules/$component" &&
        go build -ldflags "$(ldflags_of "$component" "$version")" -o "$out.tmp/" $what); then
    kill "$ticker" 2>/dev/null || true
    log "building $component $version FAILED"
    return 1
  fi
  kill "$ticker" 2>/dev/null || true
  # etcd's main package is its module root: go names the binary after `server`.
  [[ -e "$out.tmp/server" ]] && mv "$out.tmp/server" "$out.tmp/etcd"
  if [[ "$component" == kueue ]] && ! kueue_manifests "$version" "$out.tmp"; then
    log "copying Kueue's manifests FAILED"
    return 1
  fi
  touch "$out.tmp/.complete"
  rm -rf "$out"
  mv "$out.tmp" "$out"
  log "built $component $version in $(( $(date +%s) - started ))s"
  echo "$out"
}

# Re-pin: a fresh go.mod requiring <module>@<version>, with tool lines; for
# Kubernetes every staging module (k8s.io/kubernetes requires them at v0.0.0 and
# replaces them with ./staging paths that do not exist outside its repository)
# is replaced by its published v0.x release of the same minor and patch.
pin() {
  local component="$1" version="$2" module dir staging gomod
  module="$(module_of "$component")"
  dir="$modules/$component"
  mkdir -p "$dir"
  rm -f "$dir/go.mod" "$dir/go.sum"
  printf 'module bodypose.dev/hack/cluster/%s\n\ngo 1.26\n' "$component" > "$dir/go.mod"
  if [[ "$component" == kubernetes ]]; then
    staging="v0${version#v1}"
    gomod="$(GOFLAGS= go mod download -json "$module@$version" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#replace \1 => \1 '"$staging"'#p' "$gomod" \
      >> "$dir/go.mod"
  fi
  local gets=()
  for tool in $(tools_of "$component"); do gets+=("$tool@$version"); done
  (cd "$dir" && GOFLAGS=-mod=mod go get -tool "${gets[@]}")
  if [[ "$component" == helm || "$component" == kwok ]]; then
    # Raise their k8s.io libraries to the ones our Kubernetes build uses: go's
    # build cache then compiles client-go, apimachinery, api... once for all
    # three (about 80 s less on a cold 2-core machine), and every client talks
    # to the API server with that release's libraries.
    local k8s_staging raise=()
    k8s_staging="$(awk '$1 == "replace" { print $2 "@" $5 } $2 == "=>" && $1 ~ /^k8s.io\// { print $1 "@" $4 }' \
      "$modules/kubernetes/go.mod")"
    for mod in $k8s_staging; do
      grep -q "^[[:space:]]*${mod%@*} v" "$dir/go.mod" && raise+=("$mod")
    done
    if [[ ${#raise[@]} -gt 0 ]]; then
      (cd "$dir" && GOFLAGS=-mod=mod go get "${raise[@]}" && GOFLAGS=-mod=mod go get -tool "${gets[@]}")
    fi
  fi
  log "pinned $component at $version in $dir (commit go.mod and go.sum)"
}

if [[ "${1:-}" == pin ]]; then
  [[ $# -eq 3 ]] || { log "usage: build.sh pin <component> <version>"; exit 2; }
  pin "$2" "$3"
  exit 0
fi

command -v go >/dev/null || { log "the Go toolchain (go 1.26+) is needed on PATH"; exit 1; }
components=("$@")
[[ ${#components[@]} -gt 0 ]] || components=("${default_components[@]}")
mkdir -p "$bin_cache"
# Two builders at once (make and a pytest session, two checkouts) would both
# spend minutes and race on the same directories: the second waits.
exec 9>"$bin_cache/.build.lock"
if ! flock -n 9; then
  log "another build holds $bin_cache/.build.lock; waiting for it"
  flock 9
fi
total_start=$(date +%s)
built=0
for component in "${components[@]}"; do
  module_of "$component" >/dev/null
  [[ -f "$(bin_dir "$component")/.complete" ]] || built=1
  build "$component"
done
(( built )) && log "all built in $(( $(date +%s) - total_start ))s"
exit 0
