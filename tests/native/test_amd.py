"""The plugin's AMD build (amd/build/*.min.js + .map) against its source: rebuilt in a temporary
directory with scripts/amd-build (`make native-amd`: babel + terser as Moodle 4.5's grunt amd task),
the committed build must be byte for byte what the source gives - a source edited without
rebuilding fails here - and the source map must lead from the minified code back to amd/src."""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess

import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TOOL = ROOT / "scripts/amd-build"
PLUGIN = ROOT / "moodle-plugins/local_nativegrades"
BUILD = PLUGIN / "amd/build"
SRC = PLUGIN / "amd/src"


def build(plugin: pathlib.Path, out: pathlib.Path) -> subprocess.CompletedProcess:
    assert (TOOL / "node_modules/terser/package.json").is_file(), "make native-deps (npm ci in scripts/amd-build)"
    return subprocess.run(["node", str(TOOL / "build.mjs"), str(plugin), str(out)], capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("amd-build")
    r = build(PLUGIN, out)
    assert r.returncode == 0, r.stderr
    return out


def test_build_is_current(rebuilt):
    names = sorted(p.stem for p in SRC.glob("*.js"))
    assert names, "no AMD sources"
    expected = sorted([f"{n}.min.js" for n in names] + [f"{n}.min.js.map" for n in names])
    assert sorted(p.name for p in rebuilt.iterdir()) == expected
    assert sorted(p.name for p in BUILD.iterdir()) == expected, "amd/build has files no source builds"
    for name in expected:
        assert (BUILD / name).read_bytes() == (rebuilt / name).read_bytes(), (
            f"amd/build/{name} is stale: run make native-amd and commit the result")


def test_build_is_minified_and_named():
    src = (SRC / "whatif.js").read_text()
    out = (BUILD / "whatif.min.js").read_text()
    assert out != src
    assert len(out) < 0.6 * len(src), (len(out), len(src))
    # Moodle's build names the module in define() (babel-plugin-add-module-to-define).
    assert 'define("local_nativegrades/whatif",["core/ajax"]' in out
    assert out.rstrip("\n").endswith("\n//# sourceMappingURL=whatif.min.js.map")


def test_source_map_points_at_the_source():
    m = json.loads((BUILD / "whatif.min.js.map").read_text())
    assert m["version"] == 3 and m["file"] == "whatif.min.js"
    assert m["sources"] == ["../src/whatif.js"]
    assert (BUILD / m["sources"][0]).resolve() == (SRC / "whatif.js").resolve()
    assert m["sourcesContent"] == [(SRC / "whatif.js").read_text()]
    # String literals of the minified code map back to the line and column where the source has them.
    needles = ['"compiled course: "', '"local_nativegrades_whatif"', '"whatif-status"',
               '"local_nativegrades_get_user_gradebook"']
    r = subprocess.run(["node", str(TOOL / "trace.mjs"), str(BUILD), "whatif", *needles], capture_output=True,
                       text=True, timeout=60, check=True)
    lines = (SRC / "whatif.js").read_text().split("\n")
    for t in json.loads(r.stdout):
        assert t["generated"], f"{t['needle']} is not in the build"
        o = t["original"]
        assert o["source"] == "../src/whatif.js", t
        literal = "'" + t["needle"][1:-1] + "'"  # the source quotes with '
        assert lines[o["line"] - 1][o["column"]:].startswith(literal), (t, lines[o["line"] - 1])


def test_a_changed_source_gives_another_build(tmp_path):
    # The comparison above can fail: the same build from an edited source differs.
    plugin = tmp_path / "plugin"
    shutil.copytree(PLUGIN, plugin, ignore=shutil.ignore_patterns("wasm", "*.php", "classes", "cli", "db", "lang"))
    shutil.copy(PLUGIN / "version.php", plugin / "version.php")
    src = plugin / "amd/src/whatif.js"
    src.write_text(src.read_text().replace("'whatif-status'", "'whatif-state'"))
    r = build(plugin, tmp_path / "out")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out/whatif.min.js").read_bytes() != (BUILD / "whatif.min.js").read_bytes()
    assert (tmp_path / "out/whatif.min.js.map").read_bytes() != (BUILD / "whatif.min.js.map").read_bytes()


@pytest.mark.parametrize("case", ["es module", "no define", "not a plugin"])
def test_bad_input_is_refused(tmp_path, case):
    plugin = tmp_path / "plugin"
    (plugin / "amd/src").mkdir(parents=True)
    if case != "not a plugin":
        (plugin / "version.php").write_text("<?php\n$plugin->component = 'local_example';\n")
    body = {"es module": "import Ajax from 'core/ajax';\nexport const init = () => Ajax;\n",
            "no define": "window.x = 1;\n", "not a plugin": "define([], function() {});\n"}[case]
    (plugin / "amd/src/mod.js").write_text(body)
    r = build(plugin, tmp_path / "out")
    assert r.returncode != 0
    message = {"es module": "ES module sources are not supported", "no define": "no define() call",
               "not a plugin": "is not a Moodle plugin"}[case]
    assert message in r.stderr, r.stderr
    assert not (tmp_path / "out/mod.min.js").exists()
