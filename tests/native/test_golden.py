"""Golden cases: gradebooks regraded by Moodle 4.5.6's own code on MariaDB (see
tests/native/golden/README.md for how they were produced).  The Rust core, the pure-PHP engine
and the extension must reproduce what Moodle stored, exactly - and so must the core reading the
course compiled for the widget."""

from __future__ import annotations

import base64
import json
import pathlib
import struct

import pytest

CASES_FILE = pathlib.Path(__file__).parent / "golden" / "cases.json"
DATA = json.loads(CASES_FILE.read_text())
CASES = DATA["cases"]


def unpack(b: bytes) -> list[float]:
    return list(struct.unpack(f"<{len(b) // 8}d", b))


def test_fixture_has_provenance_and_covers_every_method():
    assert DATA["provenance"]["moodle_release"].startswith("4.5")
    methods = {c["aggregation"] for case in CASES for c in case["course"]["categories"]}
    assert methods == {0, 2, 4, 6, 8, 10, 11, 12, 13}
    assert len(CASES) >= 100


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_engines_reproduce_moodle(core, php, case):
    course = json.dumps(case["course"])
    n = len(case["course"]["items"])
    grades = struct.pack(f"<{len(case['cells'])}d", *case["cells"])
    flags = bytes(case["flags"])
    exp = case["expected"]
    r = core.Course(course).regrade(grades, flags, case["nusers"])
    got = php.regrade(course, grades, flags, case["nusers"])
    aggregate = [
        it.get("itemtype") in ("course", "category") and not it.get("calculation") for it in case["course"]["items"]
    ]
    # The widget's path: the course compiled by the server (the PHP engine writes exactly the core's
    # compiled form), read back and regraded.
    compiled = core.Course(course).compiled()
    assert got["php_compiled"] == {"compiled": base64.b64encode(compiled).decode()}, "compiled course differs"
    widget = core.Course.from_compiled(compiled).regrade(grades, flags, case["nusers"])
    for name, result in (("core", r), ("compiled", widget), ("php", got["php"]), ("ext", got["ext"])):
        if name not in ("core", "compiled"):
            assert "error" not in result, result
            result = {k: base64.b64decode(v) for k, v in result.items()}
        final, has = unpack(result["final"]), list(result["hasvalue"])
        rmin, rmax = unpack(result["rawmin"]), unpack(result["rawmax"])
        for k in range(len(final)):
            u, i = divmod(k, n)
            where = f"{name}: user {u} item {case['course']['items'][i]['id']}"
            assert has[k] == exp["hasvalue"][k], f"{where}: empty/non-empty differs from Moodle"
            if has[k]:
                assert final[k] == exp["final"][k], f"{where}: final {final[k]!r} != Moodle {exp['final'][k]!r}"
            if aggregate[i] and has[k]:
                assert (rmin[k], rmax[k]) == (exp["rawmin"][k], exp["rawmax"][k]), f"{where}: range differs"
