# Helpers sourced by scripts/k8s/*.sh.

# Sign a key pair with the test CA in $1.
#   k8s_sign PKI_DIR NAME SUBJECT [EXTENSIONS]   -> PKI_DIR/NAME.key, PKI_DIR/NAME.crt
# EXTENSIONS defaults to a client certificate (extendedKeyUsage=clientAuth).
k8s_sign() {
  local pki="$1" name="$2" subj="$3" ext="${4:-extendedKeyUsage=clientAuth}"
  openssl req -newkey rsa:2048 -nodes -subj "$subj" -keyout "$pki/$name.key" -out "$pki/$name.csr" 2>/dev/null
  printf '%s\n' "$ext" >"$pki/$name.ext"
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 2 -extfile "$pki/$name.ext" -out "$pki/$name.crt" 2>/dev/null
  chmod 600 "$pki/$name.key"
}

# Stop the process whose PID STATE_DIR/NAME.pid holds (only that PID): TERM, up to 10 s, then KILL.
#   k8s_stop_pid STATE_DIR NAME
k8s_stop_pid() {
  local f="$1/$2.pid" pid
  [[ -f $f ]] || return 0
  pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -f "$f"
}

# The common head of start-cluster.sh and stop-cluster.sh: the pinned versions and the cluster's
# layout (versions.env, cluster.env), STATE_DIR (default $K8S_CLUSTER_ROOT/cluster) in $state, and
# log() printing "[TAG hh:mm:ss +Ns] message" from the script's start.
#   k8s_cluster_head TAG [STATE_DIR]
k8s_cluster_head() {
  local dir="${BASH_SOURCE[0]%/*}"
  # shellcheck source=versions.env
  source "$dir/versions.env"
  # shellcheck source=cluster.env
  source "$dir/cluster.env"
  state="${2:-$K8S_CLUSTER_ROOT/cluster}"
  t0=$SECONDS
  K8S_LOG_TAG="$1"
}
log() { printf '[%s %(%H:%M:%S)T +%ss] %s\n' "${K8S_LOG_TAG:-k8s}" -1 "$((SECONDS - ${t0:-0}))" "$*"; }
