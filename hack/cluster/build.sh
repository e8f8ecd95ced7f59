#!/usr/bin/env bash
# Build the local control plane's binaries from their Go modules, at pinned versions,
# into a cache keyed by version: ${BODYPOSE_CACHE:-~/.cache/bodypose-export}/bin/<tool>-<version>/.
# Nothing is downloaded but Go modules through the module proxy.
#
#   hack/cluster/build.sh            build whatever is missing, print the bin dirs
#   hack/cluster/build.sh kubernetes build one tool (kubernetes|etcd|kwok|helm)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
cache="${BODYPOSE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bodypose-export}"
export GOFLAGS="${GOFLAGS:--trimpath}"
export CGO_ENABLED=0
ldflags="-s -w"

log() { printf '[build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# A throwaway module that requires $module@$version, so `go build` can name its packages.
# extra_go_mod is appended to go.mod (replace lines).
build_in_module() {
  local tool="$1" module="$2" version="$3" out="$4" extra_go_mod="$5"; shift 5
  local work="$cache/src/$tool-$version"
  mkdir -p "$work" "$out.tmp"
  cat > "$work/go.mod" <<MOD
module bodypose.dev/tools/$tool

go 1.26

require $module $version
$extra_go_mod
MOD
  printf 'package tools\n' > "$work/tools.go"
  local gets=()
  for pkg in "$@"; do gets+=("$pkg@$version"); done
  # `go get pkg@version` records exactly the go.sum entries these packages need.
  (cd "$work" && go get "${gets[@]}" && go build -ldflags "$ldflags" -o "$out.tmp/" "$@")
  mv "$out.tmp" "$out"
}

build_kubernetes() {
  local out="$cache/bin/kubernetes-$KUBERNETES_VERSION"
  [[ -x "$out/kube-apiserver" ]] && { echo "$out"; return; }
  log "kubernetes $KUBERNETES_VERSION: kube-apiserver, kube-controller-manager, kube-scheduler, kubectl"
  # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with
  # local paths; map each to the matching published v0.x release instead.
  local staging_version="v0${KUBERNETES_VERSION#v1}"
  local gomod
  gomod="$(GOFLAGS= go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  local replaces
  replaces="$(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#replace \1 => \1 '"$staging_version"'#p' "$gomod")"
  rm -rf "$out.tmp"
  build_in_module kubernetes k8s.io/kubernetes "$KUBERNETES_VERSION" "$out" "$replaces" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
  echo "$out"
}

build_etcd() {
  local out="$cache/bin/etcd-$ETCD_VERSION"
  [[ -x "$out/etcd" ]] && { echo "$out"; return; }
  log "etcd $ETCD_VERSION"
  rm -rf "$out.tmp"
  build_in_module etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION" "$out" "" go.etcd.io/etcd/server/v3
  # The main package is the module root, whose directory is named `server`.
  mv "$out/server" "$out/etcd"
  echo "$out"
}

build_kwok() {
  local out="$cache/bin/kwok-$KWOK_VERSION"
  [[ -x "$out/kwok" ]] && { echo "$out"; return; }
  log "kwok $KWOK_VERSION"
  rm -rf "$out.tmp"
  build_in_module kwok sigs.k8s.io/kwok "$KWOK_VERSION" "$out" "" sigs.k8s.io/kwok/cmd/kwok
  echo "$out"
}

build_helm() {
  local out="$cache/bin/helm-$HELM_VERSION"
  [[ -x "$out/helm" ]] && { echo "$out"; return; }
  log "helm $HELM_VERSION"
  rm -rf "$out.tmp"
  build_in_module helm helm.sh/helm/v3 "$HELM_VERSION" "$out" "" helm.sh/helm/v3/cmd/helm
  echo "$out"
}

start=$(date +%s)
tools=("$@")
[[ ${#tools[@]} -gt 0 ]] || tools=(etcd kubernetes kwok helm)
for tool in "${tools[@]}"; do
  "build_$tool"
done
log "done in $(( $(date +%s) - start ))s"
