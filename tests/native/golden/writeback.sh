#!/bin/bash
# Write-back equality in a real Moodle (issue 13 section 2): the golden harness builds the cases with
# Moodle's API, and for each one compares Moodle's grade_regrade_final_grades() with
# local_nativegrades' native regrade (PHP engine and extension) from the same starting state, table
# by table (writeback.php).  Needs the harness's installed Moodle (generate.sh) and the built extension.
#   bash tests/native/golden/writeback.sh /path/to/moodle-4.5 [random cases, default 40] [every n-th case only]
set -euo pipefail
MOODLE_SRC=${1:?usage: writeback.sh /path/to/moodle-4.5 [random cases]}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
CACHE=${NATIVE_CACHE:-/var/cache/moodle-platform/native}
ARTIFACTS=${NATIVE_ARTIFACTS:-$CACHE/artifacts}
PY=${PY:-$ROOT/.venv/bin/python}
echo "golden: building the harness image (bookworm + php8.2 + MariaDB)"
docker build -q -t moodle-platform/native-golden:dev "$HERE" >/dev/null
"$PY" "$HERE/make_cases.py" "$CACHE/golden/in-writeback.json" "${2:-40}" writeback ${3:-}
# WRITEBACK_FIXTURE=1: also write the CI fixture of test_writeback.py (each course's starting rows and
# settings + what Moodle's regrade left) and the grade tables' schema as Moodle's installer made them.
FIXTURE_ENV=()
[ -n "${WRITEBACK_FIXTURE:-}" ] && FIXTURE_ENV=(-e GOLDEN_WRITEBACK_FIXTURE=/cache/writeback-fixture.json)
docker run --rm --name native-golden-writeback -e GOLDEN_WRITEBACK=1 "${FIXTURE_ENV[@]}" \
  -v "$MOODLE_SRC:/moodle-src:ro" -v "$CACHE/golden:/cache" -v "$HERE:/harness:ro" \
  -v "$ROOT/moodle-plugins/local_nativegrades:/plugin:ro" -v "$ARTIFACTS/php:/ext:ro" \
  moodle-platform/native-golden:dev /cache/in-writeback.json /cache/out-writeback.json 2>&1 \
  | grep -E '^golden:|Exception|Error' || true
"$PY" "$HERE/writeback_report.py" "$CACHE/golden/out-writeback.json.writeback.json"
if [ -n "${WRITEBACK_FIXTURE:-}" ]; then
  "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); json.dump(d, open(sys.argv[2], "w"), indent=0, sort_keys=True)' \
    "$CACHE/golden/writeback-fixture.json" "$HERE/cases_writeback.json"
  cp "$CACHE/golden/writeback-schema.sql" "$HERE/../writeback/schema.sql"
  echo "golden: wrote $HERE/cases_writeback.json and tests/native/writeback/schema.sql"
fi
