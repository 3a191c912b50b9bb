#!/usr/bin/env bash
# Images for the single-node cluster, from the local Docker engine (no registry):
#   cluster-image.sh pause          build moodle-platform/k8s-pause (static pause binary FROM scratch)
#   cluster-image.sh coredns        build moodle-platform/k8s-coredns (CoreDNS from its Go module, FROM scratch)
#   cluster-image.sh all            both
#   cluster-image.sh import IMAGE.. copy images from Docker into the cluster's containerd (k8s.io namespace)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
# shellcheck source=cluster.env
source "$here/cluster.env"

build_pause() {
  if docker image inspect "$K8S_PAUSE_IMAGE" >/dev/null 2>&1; then echo "pause image $K8S_PAUSE_IMAGE present"; return; fi
  command -v go >/dev/null || PATH="$PATH:/usr/local/go/bin"
  local src ctx
  src="$(cd / && GOTOOLCHAIN=local go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
  ctx="$(mktemp -d)"; trap 'rm -rf "$ctx"' RETURN
  # The flags of kubernetes' build/pause/Makefile.
  gcc -Os -Wall -Werror -static -DVERSION="v$K8S_PAUSE_TAG" -o "$ctx/pause" "$src/build/pause/linux/pause.c"
  printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' >"$ctx/Dockerfile"
  docker build -q -t "$K8S_PAUSE_IMAGE" --label org.moodle-platform.k8s-cluster=pause "$ctx" >/dev/null
  echo "pause image $K8S_PAUSE_IMAGE built"
}

build_coredns() {
  if docker image inspect "$K8S_COREDNS_IMAGE" >/dev/null 2>&1; then echo "CoreDNS image $K8S_COREDNS_IMAGE present"; return; fi
  local bin="$K8S_CACHE_DIR/coredns-$COREDNS_VERSION-$COREDNS_FLAVOUR/coredns" ctx
  [[ -x $bin ]] || "$here/build-tools.sh" coredns
  ctx="$(mktemp -d)"; trap 'rm -rf "$ctx"' RETURN
  cp "$bin" "$ctx/coredns"
  printf 'FROM scratch\nCOPY coredns /coredns\nUSER 65534:65534\nENTRYPOINT ["/coredns"]\n' >"$ctx/Dockerfile"
  docker build -q -t "$K8S_COREDNS_IMAGE" --label org.moodle-platform.k8s-cluster=coredns "$ctx" >/dev/null
  echo "CoreDNS image $K8S_COREDNS_IMAGE built"
}

import_images() {
  local img id stamp
  for img in "$@"; do
    id="$(docker image inspect -f '{{.Id}}' "$img")"
    stamp="$K8S_CLUSTER_ROOT/imported/${img//[\/:]/_}"
    # Skip when this exact Docker image (same id) was imported into this containerd before.
    if [[ -f $stamp && "$(cat "$stamp")" == "$id" ]] &&
       ctr -a "$K8S_CONTAINERD_SOCK" -n k8s.io images ls -q | grep -qx "docker.io/$img"; then
      echo "image $img already in the cluster"; continue
    fi
    # A tag that already names another image here (a fixed tag such as the operator's, rebuilt): remove
    # it first and wait for containerd's garbage collection (--sync). Importing over it re-points the tag
    # before the new layers are unpacked, and the collection of the old image's snapshots can then remove a
    # parent the unpacking needs ("parent snapshot ... does not exist": stop 26's and ci28's k8s-e2e).
    if ctr -a "$K8S_CONTAINERD_SOCK" -n k8s.io images ls -q | grep -qx "docker.io/$img"; then
      ctr -a "$K8S_CONTAINERD_SOCK" -n k8s.io images rm --sync "docker.io/$img" >/dev/null
    fi
    echo "importing $img into the cluster's containerd"
    if ! docker save "$img" | ctr -a "$K8S_CONTAINERD_SOCK" -n k8s.io images import - >/dev/null; then
      # Once more from a clean tag if the unpacking still met a collected snapshot; a second failure is final.
      echo "import of $img failed (above); removing its tag and importing it once more" >&2
      ctr -a "$K8S_CONTAINERD_SOCK" -n k8s.io images rm --sync "docker.io/$img" >/dev/null 2>&1 || true
      docker save "$img" | ctr -a "$K8S_CONTAINERD_SOCK" -n k8s.io images import - >/dev/null
    fi
    mkdir -p "${stamp%/*}" && echo "$id" >"$stamp"
  done
}

case "${1:-}" in
  pause) build_pause ;;
  coredns) build_coredns ;;
  all) build_pause; build_coredns ;;
  import) shift; import_images "$@" ;;
  *) echo "usage: $0 pause | coredns | all | import IMAGE..." >&2; exit 2 ;;
esac
