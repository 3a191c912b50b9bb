#!/usr/bin/env python3
"""Build the moodle.platform Execution Environment image on the local Docker engine (once per content).

    scripts/ee/build.py            build if needed; print the image tag, its size and the build time
    scripts/ee/build.py --tag      only print the tag the current sources would have (no build)

Nothing comes from Ansible Galaxy or a container registry:
  * base image     moodle-platform/debian:bookworm (make host)
  * moodle.platform  `ansible-galaxy collection build` of this checkout, installed offline in the image
  * dependencies   the collections bundled by the pinned `ansible` pip package (copied from the venv)
  * helm           the binary scripts/k8s/build-tools.sh builds from its Go module (cached)
  * Python         wheels downloaded here with the host's pip (the image build uses no index): ansible-core,
                   ansible-runner and what `ansible-builder introspect` finds in the staged collections
  * system         Debian packages (apt, through scripts/ee/apt-pkgmgr), also from introspection

The tag is a hash of everything that goes into the image (EE definition, collection sources, the copied
collections' versions, helm, the base image's id), so an unchanged tree reuses the image: ~1 s warm.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import ansible_collections  # the venv's bundled collections (the ansible pip package)

ROOT = Path(__file__).resolve().parents[2]
COLLECTION = ROOT / "collections/ansible_collections/moodle/platform"
EE_FILE = ROOT / "execution-environment.yml"
WORK = ROOT / "build/ee"
FILES = WORK / "files"
CONTEXT = WORK / "context"
REPOSITORY = "moodle-platform/ee"
BASE_IMAGE = "moodle-platform/debian:bookworm"
VENV_BIN = Path(sys.executable).parent
# Collections the EE carries next to moodle.platform: its galaxy.yml dependencies, what they depend on,
# and awx.awx for the controller-as-code playbook. Taken from the `ansible` package pinned in
# requirements-dev.txt (Galaxy is not reachable).
BUNDLED = ("community.docker", "community.library_inventory_filtering_v1", "kubernetes.core", "amazon.aws",
           "community.aws", "community.crypto", "ansible.posix", "awx.awx")
IGNORED_PARTS = {"__pycache__", ".pytest_cache", ".ruff_cache", "tests"}
# Installed in the image's base stage (the rest comes from introspection): the Ansible pins are
# requirements-dev.txt's, the tools are what ansible-builder's own stages install.
BASE_REQUIREMENTS = ("ansible-core==2.19.14", "ansible-runner==2.4.3", "bindep", "pyyaml", "packaging",
                     "dumb-init==1.2.5")
# The image's Python: Debian bookworm's CPython 3.11 on x86_64.
WHEEL_PLATFORM = ["--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp",
                  "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_17_x86_64",
                  "--platform", "manylinux_2_28_x86_64", "--platform", "any"]


def log(message: str) -> None:
    print(f"[ee {time.strftime('%H:%M:%S')}] {message}", flush=True)


def bundled_root() -> Path:
    return Path(next(iter(ansible_collections.__path__)))


def helm_binary() -> Path:
    env = {}
    for line in (ROOT / "scripts/k8s/versions.env").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            env[key] = value
    cache = os.environ.get("K8S_CACHE_DIR", "/var/cache/moodle-platform/k8s")
    return Path(cache) / f"helm-{env['HELM_VERSION']}-r{env['HELM_REV']}" / "helm"


def collection_version(path: Path) -> str:
    return json.loads((path / "MANIFEST.json").read_text())["collection_info"]["version"]


def content_hash(helm: Path) -> str:
    digest = hashlib.sha256()

    def add(label: str, data: bytes) -> None:
        digest.update(label.encode() + b"\0" + hashlib.sha256(data).digest())

    for path in (EE_FILE, ROOT / "scripts/ee/apt-pkgmgr", Path(__file__)):
        add(str(path.relative_to(ROOT)), path.read_bytes())
    for path in sorted(COLLECTION.rglob("*")):
        if path.is_file() and not IGNORED_PARTS.intersection(path.relative_to(COLLECTION).parts):
            add(str(path.relative_to(ROOT)), path.read_bytes())
    for name in BUNDLED:
        add(name, collection_version(bundled_root().joinpath(*name.split("."))).encode())
    add("helm", helm.read_bytes())
    base = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", BASE_IMAGE],
                          capture_output=True, text=True, check=False)
    if base.returncode != 0:
        sys.exit(f"ee: base image {BASE_IMAGE} is missing: run `make host` first")
    add("base", base.stdout.strip().encode())
    return digest.hexdigest()[:16]


def image_exists(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True, check=False).returncode == 0


def image_size(tag: str) -> str:
    size = int(subprocess.run(["docker", "image", "inspect", "--format", "{{.Size}}", tag],
                              capture_output=True, text=True, check=True).stdout)
    return f"{size / 1e6:.0f} MB"


def stage_files(helm: Path) -> None:
    """build/ee/files: the collection tarball, the dependency collections and helm."""
    shutil.rmtree(FILES, ignore_errors=True)
    FILES.mkdir(parents=True)
    log("ansible-galaxy collection build (moodle.platform)")
    subprocess.run([str(VENV_BIN / "ansible-galaxy"), "collection", "build", str(COLLECTION),
                    "--output-path", str(WORK / "tarball"), "--force"], check=True, stdout=subprocess.DEVNULL)
    tarball = max((WORK / "tarball").glob("moodle-platform-*.tar.gz"), key=lambda p: p.stat().st_mtime)
    shutil.copy2(tarball, FILES / "moodle-platform.tar.gz")
    for name in BUNDLED:
        namespace, collection = name.split(".")
        shutil.copytree(bundled_root() / namespace / collection,
                        FILES / "collections/ansible_collections" / namespace / collection,
                        ignore=shutil.ignore_patterns("__pycache__", "tests"))
    shutil.copy2(helm, FILES / "helm")
    download_wheels()


def introspect(collections_dir: Path, requirements: Path) -> None:
    """ansible-builder introspect over moodle.platform (installed offline) and the bundled collections."""
    env = {k: v for k, v in os.environ.items() if k != "ANSIBLE_CONFIG"}
    subprocess.run([str(VENV_BIN / "ansible-galaxy"), "collection", "install", "--offline", "-p", str(collections_dir),
                    str(FILES / "moodle-platform.tar.gz")], check=True, cwd=WORK, stdout=subprocess.DEVNULL,
                   env=dict(env, ANSIBLE_COLLECTIONS_PATH=str(collections_dir)))
    subprocess.run([str(VENV_BIN / "ansible-builder"), "introspect", str(collections_dir),
                    "--write-pip", str(requirements)], check=True, stdout=subprocess.DEVNULL)


def download_wheels() -> None:
    log("pip download: wheels for the image (base + introspected collection requirements)")
    scratch = WORK / "introspect"
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(FILES / "collections", scratch)
    introspect(scratch, WORK / "requirements-introspected.txt")
    pip = [sys.executable, "-m", "pip", "download", "--quiet", *WHEEL_PLATFORM]
    subprocess.run([*pip, "-d", str(FILES / "wheels-base"), *BASE_REQUIREMENTS], check=True)
    subprocess.run([*pip, "-d", str(FILES / "wheels"), "-r", str(WORK / "requirements-introspected.txt")], check=True)


def build(tag: str, helm: Path) -> None:
    started = time.monotonic()
    stage_files(helm)
    shutil.rmtree(CONTEXT, ignore_errors=True)
    log("ansible-builder create")
    subprocess.run([str(VENV_BIN / "ansible-builder"), "create", "-f", str(EE_FILE), "-c", str(CONTEXT),
                    "--output-filename", "Containerfile"], check=True, cwd=ROOT)
    log(f"docker build {tag} (from {BASE_IMAGE}; progress below)")
    subprocess.run(["docker", "build", "--progress=plain", "-t", tag, "-t", f"{REPOSITORY}:latest",
                    "-f", str(CONTEXT / "Containerfile"), str(CONTEXT)], check=True)
    log(f"built {tag} in {time.monotonic() - started:.0f}s, size {image_size(tag)}")
    prune(keep=tag)


def prune(keep: str) -> None:
    """Remove the EE images of earlier sources (this script's own tags), so rebuilds do not pile up."""
    tags = subprocess.run(["docker", "image", "ls", REPOSITORY, "--format", "{{.Repository}}:{{.Tag}}"],
                          capture_output=True, text=True, check=True).stdout.split()
    old = [t for t in tags if t not in (keep, f"{REPOSITORY}:latest")]
    if old:
        log(f"removing earlier EE images: {' '.join(old)}")
        subprocess.run(["docker", "image", "rm", *old], check=False, stdout=subprocess.DEVNULL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tag", action="store_true", help="print the tag for the current sources, build nothing")
    args = parser.parse_args()
    helm = helm_binary()
    if not helm.is_file():
        subprocess.run(["bash", str(ROOT / "scripts/k8s/build-tools.sh"), "helm"], check=True)
    tag = f"{REPOSITORY}:{content_hash(helm)}"
    if args.tag:
        print(tag)
        return 0
    if image_exists(tag):
        log(f"{tag} is up to date (cached), size {image_size(tag)}")
        subprocess.run(["docker", "tag", tag, f"{REPOSITORY}:latest"], check=True)
    else:
        build(tag, helm)
    print(tag)
    return 0


if __name__ == "__main__":
    sys.exit(main())
