"""Summary of writeback.sh's comparison (Moodle's write-back vs local_nativegrades' regrader, per
course and table); exit status 1 when any course differs."""

from __future__ import annotations

import collections
import json
import sys


def main(path: str) -> int:
    reports = json.load(open(path))
    status = 0
    for engine in ("php", "native"):
        tables: collections.Counter[str] = collections.Counter()
        refused = [r["name"] for r in reports if r[engine]["mode"] != "native"]
        differ = [r for r in reports if r[engine]["mode"] == "native" and r[engine]["diff"]]
        for r in differ:
            tables.update(r[engine]["diff"].keys())
        tm = sum(r["moodle_seconds"] for r in reports)
        tn = sum(r[engine]["seconds"] for r in reports)
        print(
            f"writeback {engine}: {len(reports) - len(refused) - len(differ)} of {len(reports)} courses equal to Moodle's "
            f"write-back, {len(differ)} differ, {len(refused)} refused (Moodle's own regrade); "
            f"Moodle {tm:.2f} s, native {tn:.2f} s"
        )
        for table, count in sorted(tables.items()):
            print(f"  {table}: differs in {count} courses")
        for r in differ[:3]:
            print(f"  e.g. {r['name']}:")
            for table, lines in r[engine]["diff"].items():
                for line in lines[:3]:
                    print(f"    {table}: {line}")
        status |= bool(differ)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
