"""`ansible-builder introspect` finds what moodle.platform needs in an Execution Environment.

The collection is built and installed offline from its tarball next to the collections it depends on
(copied from the `ansible` pip package, as the EE build does); introspection must then report the
collection's own Python and system requirements (meta/execution-environment.yml) with their origin.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import ansible_collections
import yaml

ROOT = Path(__file__).resolve().parents[2]
COLLECTION = ROOT / "collections/ansible_collections/moodle/platform"
VENV_BIN = Path(sys.executable).parent
BUNDLED = next(p for p in map(Path, ansible_collections.__path__) if (p / "community/docker").is_dir())


def _run(*args, env=None, cwd=None):
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env, cwd=cwd, timeout=600, check=False)
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _dependency_closure(names):
    """The collections `names` need, transitively, from their MANIFEST.json (what ansible-galaxy resolves)."""
    todo, seen = list(names), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        manifest = json.loads((BUNDLED.joinpath(*name.split(".")) / "MANIFEST.json").read_text())
        todo.extend(manifest["collection_info"].get("dependencies") or {})
    return seen


def test_introspection_reports_the_collections_requirements(tmp_path):
    galaxy = yaml.safe_load((COLLECTION / "galaxy.yml").read_text())
    _run(VENV_BIN / "ansible-galaxy", "collection", "build", COLLECTION, "--output-path", tmp_path, "--force")
    tarball = tmp_path / f"moodle-platform-{galaxy['version']}.tar.gz"

    dest = tmp_path / "collections"
    for name in _dependency_closure(galaxy["dependencies"]):
        shutil.copytree(BUNDLED.joinpath(*name.split(".")), dest / "ansible_collections" / name.replace(".", "/"))
    (tmp_path / "empty.cfg").write_text("[defaults]\n")
    env = dict(os.environ, ANSIBLE_CONFIG=str(tmp_path / "empty.cfg"), ANSIBLE_COLLECTIONS_PATH=str(dest))
    # --offline with every dependency already in the path: this is how the EE image installs it.
    _run(VENV_BIN / "ansible-galaxy", "collection", "install", "--offline", "-p", dest, tarball, env=env, cwd=tmp_path)
    assert (dest / "ansible_collections/moodle/platform/meta/ee-requirements.txt").is_file(), \
        "meta/ee-requirements.txt must ship in the tarball"

    out = _run(VENV_BIN / "ansible-builder", "introspect", dest)
    data = yaml.safe_load(out.split("\n", 1)[1])  # first line: "# Dependency data for ..."
    ours_python = {line.split()[0] for line in data["python"] if line.endswith("from collection moodle.platform")}
    ours_system = {line.split("  #")[0] for line in data["system"] if line.endswith("from collection moodle.platform")}
    names = {req.split(">")[0].split("=")[0].lower() for req in ours_python}
    # docker SDK (community.docker, moodle_info/moodle_config), kubernetes (helm_deploy / kubernetes.core)
    assert {"docker", "kubernetes", "jsonpatch", "requests"} <= names, data["python"]
    assert "openssh-client [platform:dpkg]" in ours_system, data["system"]
    assert "util-linux [platform:dpkg platform:rpm]" in ours_system, data["system"]
    # ... and the dependencies' own requirements are found too (community.docker's, kubernetes.core's)
    assert any(line.endswith("from collection community.docker") for line in data["python"])
    assert any(line.endswith("from collection kubernetes.core") for line in data["python"])

    # bindep (an ansible-builder dependency) parses our file for Debian, as the image's assemble step does
    bindep = _run(VENV_BIN / "python", "-c",
                  "import sys; from bindep.depends import Depends; "
                  "d = Depends(open(sys.argv[1]).read()); "
                  "print('\\n'.join(sorted(r[0] for r in d.active_rules(['platform:dpkg', 'dpkg']))))",
                  COLLECTION / "meta/ee-bindep.txt")
    assert set(bindep.split()) == {"openssh-client", "util-linux"}, bindep


def test_ee_definition_builds_offline_from_the_project_base_image():
    ee = yaml.safe_load((ROOT / "execution-environment.yml").read_text())
    assert ee["version"] == 3
    assert ee["images"]["base_image"]["name"] == "moodle-platform/debian:bookworm"
    # The collection comes from the locally built tarball, never from a Galaxy server.
    assert ee["dependencies"]["galaxy"]["collections"] == [{"name": "/build/files/moodle-platform.tar.gz", "type": "file"}]
    assert ee["build_arg_defaults"]["ANSIBLE_GALAXY_CLI_COLLECTION_OPTS"] == "--offline"
    # The Ansible pins match the venv's (requirements-dev.txt / requirements/ee.txt).
    pins = (ROOT / "requirements-dev.txt").read_text() + (ROOT / "requirements/ee.txt").read_text()
    assert f"ansible-core{ee['dependencies']['ansible_core']['package_pip'].split('ansible-core')[1]}" in pins
    assert ee["dependencies"]["ansible_runner"]["package_pip"] in pins
