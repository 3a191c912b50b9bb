#!/bin/sh
# Entry point of the Debian-built monitoring image.  As root: copy the secret files this service
# was given (/run/secrets, root-only bind mounts) into a tmpfs directory only the prometheus user
# can read, then drop to that user.  *_FILE variables are read into the process environment only
# (never into the container definition, so never in `docker inspect`).
set -eu
if [ "$(id -u)" = 0 ] && [ "${MONITORING_KEEP_ROOT:-0}" != 1 ]; then
  if [ -d /run/secrets ]; then
    # Root has no DAC_OVERRIDE here: fill the directory while root owns it, hand it over last.
    install -d -m 0700 /run/monitoring-secrets
    for secret in /run/secrets/*; do
      [ -f "$secret" ] || continue
      install -m 0400 "$secret" "/run/monitoring-secrets/$(basename "$secret")"
      chown prometheus:prometheus "/run/monitoring-secrets/$(basename "$secret")"
    done
    chown prometheus:prometheus /run/monitoring-secrets
  fi
  exec setpriv --reuid=prometheus --regid=prometheus --init-groups --inh-caps=-all "$0" "$@"
fi
if [ -n "${REDIS_PASSWORD_FILE:-}" ]; then
  REDIS_PASSWORD="$(cat "$REDIS_PASSWORD_FILE")"
  export REDIS_PASSWORD
  unset REDIS_PASSWORD_FILE
fi
exec "$@"
