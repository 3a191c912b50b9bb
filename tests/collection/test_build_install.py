"""The collection builds, installs offline from its tarball outside the checkout, carries its playbooks
and charts, and documents every module and every role entry point from the installed copy."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COLLECTION = ROOT / "collections/ansible_collections/moodle/platform"
HELPER = [sys.executable, str(ROOT / "scripts" / "collection.py")]
BIN = Path(sys.executable).parent


def _run(*args, env=None, cwd=None):
    proc = subprocess.run(list(args), capture_output=True, text=True, env=env, cwd=cwd, timeout=600, check=False)
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _hidden(cwd, *args, env):
    """Run with the checkout hidden (scripts/collection.py run-hidden): only the installed copy exists."""
    return _run(*HELPER, "run-hidden", "--cwd", str(cwd), "--", *args, env=env)


def test_build_install_offline_and_document(tmp_path):
    tarball = Path(_run(*HELPER, "tarball").strip())
    version = yaml.safe_load((COLLECTION / "galaxy.yml").read_text())["version"]
    assert tarball.name == f"moodle-platform-{version}.tar.gz"
    names = set(tarfile.open(tarball).getnames())
    # build_ignore keeps tests and Molecule out of what users download
    assert not [n for n in names if n.startswith("tests/") or "/molecule/" in n or n.startswith("molecule/")]
    assert "meta/runtime.yml" in names
    assert "LICENSE" in names  # the GPL-3.0-or-later text galaxy.yml's license refers to
    # Everything the playbooks need is inside: the playbooks themselves and the charts (one copy).
    for playbook in ("site", "prepare_host", "compose", "kubernetes", "tenants", "backup", "restore",
                     "restore_drill", "upgrade", "migrate", "backup_image"):
        assert f"playbooks/{playbook}.yml" in names
    for chart in ("moodle", "moodle-operator"):
        assert f"charts/{chart}/Chart.yaml" in names and f"charts/{chart}/templates" in names
    assert "charts/moodle/files/rules/moodle.yml" in names
    assert "charts/moodle-operator/crds" in names
    assert not (ROOT / "charts").exists(), "the charts live in the collection only"

    # Install into an empty path outside the checkout, without any distribution server; the
    # dependencies are the collections bundled with the `ansible` package in the venv.
    dest = tmp_path / "installed"
    empty_cfg = tmp_path / "empty.cfg"
    empty_cfg.write_text("[defaults]\n")
    env = dict(os.environ, ANSIBLE_CONFIG=str(empty_cfg), ANSIBLE_NOCOLOR="1")
    env.pop("ANSIBLE_COLLECTIONS_PATH", None)
    _run(str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "-p", str(dest), str(tarball),
         env=env, cwd=tmp_path)
    installed = dest / "ansible_collections/moodle/platform"
    assert (installed / "roles/docker_host/tasks/main.yml").exists()
    assert (installed / "charts/moodle/Chart.yaml").exists()
    env["ANSIBLE_COLLECTIONS_PATH"] = str(dest)

    # Every module, from the installed copy, with the checkout hidden.
    modules = sorted(p.stem for p in (COLLECTION / "plugins/modules").glob("*.py") if p.stem != "__init__")
    assert modules
    for module in modules:
        doc = _hidden(tmp_path, str(BIN / "ansible-doc"), "-t", "module", f"moodle.platform.{module}", env=env)
        assert str(installed / "plugins/modules" / f"{module}.py") in doc, doc[:500]

    # Every role entry point with every option its argument_specs declares.
    entry_points = 0
    for spec_file in sorted((COLLECTION / "roles").glob("*/meta/argument_specs.yml")):
        role = spec_file.parents[1].name
        specs = yaml.safe_load(spec_file.read_text())["argument_specs"]
        for entry, spec in specs.items():
            doc = _hidden(tmp_path, str(BIN / "ansible-doc"), "-t", "role", "-e", entry, f"moodle.platform.{role}",
                          env=env)
            assert re.search(rf"ENTRY POINT: \*?{entry}\*? - ", doc), doc[:500]
            missing = [option for option in (spec.get("options") or {}) if option not in doc]
            assert not missing, f"{role}:{entry} undocumented from the installed copy: {missing}"
            entry_points += 1
    assert entry_points >= len(list((COLLECTION / "roles").iterdir()))
