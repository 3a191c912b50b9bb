#!/usr/bin/env bash
# Build moodle-platform/moodle-operator:<tag> FROM moodle-platform/debian:bookworm.
# The context is assembled in a temp dir: the operator package, the chart, the shared backup
# manifest module and the cached helm binary (scripts/k8s/build-tools.sh helm).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
charts="$root/collections/ansible_collections/moodle/platform/charts"
# shellcheck source=versions.env
source "$here/versions.env"
tag="${1:-$(sed -n 's/^appVersion: *"\(.*\)"/\1/p' "$charts/moodle-operator/Chart.yaml")}"
helm="$K8S_CACHE_DIR/helm-$HELM_VERSION-r$HELM_REV/helm"
[[ -x $helm ]] || "$here/build-tools.sh" helm
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
cp "$root/operator/Dockerfile" "$root/operator/requirements.txt" "$helm" "$ctx/"
cp -r "$root/operator/moodle_operator" "$ctx/moodle_operator"
cp -r "$charts/moodle" "$ctx/chart"
pkg=ansible_collections/moodle/platform/plugins/module_utils/_backup; mkdir -p "$ctx/${pkg%/*}"; cp -r "$root/collections/$pkg" "$ctx/$pkg"
# Wheels for the image's Python (bookworm: CPython 3.11, x86_64), fetched here with the host's pip.
"${PYTHON:-python3}" -m pip download --quiet --only-binary=:all: --python-version 3.11 --implementation cp \
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
  --platform any -d "$ctx/wheels" -r "$root/operator/requirements.txt"
find "$ctx" -name __pycache__ -prune -exec rm -rf {} +
echo "building moodle-platform/moodle-operator:$tag"
docker build -t "moodle-platform/moodle-operator:$tag" "$ctx"
# Smoke check: the image imports the operator and renders the chart with its own helm.
docker run --rm --entrypoint /opt/moodle-operator/venv/bin/python "moodle-platform/moodle-operator:$tag" -c '
import getpass, json, subprocess
assert getpass.getuser() == "moodle-operator"  # kopf peering needs a named user
import moodle_operator.handlers  # noqa: F401  (imports kopf, kubernetes, the manifest module)
out = subprocess.run(["helm", "template", "s", "/opt/moodle-operator/charts/moodle", "--set", "auth.existingSecret=x"],
                     check=True, capture_output=True, text=True).stdout
print("operator image ok:", out.count("kind: Deployment"), "Deployments rendered")'
