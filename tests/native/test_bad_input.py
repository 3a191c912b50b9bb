"""Bad input raises InvalidArgumentException with a clear message from the extension and the
pure-PHP engine alike (and ValueError from the Python binding) - never a crash."""

from __future__ import annotations

import json
import struct

import pytest

BASE = {
    "categories": [{"id": 1, "parent": None, "aggregation": 13}],
    "items": [
        {"id": 1, "itemtype": "course", "categoryid": 1},
        {"id": 2, "idnumber": "a", "categoryid": 1, "grademax": 10},
        {"id": 3, "idnumber": "b", "itemtype": "manual", "categoryid": 1, "calculation": "=[[a]]*2"},
    ],
}


def course(**changes) -> str:
    c = json.loads(json.dumps(BASE))
    for path, value in changes.items():
        idx, key = path.split("__")
        c["items"][int(idx[1:])][key] = value
    return json.dumps(c)


GOOD = struct.pack("<3d", 0, 5, 0)
FLAGS = b"\x00\x01\x00"

CASES = [
    ("wrong grades length", course(), GOOD[:-8], FLAGS, 1, "grades: expected 3 values (1 users x 3 items), got 2"),
    ("grades not whole doubles", course(), GOOD[:-3], FLAGS, 1, "not a whole number of pack('e*') doubles"),
    ("wrong flags length", course(), GOOD, FLAGS + b"\x00", 1, "flags: expected 3 bytes (1 users x 3 items), got 4"),
    ("NaN grade", course(), struct.pack("<3d", 0, float("nan"), 0), FLAGS, 1, "is not a finite number (NaN)"),
    ("infinite grade", course(), struct.pack("<3d", 0, float("inf"), 0), FLAGS, 1, "is not a finite number (inf)"),
    ("unknown flag bits", course(), GOOD, b"\x00\x41\x00", 1, "flags: unknown bits 0x41 at user 0 item 1"),
    ("negative users", course(), b"", b"", -1, "nusers must not be negative"),
    ("unknown function", course(i2__calculation="=avg([[a]])"), GOOD, FLAGS, 1, "unknown function 'avg'"),
    ("unknown idnumber", course(i2__calculation="=[[zz]]+1"), GOOD, FLAGS, 1, "unknown idnumber [[zz]]"),
    ("syntax error", course(i2__calculation="=[[a]]+"), GOOD, FLAGS, 1, "lacks an operand"),
    ("no leading =", course(i2__calculation="[[a]]"), GOOD, FLAGS, 1, "must start with '='"),
    ("random function", course(i2__calculation="=rand_int(1,5)"), GOOD, FLAGS, 1, "rand_int() is not supported"),
    ("self reference", course(i2__calculation="=[[b]]+1"), GOOD, FLAGS, 1, "circular dependency between grade items"),
    ("bad json", "{", GOOD, FLAGS, 1, "invalid JSON"),
    ("unknown category", course(i1__categoryid=9), GOOD, FLAGS, 1, "categoryid 9 is not a category of this course"),
    ("unknown gradetype", course(i1__gradetype=7), GOOD, FLAGS, 1, "unknown gradetype 7"),
]


def cycle_course() -> str:
    c = json.loads(json.dumps(BASE))
    c["items"][1] = {"id": 2, "idnumber": "a", "itemtype": "manual", "categoryid": 1, "calculation": "=[[b]]"}
    return json.dumps(c)


def with_site(site) -> str:
    c = json.loads(json.dumps(BASE))
    c["site"] = site
    return json.dumps(c)


# Site settings: only unlimitedgrades, gradeoverhundredprocentmax and minmaxtouse are modelled; any other is an error.
CASES += [
    ("unmodelled site setting", with_site({"zz": 1, "outcomes": 2}), GOOD, FLAGS, 1, "site: unknown setting 'outcomes'"),
    ("bad minmaxtouse", with_site({"minmaxtouse": 3}), GOOD, FLAGS, 1, "site: minmaxtouse must be 1 or 2, got 3"),
    ("site not an object", with_site([1]), GOOD, FLAGS, 1, "course: 'site' must be an object"),
    (
        "bad factor",
        with_site({"unlimitedgrades": True, "gradeoverhundredprocentmax": "x"}),
        GOOD,
        FLAGS,
        1,
        "site: 'gradeoverhundredprocentmax' must be a number",
    ),
    ("bad switch", with_site({"unlimitedgrades": "yes"}), GOOD, FLAGS, 1, "site: 'unlimitedgrades' must be a boolean"),
]

CASES.append(("two-item cycle", cycle_course(), GOOD, b"\x00\x00\x00", 1, "item 2 [[a]] -> item 3 [[b]] -> item 2 [[a]]"))


@pytest.mark.parametrize(("name", "spec", "grades", "flags", "nusers", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_a_clear_exception(core, php, name, spec, grades, flags, nusers, message):
    got = php.regrade(spec, grades, flags, nusers)
    assert got["ext"]["error"].startswith("InvalidArgumentException: moodle_gradebook_regrade: "), got
    assert message in got["ext"]["error"]
    if name == "bad json":
        # Each engine names the JSON syntax error in its own words.
        assert got["php"]["error"].startswith("InvalidArgumentException: moodle_gradebook_regrade: invalid JSON")
    else:
        assert got["php"] == got["ext"], "pure-PHP engine and extension must fail the same way"
    # The rows API validates the same way, under its own name.
    rows = got["ext_rows"]["error"]
    assert rows.startswith("InvalidArgumentException: moodle_gradebook_regrade_rows: ") and message in rows, got
    if name != "bad json":
        assert got["php_rows"] == got["ext_rows"], "pure-PHP engine and extension must fail the same way"
    if nusers >= 0 and "doubles" not in message:
        with pytest.raises(ValueError) as e:
            core.Course(spec).regrade(grades, flags, nusers)
        assert message in str(e.value)


def test_good_input_still_works(php):
    got = php.regrade(course(), GOOD, FLAGS, 1)
    final = struct.unpack("<3d", __import__("base64").b64decode(got["ext"]["final"]))
    # a = 5/10; b = a*2 = 10 (bounded to its max 100); course total (natural) = 5 + 10 of 110.
    assert final == (15.0, 5.0, 10.0)
    assert got["php"] == got["ext"]
