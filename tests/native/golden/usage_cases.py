"""Golden usage cases (cases_usage.json) from a writeback.sh run: the harness's cases with Moodle's
grade_grades.aggregationstatus/aggregationweight after its own regrade (set_usedinaggregation()),
per cell (users x items, the cases' order).  Nothing in it is computed by our code.
  python usage_cases.py out-writeback.json out-writeback.json.writeback.json cases_usage.json"""

from __future__ import annotations

import json
import sys


def main(cases_path: str, report_path: str, dest: str) -> None:
    cases = {c["name"]: c for c in json.load(open(cases_path))["cases"]}
    out = []
    for r in json.load(open(report_path)):
        case = cases.get(r["name"])
        if case is None or r["moodle_status"] is not True or not case["nusers"]:
            continue
        items = case["course"]["items"]
        usage = []
        for u in range(case["nusers"]):
            for it in items:
                usage.append(r["moodle_usage"].get(f"{it['id']}:{100000 + u}"))
        # Per category total (item id) and user index: the order of its children's rows in Moodle's query.
        orders = {
            tid: {str(int(uid) - 100000): ids for uid, ids in by_user.items()}
            for tid, by_user in (r.get("moodle_orders") or {}).items()
        }
        out.append({k: case[k] for k in ("name", "course", "nusers", "cells", "flags")} | {"usage": usage, "orders": orders})
    prov = {
        "generated_by": "tests/native/golden/writeback.sh (moodle_harness.php + writeback.php) and usage_cases.py",
        "moodle": "grade_regrade_final_grades() of Moodle 4.5.6 on MariaDB 10.11 (the golden harness)",
        "usage": "per cell [aggregationstatus, aggregationweight] as Moodle stored them (null: no grade row)",
    }
    json.dump({"provenance": prov, "cases": out}, open(dest, "w"), separators=(",", ":"))
    print(f"{len(out)} cases -> {dest}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
