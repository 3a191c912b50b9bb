#!/usr/bin/env bash
# Stop the single-node cluster started by start-cluster.sh and remove what it created: only the PIDs it
# recorded, the pod sandboxes (through the kubelet, so the CNI plugins release their veths and IPs),
# the containers left in its own containerd, mounts under its own directories, its bridge, the KUBE-* and
# CNI-* iptables chains, and the kernel tunables the kubelet changed. Images stay in its containerd
# (the next start does not import them again). Docker and its containerd are not touched.
#
#   scripts/k8s/stop-cluster.sh [STATE_DIR]
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"
k8s_cluster_head k8s-cluster-stop "${1:-}"
ctr_() { ctr -a "$K8S_CONTAINERD_SOCK" -n k8s.io "$@"; }
running() { [[ -f $state/$1.pid ]] && kill -0 "$(cat "$state/$1.pid")" 2>/dev/null; }
stop_pid() { k8s_stop_pid "$state" "$1"; }

# 1. No new pods (controllers and scheduler off), then every pod deleted at once; the kubelet stops
#    their sandboxes (CNI DEL). Wait until containerd has no running task.
stop_pid controller-manager; stop_pid scheduler
if running kubelet && running apiserver && [[ -f $state/admin.kubeconfig ]]; then
  log "deleting all pods (the kubelet stops their sandboxes)"
  server="$(cat "$state/server")"; token="$(sed -n 's/^ *token: //p' "$state/admin.kubeconfig")"
  curl -fsS --cacert "$state/pki/ca.crt" -H "Authorization: Bearer $token" "$server/api/v1/pods" 2>/dev/null |
    python3 -c 'import json, sys; [print(p["metadata"]["namespace"], p["metadata"]["name"]) for p in json.load(sys.stdin)["items"]]' |
    while read -r ns name; do
      curl -fsS -X DELETE --cacert "$state/pki/ca.crt" -H "Authorization: Bearer $token" \
        "$server/api/v1/namespaces/$ns/pods/$name?gracePeriodSeconds=0" >/dev/null 2>&1
    done
  for _ in $(seq 1 120); do
    [[ -z "$(ctr_ tasks ls 2>/dev/null | awk 'NR>1 && $3=="RUNNING"')" ]] && break; sleep 0.5
  done
fi
stop_pid kubelet
if running kube-proxy; then
  stop_pid kube-proxy
  "$K8S_CACHE_DIR/kube-proxy-$K8S_VERSION/kube-proxy" --cleanup >/dev/null 2>&1 || true
fi

# 2. Anything still running in our containerd: kill, delete tasks and containers; then containerd.
if running containerd; then
  for id in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s SIGKILL "$id" >/dev/null 2>&1; done
  for id in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks delete -f "$id" >/dev/null 2>&1; done
  for id in $(ctr_ containers ls -q 2>/dev/null); do ctr_ containers delete "$id" >/dev/null 2>&1; done
  log "stopping containerd"
  stop_pid containerd
fi

# 3. Control plane.
"$here/stop-apiserver.sh" "$state"

# 4. Mounts under our directories (pod volumes, container rootfs, pod netns), deepest first.
findmnt -rn -o TARGET | grep -E "^($K8S_CLUSTER_ROOT|$K8S_CLUSTER_RUN)/" | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done

# 5. Network: our bridge, the CNI plugins' and Kubernetes' iptables chains (never Docker's).
ip link show "$K8S_BRIDGE" >/dev/null 2>&1 && { log "removing bridge $K8S_BRIDGE"; ip link delete "$K8S_BRIDGE"; }
for ipt in iptables ip6tables; do
  for table in filter nat mangle; do
    chains="$($ipt -t "$table" -S 2>/dev/null | awk '$1=="-N" && ($2 ~ /^KUBE-/ || $2 ~ /^CNI-/) {print $2}')"
    [[ -n $chains ]] || continue
    # Rules that jump to one of these chains, from any chain, first; then flush and delete the chains.
    $ipt -t "$table" -S | grep -E -- "-j (KUBE-|CNI-)" | sed 's/^-A /-D /' | while read -r rule; do
      eval "$ipt -t $table $rule" 2>/dev/null
    done
    for c in $chains; do $ipt -t "$table" -F "$c" 2>/dev/null; done
    for c in $chains; do $ipt -t "$table" -X "$c" 2>/dev/null; done
  done
done
rm -rf "$K8S_CLUSTER_ROOT/cni/ipam" "$K8S_CLUSTER_ROOT/kubelet/pods" "$K8S_CLUSTER_ROOT/pod-logs"
# The kubelet's links to our pods' logs in /var/log/containers (only those pointing into our dir).
for l in /var/log/containers/*.log; do
  [[ -L $l && "$(readlink "$l")" == "$K8S_CLUSTER_ROOT/pod-logs/"* ]] && rm -f "$l"
done
# The kubelet's (now empty) kubepods cgroups, in every hierarchy.
for cg in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
  [[ -d $cg ]] && find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null
done

# 6. Kernel tunables the kubelet changed: back to the host's values.
if [[ -f $state/sysctl.orig ]]; then
  while IFS== read -r key value; do
    [[ "$(sysctl -n "$key" 2>/dev/null)" == "$value" ]] || sysctl -qw "$key=$value"
  done <"$state/sysctl.orig"
fi
log "cluster stopped (state and logs kept in $state)"
