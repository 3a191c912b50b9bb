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

# A main module of ours that requires k8s.io/kubernetes and pins every staging module with a replace
# line: k8s.io/kubernetes' own go.mod replaces them with ./staging paths, which do not apply to a
# dependent module, so each is pinned to its published v0.X.Y twin (the envtest pattern).
k8s_module() {
  local mod="$1" cmds="$2" gomod cmd
  mkdir -p "$mod"
  go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" >"$mod/kubernetes.json"
  gomod="$(sed -n 's/.*"GoMod": "\(.*\)".*/\1/p' "$mod/kubernetes.json")"
  {
    echo "module moodle-platform/k8s-build"
    echo
    echo "go $(sed -n 's/^go //p' "$gomod")"
    echo
    echo "require k8s.io/kubernetes v$K8S_VERSION"
    echo
    echo "replace ("
    sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\t\1 => \1 v'"$K8S_STAGING_VERSION"'#p' "$gomod"
    echo ")"
  } >"$mod/go.mod"
  { printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for cmd in $cmds; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$cmd"; done
    printf ')\n'; } >"$mod/tools.go"
  (cd "$mod" && go mod tidy -e >/dev/null 2>&1 || true
   for cmd in $cmds; do go get "k8s.io/kubernetes/cmd/$cmd@v$K8S_VERSION"; done)
}

# Build one k8s.io/kubernetes command from MODULE into $K8S_CACHE_DIR/<cmd>-<version>/ (niced: the
# machine has 2 cores and other work on it).
k8s_build_cmd() {
  local mod="$1" cmd="$2" dir="$K8S_CACHE_DIR/$2-$K8S_VERSION"
  mkdir -p "$mod/bin"
  (cd "$mod" && nice -n 10 go build -trimpath -o "$mod/bin/$cmd" \
     -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=v$K8S_VERSION -X k8s.io/component-base/version.gitMajor=${K8S_VERSION%%.*} -X k8s.io/component-base/version.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2)" \
     "k8s.io/kubernetes/cmd/$cmd")
  mkdir -p "$dir" && mv "$mod/bin/$cmd" "$dir/$cmd"
  log "$cmd ready: $dir/$cmd"
}

build_apiserver() {
  local dir="$K8S_CACHE_DIR/kube-apiserver-$K8S_VERSION"
  [[ -x $dir/kube-apiserver ]] && { log "kube-apiserver $K8S_VERSION cached"; return; }
  log "building kube-apiserver $K8S_VERSION (long: 20-40 min on 2 cores the first time)"
  local mod="$K8S_CACHE_DIR/.apiserver-mod-$K8S_VERSION"
  k8s_module "$mod" kube-apiserver
  k8s_build_cmd "$mod" kube-apiserver
}

# The rest of a single-node cluster (make k8s-cluster): controller-manager, scheduler, kubelet and
# kube-proxy from the same k8s.io/kubernetes version as the API server, in ONE `go build` (their own
# main module resolves exactly the API server's dependency versions, so the packages they share with it
# come from Go's build cache).
K8S_NODE_CMDS="kube-controller-manager kube-scheduler kubelet kube-proxy"
build_node() {
  local cmd missing="" pkgs=()
  for cmd in $K8S_NODE_CMDS; do
    if [[ -x $K8S_CACHE_DIR/$cmd-$K8S_VERSION/$cmd ]]; then log "$cmd $K8S_VERSION cached"; else missing+=" $cmd"; fi
  done
  [[ -n $missing ]] || return 0
  local mod="$K8S_CACHE_DIR/.node-mod-$K8S_VERSION" started=$SECONDS
  log "building$missing $K8S_VERSION in one go build (~15 min on 2 cores after the API server's build)"
  k8s_module "$mod" "$K8S_NODE_CMDS"
  for cmd in $missing; do pkgs+=("k8s.io/kubernetes/cmd/$cmd"); done
  rm -rf "$mod/bin" && mkdir -p "$mod/bin"
  (cd "$mod" && nice -n 10 go build -trimpath -o "$mod/bin/" \
     -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=v$K8S_VERSION -X k8s.io/component-base/version.gitMajor=${K8S_VERSION%%.*} -X k8s.io/component-base/version.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2)" \
     "${pkgs[@]}")
  for cmd in $missing; do
    mkdir -p "$K8S_CACHE_DIR/$cmd-$K8S_VERSION" && mv "$mod/bin/$cmd" "$K8S_CACHE_DIR/$cmd-$K8S_VERSION/$cmd"
    log "$cmd ready: $K8S_CACHE_DIR/$cmd-$K8S_VERSION/$cmd"
  done
  log "node binaries built in $((SECONDS - started))s"
}

# CoreDNS with only the plugins the cluster's Corefile uses (scripts/k8s/addons/coredns.yaml), from a
# main package of ours importing them (CoreDNS' documented way to choose plugins at compile time): none
# of the cloud DNS back-ends (AWS, Azure, GCP SDKs), etcd, tracing or dnstap is compiled. Its own module:
# CoreDNS needs newer grpc/protobuf than Kubernetes pins, and sharing one module would move the kube
# binaries off the versions they are released with (and off the API server's build cache).
COREDNS_PLUGINS="errors health ready kubernetes forward cache loop"
build_coredns() {
  local dir="$K8S_CACHE_DIR/coredns-$COREDNS_VERSION-$COREDNS_FLAVOUR"
  [[ -x $dir/coredns ]] && { log "coredns $COREDNS_VERSION ($COREDNS_FLAVOUR) cached"; return; }
  local mod="$K8S_CACHE_DIR/.coredns-mod-$COREDNS_VERSION-$COREDNS_FLAVOUR" started=$SECONDS p
  log "building coredns $COREDNS_VERSION with the plugins: $COREDNS_PLUGINS (a few minutes on 2 cores)"
  mkdir -p "$mod"
  printf 'module moodle-platform/coredns-build\n\ngo 1.26\n\nrequire github.com/coredns/coredns v%s\n' "$COREDNS_VERSION" >"$mod/go.mod"
  { printf '// Command coredns is CoreDNS with only the plugins the test cluster uses.\npackage main\n\nimport (\n'
    for p in $COREDNS_PLUGINS; do printf '\t_ "github.com/coredns/coredns/plugin/%s"\n' "$p"; done
    printf '\n\t"github.com/coredns/coredns/coremain"\n)\n\nfunc main() { coremain.Run() }\n'; } >"$mod/main.go"
  (cd "$mod" && go mod tidy && nice -n 10 go build -trimpath -o "$mod/coredns" \
     -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=v$COREDNS_VERSION-$COREDNS_FLAVOUR" .)
  mkdir -p "$dir" && mv "$mod/coredns" "$dir/coredns"
  log "coredns ready: $dir/coredns (built in $((SECONDS - started))s)"
}

case "${1:-all}" in
  etcd) build_etcd ;;
  helm) build_helm ;;
  kube-apiserver) build_apiserver ;;
  node) build_node; build_coredns ;;
  coredns) build_coredns ;;
  all) build_etcd; build_helm; build_apiserver; log "all tools cached under $K8S_CACHE_DIR" ;;
  *) echo "usage: $0 [all|etcd|helm|kube-apiserver|node|coredns]" >&2; exit 2 ;;
esac
