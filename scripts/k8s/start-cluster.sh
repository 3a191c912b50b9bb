#!/usr/bin/env bash
# Start a real single-node Kubernetes cluster on this host (as root), built only from what the machine
# reaches: etcd + kube-apiserver (start-apiserver.sh), kube-controller-manager, kube-scheduler, kubelet
# and kube-proxy from the same k8s.io/kubernetes module (build-tools.sh node), a containerd instance of
# its own (Debian's package; own config, socket, root and state dirs - Docker's containerd is not
# touched) with runc, Debian's CNI plugins (bridge + host-local + portmap + loopback) and a pause image
# built here (cluster-image.sh pause).
#
#   scripts/k8s/start-cluster.sh [STATE_DIR]     (default $K8S_CLUSTER_ROOT/cluster)
#
# Prints progress and the time to a Ready node; writes STATE_DIR/admin.kubeconfig. Whatever fails, the
# EXIT trap runs stop-cluster.sh, which ends only the PIDs recorded here and removes only what this
# script created (bridge, its iptables chains, mounts under $K8S_CLUSTER_ROOT, changed sysctls).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"
k8s_cluster_head k8s-cluster "${1:-}"
die() { echo "start-cluster: $*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || die "must run as root (kubelet, containerd, CNI and iptables)"
bin() { local b="$K8S_CACHE_DIR/$1-$K8S_VERSION/$1"; [[ -x $b ]] || die "$b is missing: run make k8s-node-tools"; echo "$b"; }
kcm="$(bin kube-controller-manager)"; sched="$(bin kube-scheduler)"; kubelet="$(bin kubelet)"; proxy="$(bin kube-proxy)"
for c in containerd ctr runc iptables conntrack /usr/lib/cni/bridge /usr/lib/cni/host-local /usr/lib/cni/portmap /usr/lib/cni/loopback; do
  command -v "$c" >/dev/null || die "$c is missing: run make k8s-cluster-deps"
done
docker image inspect "$K8S_PAUSE_IMAGE" >/dev/null 2>&1 || die "$K8S_PAUSE_IMAGE is missing: run scripts/k8s/cluster-image.sh pause"

# One cluster at a time: a previous one must be stopped first (its PIDs are in the state dir).
if compgen -G "$state/*.pid" >/dev/null; then
  for f in "$state"/*.pid; do kill -0 "$(cat "$f")" 2>/dev/null && die "a cluster is running ($f): scripts/k8s/stop-cluster.sh $state"; done
fi
ip link show "$K8S_BRIDGE" >/dev/null 2>&1 && die "bridge $K8S_BRIDGE exists (a cluster was not stopped): scripts/k8s/stop-cluster.sh $state"
# The pod subnet must not be routed anywhere yet (Docker networks, the host's own).
ip route show | grep -q "^${K8S_POD_SUBNET} " && die "$K8S_POD_SUBNET is already routed: $(ip route show "$K8S_POD_SUBNET")"

rm -rf "$state" && mkdir -p "$state" "$K8S_CLUSTER_RUN" && chmod 700 "$state"
trap '[[ $? -eq 0 ]] || { echo "start-cluster: failed, stopping what was started (logs in $state)" >&2; "$here/stop-cluster.sh" "$state" >&2; }' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
node_ip="$(ip -o route get 1.1.1.1 | sed -n 's/.* src \([0-9.]*\).*/\1/p')"
[[ -n $node_ip ]] || die "cannot find the node IP (ip route get 1.1.1.1)"
echo "$node_ip" >"$state/node-ip"

# The kubelet (protectKernelDefaults=false) sets a few kernel tunables; record them so stop-cluster.sh
# puts the host's values back.
for s in vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes; do
  echo "$s=$(sysctl -n "$s")"
done >"$state/sysctl.orig"

# --- containerd: own config, socket, root and state; CRI plugin with runc (cgroupfs, as Docker here).
log "containerd (own instance, socket $K8S_CONTAINERD_SOCK)"
cni_conf="$K8S_CLUSTER_ROOT/cni/net.d"
mkdir -p "$K8S_CLUSTER_ROOT/containerd" "$K8S_CLUSTER_ROOT/opt" "$cni_conf" "$K8S_CLUSTER_ROOT/cni/ipam"
cgroup_driver=cgroupfs systemd_cgroup=false
[[ -f /sys/fs/cgroup/cgroup.controllers ]] && [[ -d /run/systemd/system ]] && { cgroup_driver=systemd; systemd_cgroup=true; }
cat >"$state/containerd.toml" <<TOML
version = 2
root = "$K8S_CLUSTER_ROOT/containerd"
state = "$K8S_CLUSTER_RUN/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$K8S_CONTAINERD_SOCK"
[ttrpc]
  address = "$K8S_CLUSTER_RUN/containerd-ttrpc.sock"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$K8S_CLUSTER_ROOT/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "docker.io/$K8S_PAUSE_IMAGE"
  enable_selinux = false
  # Pod network namespaces under our state dir, not the host's /run/netns.
  netns_mounts_under_state_dir = true
  # This host gives root no CAP_SYS_RESOURCE (CapEff lacks it; `echo -1 >/proc/self/oom_score_adj` is
  # refused), so runc cannot lower a container's oom_score_adj (the sandbox asks for -998) and fails with
  # "can't get final child's PID from pipe: EOF". Clamp to containerd's own score instead (as rootless does).
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        SystemdCgroup = $systemd_cgroup
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$cni_conf"
TOML
# firewall: br_netfilter is on here (Docker) and Docker's FORWARD policy is DROP, so pod-to-pod traffic
# on the bridge (e.g. to a headless Service's pod IP) is dropped unless the CNI-FORWARD chain accepts it.
cat >"$cni_conf/10-moodle-k8s.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "moodle-k8s",
  "plugins": [
    {"type": "bridge", "bridge": "$K8S_BRIDGE", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$K8S_CLUSTER_ROOT/cni/ipam",
              "ranges": [[{"subnet": "$K8S_POD_SUBNET"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "firewall", "backend": "iptables"}
  ]
}
JSON
containerd --config "$state/containerd.toml" >"$state/containerd.log" 2>&1 &
echo "$!" >"$state/containerd.pid"
for _ in $(seq 1 60); do ctr -a "$K8S_CONTAINERD_SOCK" version >/dev/null 2>&1 && break; sleep 0.5; done
ctr -a "$K8S_CONTAINERD_SOCK" version >/dev/null 2>&1 || { tail -20 "$state/containerd.log" >&2; die "containerd did not start"; }
"$here/cluster-image.sh" import "$K8S_PAUSE_IMAGE"

# --- etcd + kube-apiserver, bound to the node IP (pods reach it through the kubernetes Service).
log "etcd + kube-apiserver on $node_ip"
K8S_APISERVER_ADDRESS="$node_ip" K8S_APISERVER_KUBELET_CLIENT=1 \
K8S_APISERVER_AUTHZ=Node,RBAC K8S_APISERVER_EXTRA_ARGS="--endpoint-reconciler-type lease --kubelet-preferred-address-types InternalIP
  --service-cluster-ip-range $K8S_SERVICE_RANGE
  --enable-admission-plugins NamespaceLifecycle,ServiceAccount,LimitRanger,ResourceQuota,DefaultStorageClass,NodeRestriction,PodSecurity" \
  "$here/start-apiserver.sh" "$state" >/dev/null
pki="$state/pki"
server="$(cat "$state/server")"

# A kubeconfig with a client certificate for each component (identities the RBAC bootstrap knows).
component_kubeconfig() {
  local name="$1" subj="$2"
  k8s_sign "$pki" "$name" "$subj"
  cat >"$state/$name.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters: [{name: local, cluster: {server: "$server", certificate-authority: "$pki/ca.crt"}}]
users: [{name: $name, user: {client-certificate: "$pki/$name.crt", client-key: "$pki/$name.key"}}]
contexts: [{name: local, context: {cluster: local, user: $name}}]
current-context: local
KC
  chmod 600 "$state/$name.kubeconfig"
}
component_kubeconfig controller-manager "/CN=system:kube-controller-manager"
component_kubeconfig scheduler "/CN=system:kube-scheduler"
component_kubeconfig kubelet "/O=system:nodes/CN=system:node:$K8S_NODE_NAME"
component_kubeconfig kube-proxy "/CN=system:kube-proxy"

start() {  # start NAME CMD...: background, log and pid in the state dir
  local name="$1"; shift
  "$@" >"$state/$name.log" 2>&1 &
  echo "$!" >"$state/$name.pid"
}

log "kube-controller-manager + kube-scheduler"
start controller-manager "$kcm" --kubeconfig "$state/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$state/controller-manager.kubeconfig" --authorization-kubeconfig "$state/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$(free_port)" --leader-elect=false \
  --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" --use-service-account-credentials \
  --service-cluster-ip-range "$K8S_SERVICE_RANGE" --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key"
start scheduler "$sched" --kubeconfig "$state/scheduler.kubeconfig" \
  --authentication-kubeconfig "$state/scheduler.kubeconfig" --authorization-kubeconfig "$state/scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$(free_port)" --leader-elect=false

# --- kubelet: cgroup v1 is what this host has (failCgroupV1=false), no swap check, kernel tunables
# set by the kubelet (recorded above). Its ports are chosen free (10250 may be taken on a shared host).
log "kubelet (cgroup driver $cgroup_driver)"
kubelet_port="$(free_port)"
cat >"$state/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $node_ip
port: $kubelet_port
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $(free_port)
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://$K8S_CONTAINERD_SOCK
cgroupDriver: $cgroup_driver
failCgroupV1: false
failSwapOn: false
protectKernelDefaults: false
clusterDomain: cluster.local
clusterDNS: [$K8S_DNS_IP]
resolvConf: /etc/resolv.conf
evictionHard: {memory.available: "100Mi", nodefs.available: "2%", imagefs.available: "2%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
maxPods: 50
# Container logs under our own directory (the kubelet still links them from /var/log/containers).
podLogsDir: $K8S_CLUSTER_ROOT/pod-logs
YAML
mkdir -p "$K8S_CLUSTER_ROOT/kubelet"
start kubelet "$kubelet" --config "$state/kubelet.yaml" --kubeconfig "$state/kubelet.kubeconfig" \
  --root-dir "$K8S_CLUSTER_ROOT/kubelet" --cert-dir "$K8S_CLUSTER_ROOT/kubelet/pki" \
  --hostname-override "$K8S_NODE_NAME" --node-ip "$node_ip" --v 1

# --- kube-proxy (iptables): masquerade everything (the bridge's replies to a Service's client on the
# same node then go back through the host), leave conntrack sysctls and route_localnet alone.
log "kube-proxy (iptables mode)"
cat >"$state/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $state/kube-proxy.kubeconfig}
hostnameOverride: $K8S_NODE_NAME
mode: iptables
clusterCIDR: $K8S_POD_SUBNET
bindAddress: $node_ip
healthzBindAddress: 127.0.0.1:$(free_port)
metricsBindAddress: 127.0.0.1:$(free_port)
iptables: {masqueradeAll: true, localhostNodePorts: false}
conntrack: {maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
YAML
start kube-proxy "$proxy" --config "$state/kube-proxy.yaml"

# --- Wait for a Ready node (CNI config present, runtime up, kubelet registered).
token="$(sed -n 's/^ *token: //p' "$state/admin.kubeconfig")"
api() { curl -fsS --cacert "$pki/ca.crt" -H "Authorization: Bearer $token" "$server$1"; }
alive() {
  for name in containerd controller-manager scheduler kubelet kube-proxy; do
    kill -0 "$(cat "$state/$name.pid")" 2>/dev/null || { tail -30 "$state/$name.log" >&2; die "$name exited (log: $state/$name.log)"; }
  done
}
# wait_json WHAT URL PYTHON-EXPRESSION(o): poll the API until the expression is true (up to 120 s).
wait_json() {
  local what="$1" url="$2" expr="$3"
  for _ in $(seq 1 240); do
    alive
    api "$url" 2>/dev/null | python3 2>/dev/null -c "import json, sys; o = json.load(sys.stdin); sys.exit(0 if ($expr) else 1)" && return 0
    sleep 0.5
  done
  tail -30 "$state/kubelet.log" >&2
  die "$what not reached after 120 s"
}
log "waiting for node $K8S_NODE_NAME to be Ready"
wait_json "node Ready" "/api/v1/nodes/$K8S_NODE_NAME" \
  'any(c["type"] == "Ready" and c["status"] == "True" for c in o["status"].get("conditions", []))'
log "node $K8S_NODE_NAME Ready"

# --- Cluster DNS (CoreDNS as a pod; the kubelet hands $K8S_DNS_IP to every pod).
if docker image inspect "$K8S_COREDNS_IMAGE" >/dev/null 2>&1; then
  log "CoreDNS ($K8S_COREDNS_IMAGE) on $K8S_DNS_IP"
  "$here/cluster-image.sh" import "$K8S_COREDNS_IMAGE"
  "${PYTHON:-python3}" "$here/apply-addon.py" "$state/admin.kubeconfig" "$here/addons/coredns.yaml" \
    "IMAGE=docker.io/$K8S_COREDNS_IMAGE" "DNS_IP=$K8S_DNS_IP" >/dev/null
  wait_json "CoreDNS Ready" /apis/apps/v1/namespaces/kube-system/deployments/coredns 'o["status"].get("readyReplicas", 0) >= 1'
else
  log "no CoreDNS image ($K8S_COREDNS_IMAGE; make k8s-cluster-images): pods get no cluster DNS"
fi
echo "$((SECONDS - t0))" >"$state/start-seconds"
log "cluster up in $((SECONDS - t0))s (kubeconfig $state/admin.kubeconfig)"
