#!/usr/bin/env bash
# Build (once) and cache the binaries the Kubernetes tests need, from their Go modules:
#   etcd            go.etcd.io/etcd/server/v3
#   kube-apiserver  k8s.io/kubernetes/cmd/kube-apiserver, built from a small module of our own
#                   that pins every k8s.io staging module with a replace line (the envtest pattern)
#   helm            helm.sh/helm/v3/cmd/helm
# Binaries land in $K8S_CACHE_DIR/<tool>-<version>/; a second run only checks they exist.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
export GOFLAGS="${GOFLAGS:--buildvcs=false}" CGO_ENABLED=0 GOTOOLCHAIN=local

log() { printf '[k8s-tools %(%H:%M:%S)T] %s\n' -1 "$*"; }

# Go >= 1.26 (the machine image has it in /usr/local/go; Debian's golang is too old for Kubernetes 1.37).
command -v go >/dev/null || PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || { echo "go (>= 1.26) is required to build etcd, kube-apiserver and helm for the tests" >&2; exit 2; }
mkdir -p "$K8S_CACHE_DIR"

build_etcd() {
  local dir="$K8S_CACHE_DIR/etcd-$ETCD_VERSION"
  [[ -x $dir/etcd ]] && { log "etcd $ETCD_VERSION cached"; return; }
  log "building etcd $ETCD_VERSION (a few minutes on 2 cores)"
  # go.etcd.io/etcd/server/v3 carries replace lines, so `go install mod@version` refuses it;
  # a two-line main module of ours calls the same entry point etcd's own main.go does.
  local mod="$K8S_CACHE_DIR/.etcd-mod-$ETCD_VERSION"
  mkdir -p "$mod"
  cat >"$mod/go.mod" <<GOMOD
module moodle-platform/etcd-build

go 1.24

require go.etcd.io/etcd/server/v3 v$ETCD_VERSION
GOMOD
  cat >"$mod/main.go" <<'GO'
// Command etcd is etcd's own entry point, built for the Kubernetes test harness.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  (cd "$mod" && go mod tidy && go build -trimpath -ldflags "-s -w" -o "$mod/etcd" .)
  mkdir -p "$dir" && mv "$mod/etcd" "$dir/etcd"
  log "etcd ready: $dir/etcd"
}

build_helm() {
  local dir="$K8S_CACHE_DIR/helm-$HELM_VERSION-r$HELM_REV"
  [[ -x $dir/helm ]] && { log "helm $HELM_VERSION cached"; return; }
  log "building helm $HELM_VERSION"
  go mod download -json "helm.sh/helm/v3@v$HELM_VERSION" >/dev/null
  # Like helm's Makefile: the default Kubernetes version of `helm template` / `helm lint` comes from
  # the client-go it was built with (without these flags it claims v1.20 and refuses our charts).
  local helm_mod client_minor
  helm_mod="$(go env GOMODCACHE)/cache/download/helm.sh/helm/v3/@v/v$HELM_VERSION.mod"
  client_minor="$(sed -n 's#^\s*k8s.io/client-go v0\.\([0-9]*\)\..*#\1#p' "$helm_mod" | head -1)"
  [[ -n $client_minor ]] || { echo "cannot read the client-go version of helm $HELM_VERSION" >&2; exit 1; }
  local tmp; tmp="$(mktemp -d "$K8S_CACHE_DIR/.helm.XXXX")"
  GOBIN="$tmp" go install -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION \
    -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$client_minor \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$client_minor" \
    "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION"
  mkdir -p "$dir" && mv "$tmp/helm" "$dir/helm" && rmdir "$tmp"
  log "helm ready: $dir/helm"
}

build_apiserver() {
  local dir="$K8S_CACHE_DIR/kube-apiserver-$K8S_VERSION"
  [[ -x $dir/kube-apiserver ]] && { log "kube-apiserver $K8S_VERSION cached"; return; }
  log "building kube-apiserver $K8S_VERSION (long: 20-40 min on 2 cores the first time)"
  local mod="$K8S_CACHE_DIR/.apiserver-mod-$K8S_VERSION"
  mkdir -p "$mod"
  # Staging modules: k8s.io/kubernetes' own go.mod replaces them with ./staging paths, which do not
  # apply to a dependent module, so we pin each to its published vX.Y.Z twin.
  go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" >"$mod/kubernetes.json"
  local gomod; gomod="$(sed -n 's/.*"GoMod": "\(.*\)".*/\1/p' "$mod/kubernetes.json")"
  {
    echo "module moodle-platform/k8s-apiserver-build"
    echo
    echo "go $(sed -n 's/^go //p' "$gomod")"
    echo
    echo "require k8s.io/kubernetes v$K8S_VERSION"
    echo
    echo "replace ("
    sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\t\1 => \1 v'"$K8S_STAGING_VERSION"'#p' "$gomod"
    echo ")"
  } >"$mod/go.mod"
  cat >"$mod/tools.go" <<'GO'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
GO
  (cd "$mod" && go mod tidy -e >/dev/null 2>&1 || true
   cd "$mod" && go get "k8s.io/kubernetes/cmd/kube-apiserver@v$K8S_VERSION"
   mkdir -p "$mod/bin"
   go build -trimpath -o "$mod/bin/kube-apiserver" \
     -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=v$K8S_VERSION -X k8s.io/component-base/version.gitMajor=${K8S_VERSION%%.*} -X k8s.io/component-base/version.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2)" \
     k8s.io/kubernetes/cmd/kube-apiserver)
  mkdir -p "$dir" && mv "$mod/bin/kube-apiserver" "$dir/kube-apiserver"
  log "kube-apiserver ready: $dir/kube-apiserver"
}

case "${1:-all}" in
  etcd) build_etcd ;;
  helm) build_helm ;;
  kube-apiserver) build_apiserver ;;
  all) build_etcd; build_helm; build_apiserver; log "all tools cached under $K8S_CACHE_DIR" ;;
  *) echo "usage: $0 [all|etcd|helm|kube-apiserver]" >&2; exit 2 ;;
esac
