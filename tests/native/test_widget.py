"""The what-if widget in headless Chromium (Debian's chromium, driven by playwright-core): the AMD
module loads the WASM build of the core, a student edits a grade and the totals update to what
the core computes; with WebAssembly removed from the page the plain-JS path (the same module
compiled to JavaScript by wasm2js) shows the same numbers.  Both browser builds are also compared
with the core on a large course that makes the wasm2js memory grow."""

from __future__ import annotations

import base64
import json
import os
import pathlib
import random
import socket
import struct
import subprocess
import time

import pytest

HERE = pathlib.Path(__file__).resolve().parent
ARTIFACTS = pathlib.Path(os.environ.get("NATIVE_ARTIFACTS", "/var/cache/moodle-platform/native/artifacts"))
PLUGIN = ARTIFACTS / "moodle/local/nativegrades"

COURSE = {
    "categories": [
        {"id": 1, "parent": None, "aggregation": 13, "aggregateonlygraded": True},
        {"id": 2, "parent": 1, "aggregation": 0, "aggregateonlygraded": False, "droplow": 1},
    ],
    "items": [
        {"id": 1, "itemtype": "course", "categoryid": 1},
        {"id": 2, "itemtype": "category", "categoryid": 2, "idnumber": "quizzes"},
        {"id": 3, "itemtype": "manual", "categoryid": 2, "idnumber": "q1", "grademax": 10},
        {"id": 4, "itemtype": "manual", "categoryid": 2, "idnumber": "q2", "grademax": 10},
        {"id": 5, "itemtype": "manual", "categoryid": 2, "idnumber": "q3", "grademax": 10},
        {"id": 6, "itemtype": "manual", "categoryid": 1, "idnumber": "exam", "grademax": 60},
        {"id": 7, "itemtype": "manual", "categoryid": 1, "idnumber": "project", "grademax": 40},
        {"id": 8, "itemtype": "manual", "categoryid": 1, "idnumber": "bonus", "grademax": 100,
         "calculation": "=round([[exam]]/60*10 + average([[q1]], [[q2]]), 2)"},
    ],
}
CELLS = [0.0, 0.0, 7.0, 4.5, 9.0, 41.0, 0.0, 0.0]
FLAGS = [0, 0, 1, 1, 1, 1, 0, 0]
EDIT = (7, 33.5)  # the student tries: project = 33.5


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    for f in ("wasm/gradebook_wasm_bg.wasm", "wasm/gradebook_wasm.js", "amd/build/whatif.min.js"):
        assert (PLUGIN / f).is_file(), f"{PLUGIN / f} missing: run make native-artifacts"
    work = tmp_path_factory.mktemp("widget")
    case = work / "case.json"
    case.write_text(json.dumps({"course": COURSE, "cells": CELLS, "flags": FLAGS}))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, WIDGET_PLUGIN=str(PLUGIN), WIDGET_CASE=str(case))
    proc = subprocess.Popen(["php", "-n", "-S", f"127.0.0.1:{port}", str(HERE / "widget/router.php")], env=env,
                            cwd=HERE / "widget", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(50):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}", work
    proc.terminate()
    proc.wait(timeout=10)


def drive(server, scenario: dict) -> dict:
    base, work = server
    f = work / "scenario.json"
    f.write_text(json.dumps(scenario))
    out = subprocess.run(["node", str(HERE / "widget/check.mjs"), base, str(f)], capture_output=True, text=True,
                         cwd=HERE / "widget", timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def expected(core) -> dict:
    cells, flags = list(CELLS), list(FLAGS)
    k = [it["id"] for it in COURSE["items"]].index(EDIT[0])
    cells[k], flags[k] = EDIT[1], flags[k] | 1
    r = core.Course(json.dumps(COURSE)).regrade(struct.pack("<8d", *cells), bytes(flags), 1)
    fin = struct.unpack("<8d", r["final"])
    return {str(it["id"]): (fin[i] if r["hasvalue"][i] else None) for i, it in enumerate(COURSE["items"])}


READ = [1, 2, 8]


def test_wasm_widget_shows_the_cores_totals(server, core):
    r = drive(server, {"edits": [list(EDIT)], "read": READ})
    assert r["errors"] == []
    assert r["engine"] == "wasm"
    want = expected(core)
    assert {k: r["values"][k] for k in map(str, READ)} == {k: want[k] for k in map(str, READ)}
    # The edit changed the course total (it is not just the page's initial value).
    assert want["1"] != pytest.approx(88.5)


def test_no_wasm_fallback_gives_the_same_numbers(server, core):
    # Without WebAssembly the widget runs the same module compiled to JavaScript (wasm2js).
    r = drive(server, {"edits": [list(EDIT)], "read": READ, "nowasm": True})
    assert r["errors"] == []
    assert r["engine"] == "js"
    want = expected(core)
    assert {k: r["values"][k] for k in map(str, READ)} == {k: want[k] for k in map(str, READ)}


def big_course(nitems: int = 1200, nusers: int = 6) -> tuple[dict, list[dict]]:
    """A course large enough that building it grows the module's memory (several MB of JSON)."""
    rng = random.Random(5)  # noqa: S311 - deterministic test data
    cats = [{"id": 1, "parent": None, "aggregation": 13, "aggregateonlygraded": True}]
    cats += [{"id": c, "parent": 1, "aggregation": [0, 2, 6, 8, 10, 11, 12, 13][c % 8], "droplow": int(c % 3 == 0),
              "aggregateonlygraded": c % 2 == 0} for c in range(2, 12)]
    items = [{"id": 1, "itemtype": "course", "categoryid": 1}]
    items += [{"id": c, "itemtype": "category", "categoryid": c, "aggregationcoef": 1.0} for c in range(2, 12)]
    while len(items) < nitems:
        k = len(items)
        item = {"id": k + 1, "itemtype": "mod" if k % 3 else "manual", "categoryid": 2 + k % 10,
                "idnumber": f"i{k}", "grademax": rng.choice([10.0, 20.0, 100.0]), "aggregationcoef": rng.choice([1.0, 2.0])}
        if k % 97 == 0:
            item["calculation"] = f"=round([[i{k - 5}]] * 0.3 + sqrt([[i{k - 7}]]) + sin([[i{k - 3}]]) ^ 2, 3)"
            item["itemtype"] = "manual"
        items.append(item)
    rows = []
    for _ in range(nusers):
        flags = [0 if it["itemtype"] in ("course", "category") or "calculation" in it else
                 (1 if rng.random() < 0.8 else 0) | (2 if rng.random() < 0.02 else 0) for it in items]
        cells = [round(rng.uniform(0, it.get("grademax", 100.0)), 2) if f & 1 else 0.0
                 for it, f in zip(items, flags, strict=True)]
        rows.append({"cells": cells, "flags": flags})
    return {"categories": cats, "items": items}, rows


def browser_builds(core, course: dict, rows: list[dict], tmp_path) -> dict:
    """Both browser builds (WebAssembly, wasm2js) on the course compiled by the core; each must
    equal the core byte for byte."""
    case = tmp_path / "case.json"
    c = core.Course(json.dumps(course))
    # The browser builds read the course compiled, as the web service sends it.
    case.write_text(json.dumps({"compiled": base64.b64encode(c.compiled()).decode(), "rows": rows}))
    out = subprocess.run(["node", str(HERE / "widget/engines.mjs"), str(PLUGIN / "wasm"), str(case)],
                         capture_output=True, text=True, cwd=HERE / "widget", timeout=300)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    n = len(course["items"])
    for k, row in enumerate(rows):
        g = c.regrade(struct.pack(f"<{n}d", *row["cells"]), bytes(row["flags"]), 1)
        fin = struct.unpack(f"<{n}d", g["final"])
        want = [fin[i] if g["hasvalue"][i] else None for i in range(n)]
        assert r["wasm"][k] == want, f"WebAssembly build differs from the core for user {k}"
        assert r["js"][k] == want, f"wasm2js build differs from the core for user {k}"
    return r


def test_browser_builds_model_the_site_settings(core, tmp_path):
    """unlimitedgrades (grades over the maximum) and minmaxtouse 2 (activities graded out of
    another range) travel in the compiled course."""
    course, rows = big_course(nitems=150, nusers=3)
    for it in course["items"][11::4]:
        # Graded out of half the item's range, then x1.5: up to three times the maximum.
        it["multfactor"] = 1.5
        it["rawgrademax"] = it["grademax"] / 2
    defaults = browser_builds(core, course, rows, tmp_path)["wasm"]
    for settings in ({"unlimitedgrades": True, "gradeoverhundredprocentmax": 2}, {"minmaxtouse": 2}):
        course["site"] = settings
        assert browser_builds(core, course, rows, tmp_path)["wasm"] != defaults, f"{settings} changed nothing"


def test_wasm2js_fallback_equals_wasm_and_core_on_a_large_course(core, tmp_path):
    course, rows = big_course()
    r = browser_builds(core, course, rows, tmp_path)
    before, after = r["jsMemory"]
    assert after > before, "the case should make the wasm2js memory grow (that path must be covered)"
    # A malformed compiled course is a clear JS Error in both builds, not a crash.
    assert r["badInput"] == {"wasm": "Error: compiled course: malformed data", "js": "Error: compiled course: malformed data"}
