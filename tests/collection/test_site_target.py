"""moodle.platform.site, run from the installed collection with the checkout hidden, refuses an unknown
target and a target without hosts (a missing or empty inventory used to exit 0 having done nothing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HELPER = [sys.executable, str(ROOT / "scripts" / "collection.py")]
PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")


@pytest.fixture(scope="module")
def installed_env():
    out = subprocess.run([*HELPER, "env"], capture_output=True, text=True, check=True, timeout=600).stdout
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="false")
    env.update(line.split("=", 1) for line in out.splitlines())
    return env


def site(installed_env, cwd: Path, inventory: str, extra: dict | None = None) -> tuple[int, str]:
    args = [PLAYBOOK, "moodle.platform.site", "-i", inventory]
    if extra:
        args += ["-e", json.dumps(extra)]
    proc = subprocess.run([*HELPER, "run-hidden", "--cwd", str(cwd), "--", *args], env=installed_env,
                          capture_output=True, text=True, timeout=600, check=False)
    return proc.returncode, " ".join((proc.stdout + proc.stderr).split())


@pytest.mark.parametrize("inventory", ["missing", "empty"])
def test_no_hosts_for_the_target_fails_with_a_message(installed_env, tmp_path, inventory):
    path = tmp_path / "prod"
    if inventory == "empty":
        path.write_text("---\nall: {}\n")
    rc, out = site(installed_env, tmp_path, str(path))
    assert rc != 0, out[-2000:]
    assert (f"moodle_platform_target=compose runs on the hosts 'docker_hosts', and the inventory ({path}) has none:"
            " nothing would be deployed.") in out, out[-2000:]
    assert "PLAY [Prepare Docker hosts]" not in out


def test_unknown_target_fails_with_the_known_ones(installed_env, tmp_path):
    rc, out = site(installed_env, tmp_path, "localhost,", {"moodle_platform_target": "openshift"})
    assert rc != 0
    assert "moodle_platform_target=openshift is not a known target; use one of compose, kubernetes, aws." in out, out[-2000:]


def test_kubernetes_controller_group_must_have_hosts(installed_env, tmp_path):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("---\nall:\n  children:\n    k8s_controllers:\n      hosts: {}\n")
    extra = {"moodle_platform_target": "kubernetes", "moodle_platform_k8s_controller": "k8s_controllers"}
    rc, out = site(installed_env, tmp_path, str(inventory), extra)
    assert rc != 0
    assert "runs on the hosts 'k8s_controllers', and the inventory" in out, out[-2000:]

    # Positive control: with a host in the group the checks pass and the Kubernetes play starts (it
    # then stops in helm_deploy's preflight, before any change, because this helm does not exist).
    inventory.write_text("---\nall:\n  children:\n    k8s_controllers:\n      hosts:\n        ctl:\n"
                         "          ansible_connection: local\n"
                         f"          ansible_python_interpreter: {sys.executable}\n")
    rc, out = site(installed_env, tmp_path, str(inventory), {**extra, "helm_deploy_binary": "/nonexistent/helm"})
    assert "PLAY [Deploy Moodle on Kubernetes]" in out, out[-2000:]
    assert "nothing would be deployed" not in out and "not a known target" not in out
    assert rc != 0  # no helm: helm_deploy's preflight refuses


def test_run_hidden_really_hides_the_checkout(tmp_path):
    """The proof the installed-tarball tests rely on: inside run-hidden no file of the checkout can be
    read (only .venv, the tools), so a playbook that needed one would fail."""
    probe = ("import json, pathlib, sys; root = pathlib.Path(sys.argv[1]); print(json.dumps(sorted("
             "str(p) for p in root.rglob('*') if '.venv' not in p.parts and p.is_file() and p.stat().st_size)))")
    argv = [sys.executable, "-c", probe, str(ROOT)]
    outside = json.loads(subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True).stdout)
    assert str(ROOT / "Makefile") in outside  # positive control: without the namespace the files are there
    proc = subprocess.run([*HELPER, "run-hidden", "--cwd", str(tmp_path), "--", *argv], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []
    refused = subprocess.run([*HELPER, "run-hidden", "--cwd", str(ROOT), "--", "true"], capture_output=True, text=True,
                             timeout=60, check=False)
    assert refused.returncode != 0 and "inside the checkout" in refused.stderr
