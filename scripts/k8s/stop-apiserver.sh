#!/usr/bin/env bash
# Stop the control plane started by start-apiserver.sh (only the PIDs it recorded).
set -uo pipefail
state="${1:?usage: $0 STATE_DIR}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"
for name in apiserver etcd; do k8s_stop_pid "$state" "$name"; done
