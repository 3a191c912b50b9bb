"""Input cases for the golden harness: targeted gradebooks for every aggregation method and option,
plus deterministic random ones from the parity-test generator restricted to what Moodle's database
accepts (no NaN-producing or erroring formulas, grades within DECIMAL(10,5))."""

from __future__ import annotations

import json
import pathlib
import struct
import sys

from hypothesis import HealthCheck, given, settings

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import gen  # noqa: E402

gen.MAXES[:] = [1.0, 5.0, 10.0, 20.0, 33.33333, 50.0, 100.0, 7.5, 0.5]
gen.GOLDEN = True
gen.EXTREMES[:] = [1e-6, 0.123455]


def targeted() -> list[dict]:
    """One small gradebook per aggregation method x aggregateonlygraded x limit rule."""
    cases = []
    grades = [
        [7.0, 15.0, None, 40.0, 3.0, 9.0],
        [10.0, 20.0, 30.0, 50.0, 0.0, 3.0],
        [None, None, None, None, None, None],
        [5.0, 10.0, 15.0, 25.0, 5.0, 5.0],
        [2.5, 2.5, 7.5, 12.5, 2.0, 9.0],
    ]
    for agg in gen.AGGREGATIONS:
        for aog in (False, True):
            for limit in ("none", "drop", "keep"):
                items = [
                    {"id": 1, "itemtype": "course", "categoryid": 1, "idnumber": "total"},
                    {"id": 2, "itemtype": "category", "categoryid": 2, "idnumber": "sub"},
                    {"id": 3, "idnumber": "a1", "categoryid": 2, "grademax": 10.0, "aggregationcoef": 1.0},
                    {"id": 4, "idnumber": "a2", "categoryid": 2, "grademax": 20.0, "aggregationcoef": 2.0},
                    {"id": 5, "idnumber": "a3", "categoryid": 2, "grademax": 30.0, "aggregationcoef": 0.0},
                    {"id": 6, "idnumber": "q1", "categoryid": 1, "grademax": 50.0, "aggregationcoef": 1.0},
                    {"id": 7, "idnumber": "x1", "itemtype": "manual", "categoryid": 1, "grademax": 5.0,
                     "aggregationcoef": 1.0 if agg in (11, 12, 13) else 0.5},
                    {"id": 8, "idnumber": "s1", "categoryid": 2, "gradetype": 2, "grademin": 1.0, "grademax": 4.0},
                    {"id": 9, "idnumber": "calc", "itemtype": "manual", "categoryid": 1, "grademax": 100.0,
                     "calculation": "=[[a1]]*0.3 + average([[a2]], [[a3]]) + round([[sub]]/7, 2)"},
                ]
                cats = [
                    {"id": 1, "parent": None, "aggregation": agg, "aggregateonlygraded": aog},
                    {"id": 2, "parent": 1, "aggregation": agg, "aggregateonlygraded": aog,
                     "droplow": 1 if limit == "drop" else 0, "keephigh": 2 if limit == "keep" else 0},
                ]
                n = len(items)
                cells, flags = [], []
                for u, row in enumerate(grades):
                    vals = {3: row[0], 4: row[1], 5: row[2], 6: row[3], 7: row[4], 8: row[5] and min(4.0, max(1.0, row[5] / 2))}
                    for i in range(n):
                        v = vals.get(i)
                        f = 0 if v is None else 1
                        if u == 3 and i == 4:
                            f |= 2  # excluded
                        if u == 4 and i == 6:
                            f |= 4  # overridden
                        if u == 1 and i == 3:
                            f |= 8  # hidden (no effect on regrade)
                        cells.append(0.0 if v is None else float(v))
                        flags.append(f)
                cases.append({"name": f"agg{agg}-aog{int(aog)}-{limit}",
                              "course": {"categories": cats, "items": items},
                              "nusers": len(grades), "cells": cells, "flags": flags})
    return cases


def random_cases(count: int) -> list[dict]:
    out: list[dict] = []
    if count <= 0:
        return out

    @settings(max_examples=count, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(gen.gradebook(max_users=4))
    def collect(book):
        course, grades, flags, nusers = book
        cells = list(struct.unpack(f"<{len(grades) // 8}d", grades))
        if any(abs(v) > 99999 for v in cells):
            return
        out.append({"name": f"random{len(out)}", "course": json.loads(course), "nusers": nusers,
                    "cells": cells, "flags": list(flags)})

    collect()
    return out


SITE_VARIANTS = [
    {"unlimitedgrades": True, "gradeoverhundredprocentmax": 2},
    {"unlimitedgrades": True},
    {"unlimitedgrades": False, "gradeoverhundredprocentmax": 3},
    {"minmaxtouse": 2},
    {"minmaxtouse": 2, "unlimitedgrades": True, "gradeoverhundredprocentmax": 2},
    {"minmaxtouse": 1},
]


def site_cases(count: int) -> list[dict]:
    """Settings of issue 13: unlimitedgrades with gradeoverhundredprocentmax, and the course setting
    minmaxtouse.  The targeted gradebooks with factors that push grades over the maximum
    (multfactor, plusfactor, a formula worth more than its item) and grades stored with raw ranges
    other than their item's (activities graded out of another range, a manual item whose maximum
    changed), half of them per variant; plus the random gradebooks that drew a setting."""
    out = []
    for v, site in enumerate(SITE_VARIANTS):
        # Every other targeted case (each method, option and limit rule still appears per variant).
        for case in targeted()[v % 2 :: 2]:
            course = case["course"]
            for it in course["items"]:
                if it["idnumber"] == "a1":
                    it.update(multfactor=1.5, rawgrademax=20.0)
                elif it["idnumber"] == "a2":
                    it["plusfactor"] = 8.0
                elif it["idnumber"] == "a3":
                    it.update(rawgrademin=5.0, rawgrademax=40.0)
                elif it["idnumber"] == "x1":
                    it["rawgrademax"] = 10.0
                elif it["idnumber"] == "calc":
                    it["grademax"] = 20.0
            course["site"] = site
            out.append(dict(case, name=f"site{v}-{case['name']}"))
    out += [dict(c, name=f"site-{c['name']}") for c in random_cases(count) if "site" in c["course"]]
    return out


if __name__ == "__main__":
    if len(sys.argv) > 3 and sys.argv[3] == "site":
        cases = site_cases(int(sys.argv[2]))
    elif len(sys.argv) > 3 and sys.argv[3] == "writeback":
        # Write-back equality (writeback.sh): every targeted case, a third of the setting cases, random ones.
        cases = targeted() + site_cases(0)[::3] + random_cases(int(sys.argv[2]))
        if len(sys.argv) > 4:  # a quick run: every n-th case
            cases = cases[:: int(sys.argv[4])]
    else:
        cases = targeted() + random_cases(int(sys.argv[2]) if len(sys.argv) > 2 else 200)
    pathlib.Path(sys.argv[1]).write_text(json.dumps(cases))
    print(f"{len(cases)} input cases")
