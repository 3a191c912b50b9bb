#!/usr/bin/env bash
# Start a real, throwaway Kubernetes control plane (etcd + kube-apiserver; no scheduler,
# controller-manager or kubelet) on 127.0.0.1 for the tests: the envtest pattern.
#
#   scripts/k8s/start-apiserver.sh STATE_DIR
#
# Writes into STATE_DIR: pki/ (CA, serving cert, service-account keys), tokens.csv (admin token),
# admin.kubeconfig, pids, and logs. Authorization is RBAC (the admin is in system:masters; other
# identities, such as the operator's ServiceAccount, get only what RBAC grants them).
# Stop it with scripts/k8s/stop-apiserver.sh STATE_DIR.
#
# start-cluster.sh reuses it for a real single-node cluster through the environment:
#   K8S_APISERVER_ADDRESS        address to bind and advertise (default 127.0.0.1)
#   K8S_APISERVER_KUBELET_CLIENT 1: also sign a client certificate the API server uses towards kubelets
#   K8S_APISERVER_AUTHZ          --authorization-mode (default RBAC)
#   K8S_APISERVER_EXTRA_ARGS     more kube-apiserver flags (a later scalar flag overrides an earlier one)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
# shellcheck source=lib.sh
source "$here/lib.sh"
addr="${K8S_APISERVER_ADDRESS:-127.0.0.1}"
state="${1:?usage: $0 STATE_DIR}"
etcd_bin="$K8S_CACHE_DIR/etcd-$ETCD_VERSION/etcd"
apiserver_bin="$K8S_CACHE_DIR/kube-apiserver-$K8S_VERSION/kube-apiserver"
for b in "$etcd_bin" "$apiserver_bin"; do
  [[ -x $b ]] || { echo "$b is missing: run scripts/k8s/build-tools.sh first" >&2; exit 2; }
done
mkdir -p "$state/pki" "$state/etcd-data" && chmod 700 "$state"
pki="$state/pki"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# --- PKI: a CA, the apiserver's serving cert for 127.0.0.1, and service-account signing keys.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=moodle-platform-test-ca" \
  -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
# 10.96.0.1 is the `kubernetes` Service's ClusterIP (what pods of a real cluster connect to).
k8s_sign "$pki" apiserver "/CN=kube-apiserver" "subjectAltName=IP:127.0.0.1,IP:$addr,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
extendedKeyUsage=serverAuth"
extra_args=()
if [[ ${K8S_APISERVER_KUBELET_CLIENT:-} == 1 ]]; then
  k8s_sign "$pki" apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
  extra_args+=(--kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" --kubelet-client-key "$pki/apiserver-kubelet-client.key")
fi
# shellcheck disable=SC2206  # flags without spaces, split on purpose
extra_args+=(${K8S_APISERVER_EXTRA_ARGS:-})
openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
admin_token="$(openssl rand -hex 24)"
printf '%s,test-admin,test-admin-uid,"system:masters"\n' "$admin_token" >"$state/tokens.csv"
chmod 600 "$pki"/*.key "$state/tokens.csv"

# Whatever fails below, do not leave a half-started control plane behind.
trap '[[ $? -eq 0 ]] || "$here/stop-apiserver.sh" "$state"' EXIT

etcd_port="$(free_port)"; peer_port="$(free_port)"; api_port="$(free_port)"

# --- etcd (single member, no fsync: test data only).
"$etcd_bin" --name test --data-dir "$state/etcd-data" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-cluster "test=http://127.0.0.1:$peer_port" --unsafe-no-fsync --log-level warn \
  >"$state/etcd.log" 2>&1 &
echo "$!" >"$state/etcd.pid"

# --- kube-apiserver.
"$apiserver_bin" \
  --etcd-servers "http://127.0.0.1:$etcd_port" \
  --bind-address "$addr" --advertise-address "$addr" --secure-port "$api_port" \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --client-ca-file "$pki/ca.crt" \
  --token-auth-file "$state/tokens.csv" \
  --authorization-mode "${K8S_APISERVER_AUTHZ:-RBAC}" \
  --service-account-issuer https://kubernetes.default.svc \
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
  --api-audiences https://kubernetes.default.svc \
  --service-cluster-ip-range 10.96.0.0/16 \
  --allow-privileged=false \
  --endpoint-reconciler-type none \
  --enable-admission-plugins NamespaceLifecycle,ServiceAccount,LimitRanger,ResourceQuota,DefaultStorageClass \
  --disable-admission-plugins StorageObjectInUseProtection \
  --cert-dir "$state/pki" \
  "${extra_args[@]}" \
  >"$state/apiserver.log" 2>&1 &
echo "$!" >"$state/apiserver.pid"

server="https://$addr:$api_port"
cat >"$state/admin.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
  - name: test
    cluster:
      server: $server
      certificate-authority: $pki/ca.crt
users:
  - name: test-admin
    user:
      token: $admin_token
contexts:
  - name: test
    context: {cluster: test, user: test-admin}
current-context: test
KC
chmod 600 "$state/admin.kubeconfig"
echo "$server" >"$state/server"

# Wait until the API answers /readyz (RBAC bootstrap roles are created before it turns ready).
for _ in $(seq 1 120); do
  if curl -fsS --cacert "$pki/ca.crt" -H "Authorization: Bearer $admin_token" "$server/readyz" >/dev/null 2>&1; then
    echo "kube-apiserver ready at $server (state in $state)"
    exit 0
  fi
  kill -0 "$(cat "$state/apiserver.pid")" 2>/dev/null || { echo "kube-apiserver exited:" >&2; tail -30 "$state/apiserver.log" >&2; exit 1; }
  sleep 0.5
done
echo "kube-apiserver did not become ready in 60 s:" >&2
tail -30 "$state/apiserver.log" >&2
exit 1
