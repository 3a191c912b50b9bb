#!/usr/bin/env bash
# Stop the control plane started by start-apiserver.sh (only the PIDs it recorded).
set -uo pipefail
state="${1:?usage: $0 STATE_DIR}"
for name in apiserver etcd; do
  pidfile="$state/$name.pid"
  [[ -f $pidfile ]] || continue
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -f "$pidfile"
done
