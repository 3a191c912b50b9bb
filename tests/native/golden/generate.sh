#!/bin/bash
# Regenerate tests/native/golden/cases.json by running Moodle's own gradebook code (see README.md).
#   bash tests/native/golden/generate.sh /path/to/moodle-4.5
set -euo pipefail
MOODLE_SRC=${1:?usage: generate.sh /path/to/moodle-4.5}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
CACHE=${NATIVE_CACHE:-/var/cache/moodle-platform/native}/golden
PY=${PY:-$ROOT/.venv/bin/python}
mkdir -p "$CACHE"
echo "golden: building the harness image (bookworm + php8.2 + MariaDB)"
docker build -q -t moodle-platform/native-golden:dev "$HERE" >/dev/null
# GOLDEN_SET=site: only the setting cases (unlimitedgrades, minmaxtouse), into cases_site.json.
if [ "${GOLDEN_SET:-main}" = site ]; then
  IN=in-site.json OUT=out-site.json DEST=cases_site.json SET=site RANDOM_CASES=${GOLDEN_RANDOM_CASES:-80}
else
  IN=in.json OUT=out.json DEST=cases.json SET=main RANDOM_CASES=${GOLDEN_RANDOM_CASES:-200}
fi
echo "golden: writing input cases ($SET)"
"$PY" "$HERE/make_cases.py" "$CACHE/$IN" "$RANDOM_CASES" "$SET"
echo "golden: regrading them with Moodle $(grep -o "release *= *'[^']*'" "$MOODLE_SRC/version.php") (first run installs Moodle, ~6 min)"
docker run --rm --name native-golden \
  -v "$MOODLE_SRC:/moodle-src:ro" -v "$CACHE:/cache" -v "$HERE:/harness:ro" \
  moodle-platform/native-golden:dev "/cache/$IN" "/cache/$OUT" 2>&1 | grep -E '^golden:|Exception|Error' || true
"$PY" "$HERE/finalize.py" "$CACHE/$OUT" "$HERE/$DEST" "$MOODLE_SRC"
