"""The collection builds, installs offline from its tarball, and documents its roles."""

from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COLLECTION = ROOT / "collections/ansible_collections/moodle/platform"


def _run(*args, env=None, cwd=None):
    proc = subprocess.run(list(args), capture_output=True, text=True, env=env, cwd=cwd, timeout=600)
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_build_install_offline_and_document(tmp_path):
    version = yaml.safe_load((COLLECTION / "galaxy.yml").read_text())["version"]
    _run("ansible-galaxy", "collection", "build", str(COLLECTION), "--output-path", str(tmp_path), "--force")
    tarball = tmp_path / f"moodle-platform-{version}.tar.gz"
    assert tarball.exists()

    names = tarfile.open(tarball).getnames()
    # build_ignore keeps tests and Molecule out of what users download
    assert not [n for n in names if n.startswith("tests/") or "/molecule/" in n or n.startswith("molecule/")]
    for role in ("docker_host", "base_image"):
        assert f"roles/{role}/meta/argument_specs.yml" in names
    assert "meta/runtime.yml" in names
    assert "LICENSE" in names  # the GPL-3.0-or-later text galaxy.yml's license refers to

    # Install into an empty path without any distribution server; the dependencies are the
    # collections bundled with the `ansible` package in the venv.
    dest = tmp_path / "installed"
    empty_cfg = tmp_path / "empty.cfg"
    empty_cfg.write_text("[defaults]\n")
    env = dict(os.environ, ANSIBLE_CONFIG=str(empty_cfg))
    _run("ansible-galaxy", "collection", "install", "--offline", "-p", str(dest), str(tarball), env=env, cwd=tmp_path)
    assert (dest / "ansible_collections/moodle/platform/roles/docker_host/tasks/main.yml").exists()

    env["ANSIBLE_COLLECTIONS_PATH"] = str(dest)
    for role, option in (("docker_host", "docker_host_address_pools"), ("base_image", "base_image_suites")):
        doc = _run("ansible-doc", "-t", "role", f"moodle.platform.{role}", env=env, cwd=tmp_path)
        assert option in doc, doc
        assert str(dest) in doc or "moodle.platform" in doc
