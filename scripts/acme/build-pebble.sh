#!/usr/bin/env bash
# Build (once) and cache Pebble, Let's Encrypt's ACME TEST server (github.com/letsencrypt/pebble/v2, a Go
# module; not a real CA), and a local image of it for the prod overlay's ACME test (no registry):
#   $ACME_CACHE_DIR/pebble-<version>/pebble            the binary
#   $ACME_CACHE_DIR/pebble-<version>/certs/            Pebble's own listener certificate and the minica root
#                                                      that signs it (pebble.minica.pem: what a client trusts)
#   image moodle-platform-test/pebble:<version>        FROM moodle-platform/debian:bookworm
# Pebble's config here: ACME on :14000, management API on :15000, validation of the TLS-ALPN challenge on
# port 443 and of HTTP-01 on port 80 (what a real CA uses).  A second run only checks the cache and image.
set -euo pipefail
PEBBLE_VERSION=${PEBBLE_VERSION:-2.10.3}
ACME_CACHE_DIR=${ACME_CACHE_DIR:-/var/cache/moodle-platform/acme}
IMAGE=moodle-platform-test/pebble:$PEBBLE_VERSION
dir="$ACME_CACHE_DIR/pebble-$PEBBLE_VERSION"
export GOFLAGS="${GOFLAGS:--buildvcs=false}" CGO_ENABLED=0 GOTOOLCHAIN=local
command -v go >/dev/null || PATH="$PATH:/usr/local/go/bin"
log() { printf '[pebble %(%H:%M:%S)T] %s\n' -1 "$*"; }

if [[ -x $dir/pebble && -s $dir/certs/pebble.minica.pem ]]; then
  log "pebble $PEBBLE_VERSION cached in $dir"
else
  command -v go >/dev/null || { echo "go is required to build Pebble (github.com/letsencrypt/pebble/v2)" >&2; exit 2; }
  start=$(date +%s)
  log "building pebble $PEBBLE_VERSION from its Go module"
  tmp="$dir.tmp"; rm -rf "$tmp"; mkdir -p "$tmp/certs"
  GOBIN="$tmp" go install "github.com/letsencrypt/pebble/v2/cmd/pebble@v$PEBBLE_VERSION"
  src=$(cd / && go mod download -json "github.com/letsencrypt/pebble/v2@v$PEBBLE_VERSION" \
        | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
  cp "$src/test/certs/pebble.minica.pem" "$src/test/certs/localhost/cert.pem" "$src/test/certs/localhost/key.pem" "$tmp/certs/"
  cat >"$tmp/pebble-config.json" <<'JSON'
{
  "pebble": {
    "listenAddress": "0.0.0.0:14000",
    "managementListenAddress": "0.0.0.0:15000",
    "certificate": "/etc/pebble/certs/cert.pem",
    "privateKey": "/etc/pebble/certs/key.pem",
    "httpPort": 80,
    "tlsPort": 443,
    "ocspResponderURL": "",
    "externalAccountBindingRequired": false
  }
}
JSON
  rm -rf "$dir"; mv "$tmp" "$dir"
  log "pebble ready in $(( $(date +%s) - start )) s: $dir"
fi

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  log "image $IMAGE present"
else
  ctx=$(mktemp -d); trap 'rm -rf "$ctx"' EXIT
  cp -r "$dir/pebble" "$dir/certs" "$dir/pebble-config.json" "$ctx/"
  cat >"$ctx/Dockerfile" <<'DOCKERFILE'
# Pebble, the ACME TEST server (not a CA to trust for anything real), for the ACME test of the prod overlay.
FROM moodle-platform/debian:bookworm
COPY pebble /usr/local/bin/pebble
COPY certs/ /etc/pebble/certs/
COPY pebble-config.json /etc/pebble/pebble-config.json
USER 65534:65534
EXPOSE 14000 15000
CMD ["pebble", "-config", "/etc/pebble/pebble-config.json"]
DOCKERFILE
  docker build -q -t "$IMAGE" --label org.moodle-platform.test=pebble "$ctx" >/dev/null
  log "image $IMAGE built ($(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
fi
