#!/usr/bin/env python3
"""The moodle.platform collection as users get it: a tarball, installed offline outside the checkout.

    collection.py tarball            build build/collection/moodle-platform-<version>.tar.gz (when the
                                     collection's content changed) and print its path
    collection.py install            install that tarball offline into
                                     /var/cache/moodle-platform/installed-collection/<content hash>/
                                     (cached) and print the directory to use as ANSIBLE_COLLECTIONS_PATH
    collection.py env                print KEY=VALUE lines: ANSIBLE_COLLECTIONS_PATH (only the installed
                                     copy) and ANSIBLE_CONFIG (a config outside the checkout)
    collection.py run-hidden --cwd DIR -- CMD...
                                     run CMD in DIR with the checkout hidden: in a private mount
                                     namespace every top-level entry of the checkout except .venv (the
                                     tools) is covered by an empty mount, so nothing of the repository
                                     can be read - a test that passes this way used only the installed
                                     collection and its own inputs
    collection.py stage-molecule SCENARIO DIR
                                     copy molecule/SCENARIO to DIR/molecule/SCENARIO (Molecule then runs
                                     from DIR, outside the checkout) and materialize the Moodle stand-in
                                     (test data) into DIR/moodle-standin

The dependencies (community.docker, kubernetes.core, ...) are the collections bundled with the `ansible`
package in the venv; Ansible finds them on sys.path, so no distribution server is needed.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COLLECTION = ROOT / "collections" / "ansible_collections" / "moodle" / "platform"
TARBALL_DIR = ROOT / "build" / "collection"
CACHE = Path(os.environ.get("MOODLE_PLATFORM_COLLECTION_CACHE", "/var/cache/moodle-platform/installed-collection"))
# What `ansible-galaxy collection build` leaves out anyway (galaxy.yml build_ignore) or never ships.
SKIP_PARTS = {"__pycache__", ".pytest_cache", ".ruff_cache", ".plugin-cache.yaml"}
CONFIG = """\
# Written by scripts/collection.py: the config of runs against the installed collection. No
# collections_path here: ANSIBLE_COLLECTIONS_PATH names only the installed copy.
[defaults]
stdout_callback = ansible.builtin.default
callback_result_format = yaml
interpreter_python = auto_silent
retry_files_enabled = false
host_key_checking = false
nocows = true
"""


def version() -> str:
    for line in (COLLECTION / "galaxy.yml").read_text().splitlines():
        if line.startswith("version:"):
            return line.split(":", 1)[1].strip().strip("\"'")
    raise SystemExit("galaxy.yml has no version")


def content_hash() -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in COLLECTION.rglob("*") if p.is_file() or p.is_symlink()):
        rel = path.relative_to(COLLECTION)
        if SKIP_PARTS & set(rel.parts) or rel.suffix == ".pyc" or rel.parts[0] == "tests":
            continue
        digest.update(str(rel).encode() + b"\0")
        digest.update((os.readlink(path).encode() if path.is_symlink() else path.read_bytes()) + b"\0")
    return digest.hexdigest()[:16]


def _run(argv: list[str], env: dict | None = None, cwd: Path | None = None) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


class _Lock:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = path.open("w")

    def __enter__(self):
        fcntl.flock(self.handle, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()


def _empty_config(directory: Path) -> Path:
    cfg = directory / "ansible.cfg"
    if not cfg.exists() or cfg.read_text() != CONFIG:
        cfg.write_text(CONFIG)
    return cfg


def tarball() -> Path:
    wanted = content_hash()
    out = TARBALL_DIR / f"moodle-platform-{version()}.tar.gz"
    stamp = TARBALL_DIR / ".content-hash"
    with _Lock(TARBALL_DIR.parent / ".collection.lock"):
        if out.exists() and stamp.exists() and stamp.read_text().strip() == wanted:
            print(f"collection: tarball up to date ({wanted}) {out}", file=sys.stderr)
            return out
        TARBALL_DIR.mkdir(parents=True, exist_ok=True)
        _run([str(Path(sys.executable).parent / "ansible-galaxy"), "collection", "build", str(COLLECTION),
              "--output-path", str(TARBALL_DIR), "--force"])
        stamp.write_text(wanted + "\n")
        print(f"collection: built {out} ({out.stat().st_size // 1024} KiB, content {wanted})", file=sys.stderr)
    return out


def install() -> Path:
    tar = tarball()
    wanted = content_hash()
    dest = CACHE / wanted
    manifest = dest / "ansible_collections" / "moodle" / "platform" / "MANIFEST.json"
    with _Lock(CACHE / ".lock"):
        if manifest.exists():
            print(f"collection: installed copy up to date {dest}", file=sys.stderr)
            _empty_config(dest)
            return dest
        tmp = Path(tempfile.mkdtemp(prefix=f".{wanted}-", dir=CACHE))
        try:
            # An empty config and a directory outside the checkout: nothing of the repository's
            # ansible.cfg (collections_path = ./collections) takes part in the install.
            env = dict(os.environ, ANSIBLE_CONFIG=str(_empty_config(tmp)))
            env.pop("ANSIBLE_COLLECTIONS_PATH", None)
            _run([str(Path(sys.executable).parent / "ansible-galaxy"), "collection", "install", "--offline",
                  "-p", str(tmp), str(tar)], env=env, cwd=tmp)
            # Other content hashes may be in use by other checkouts: remove only stale ones (> 2 days).
            for old in CACHE.iterdir():
                if old.is_dir() and not old.name.startswith(".") and time.time() - old.stat().st_mtime > 2 * 86400:
                    shutil.rmtree(old, ignore_errors=True)
            tmp.rename(dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print(f"collection: installed {tar.name} offline into {dest}", file=sys.stderr)
    return dest


def env_vars() -> dict[str, str]:
    dest = install()
    return {"ANSIBLE_COLLECTIONS_PATH": str(dest), "ANSIBLE_CONFIG": str(_empty_config(dest))}


def run_hidden(cwd: Path, argv: list[str]) -> int:
    if cwd.resolve().is_relative_to(ROOT):
        raise SystemExit(f"run-hidden: --cwd {cwd} is inside the checkout {ROOT}")
    mounts = []
    for entry in sorted(ROOT.iterdir()):
        if entry.name == ".venv":  # the tools (ansible-core, molecule, pytest), not the project
            continue
        if entry.is_symlink():  # a mount applies to the link's target
            entry = entry.resolve()
            if entry.is_relative_to(ROOT) or not entry.exists():
                continue
        if entry.is_dir():
            mounts.append(f"mount -t tmpfs -o ro,size=4k moodle-platform-hidden '{entry}'")
        else:
            mounts.append(f"mount --bind /dev/null '{entry}'")
    script = "set -e\n" + "\n".join(mounts) + '\ncd "$0"\nexec "$@"\n'
    return subprocess.call(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, str(cwd), *argv])


def stage_molecule(scenario: str, dest: Path) -> None:
    if dest.resolve().is_relative_to(ROOT):
        raise SystemExit(f"stage-molecule: {dest} is inside the checkout {ROOT}")
    target = dest / "molecule" / scenario
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(ROOT / "molecule" / scenario, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    _run([sys.executable, str(ROOT / "tests" / "fixtures" / "moodle-standin" / "materialize.py"),
          str(dest / "moodle-standin")])
    print(f"collection: molecule/{scenario} and the Moodle stand-in staged in {dest}", file=sys.stderr)


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "help"
    if command == "tarball":
        print(tarball())
    elif command == "install":
        print(install())
    elif command == "env":
        for key, value in env_vars().items():
            print(f"{key}={value}")
    elif command == "run-hidden" and len(argv) >= 4 and argv[1] == "--cwd" and argv[3] == "--":
        return run_hidden(Path(argv[2]), argv[4:])
    elif command == "stage-molecule" and len(argv) == 3:
        stage_molecule(argv[1], Path(argv[2]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
