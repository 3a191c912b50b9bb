"""Turn the harness output into tests/native/golden/cases.json with its provenance."""

from __future__ import annotations

import datetime
import json
import re
import sys
from pathlib import Path

out_file, dest, moodle_src = sys.argv[1:4]
data = json.loads(Path(out_file).read_text())
version_php = (Path(moodle_src) / "version.php").read_text()
release = re.search(r"\$release\s*=\s*'([^']+)'", version_php).group(1)
version = re.search(r"\$version\s*=\s*([0-9.]+)", version_php).group(1)
for case in data["cases"]:
    for cat in case["course"]["categories"]:
        cat["id"] = int(cat["id"])
        cat["parent"] = None if cat["parent"] is None else int(cat["parent"])
    for it in case["course"]["items"]:
        it["id"] = int(it["id"])
        it["categoryid"] = int(it["categoryid"])
    for it in case["expected"]["items_after_regrade"]:
        it["id"] = int(it["id"])
fixture = {
    "provenance": {
        "generated_by": "tests/native/golden/moodle_harness.php via make native-golden MOODLE_SRC=...",
        "moodle_release": release,
        "moodle_version": version,
        "database": "MariaDB 10.11 (Debian bookworm), utf8mb4; Moodle installed with admin/cli/install_database.php",
        "php": "8.2 (Debian bookworm php8.2-cli)",
        "method": (
            "each case is built with Moodle's API (create_course, grade_category/grade_item insert, "
            "set_calculation, grade_grades rows) and regraded by grade_regrade_final_grades(); expected "
            "values are what Moodle stored in grade_grades (finalgrade, rawgrademin, rawgrademax)"
        ),
        "inputs": (
            "tests/native/golden/make_cases.py (targeted cases per aggregation method + derandomized hypothesis "
            "cases; cases_site.json: GOLDEN_SET=site, the site-setting cases)"
        ),
        "site_settings": (
            "Moodle defaults (grade_minmaxtouse=1, unlimitedgrades off, gradeoverhundredprocentmax unset, scales "
            "included) except a case's 'site' (unlimitedgrades, gradeoverhundredprocentmax), set with set_config() "
            "before its regrade and reset after it"
        ),
        "generated_at": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%MZ"),
    },
    "cases": data["cases"],
    "dropped": data["dropped"],
}
Path(dest).write_text(json.dumps(fixture, indent=1) + "\n")
print(f"golden: {len(data['cases'])} cases -> {dest} ({len(data['dropped'])} dropped because Moodle reported errors)")
