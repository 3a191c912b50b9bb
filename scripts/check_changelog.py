#!/usr/bin/env python3
"""Changelog gate for the collection: antsibull-changelog lint, short fragments, and a dry release.

- ``antsibull-changelog lint`` must pass and print nothing.
- Every fragment holds one change: one section with one entry (``add object.*`` / ``add plugin.*``
  sections may list several objects), each entry at most MAX_ENTRY characters.
- A release is built in a temporary copy of the collection (the checkout is not touched) for the
  next version: it must carry a ``release_summary``, and announce every module (``version_added``),
  every role (``version_added`` of its ``main`` entry point) and every collection playbook
  (``add object.playbook`` fragments), so nothing new ships unannounced.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
COLLECTION = ROOT / "collections/ansible_collections/moodle/platform"
MAX_ENTRY = 300
# Sections whose entries name objects rather than describe one change each.
LIST_SECTIONS = ("add object.", "add plugin.")


def antsibull(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    venv_bin = Path(sys.executable).parent  # antsibull-changelog runs ansible-doc from the same venv
    return subprocess.run(
        [str(venv_bin / "antsibull-changelog"), *args],
        cwd=cwd,
        env=dict(os.environ, PATH=f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"),
        capture_output=True,
        text=True,
        check=False,
    )


def lint() -> list[str]:
    result = antsibull(COLLECTION, "lint")
    output = (result.stdout + result.stderr).strip()
    return [f"antsibull-changelog lint: {line}" for line in output.splitlines()] if result.returncode or output else []


def fragment_problems() -> list[str]:
    problems = []
    for path in sorted((COLLECTION / "changelogs/fragments").glob("*.yml")):
        data = yaml.safe_load(path.read_text()) or {}
        name = path.name
        changes = [k for k in data if not k.startswith(LIST_SECTIONS) and k != "release_summary"]
        if len(changes) > 1:
            problems.append(f"{name}: one change per fragment, found sections {', '.join(changes)}")
        for section in changes:
            entries = data[section] if isinstance(data[section], list) else [data[section]]
            if len(entries) != 1:
                problems.append(f"{name}: one change per fragment, found {len(entries)} entries in {section}")
            problems += [
                f"{name}: entry of {len(e)} characters (at most {MAX_ENTRY}): {e[:60]}..."
                for e in entries
                if isinstance(e, str) and len(e) > MAX_ENTRY
            ]
    return problems


def next_version() -> str:
    version = yaml.safe_load((COLLECTION / "galaxy.yml").read_text())["version"]
    released = (yaml.safe_load((COLLECTION / "changelogs/changelog.yaml").read_text()) or {}).get("releases") or {}
    if version in released:  # galaxy.yml not bumped yet: the dry release stands for the next minor
        major, minor, _patch = (int(x) for x in version.split(".")[:3])
        version = f"{major}.{minor + 1}.0"
    return version


def dry_release() -> list[str]:
    version = next_version()
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "ansible_collections/moodle/platform"
        shutil.copytree(COLLECTION, copy, ignore=shutil.ignore_patterns("output", "__pycache__", "*.tar.gz"))
        result = antsibull(copy, "release", "--version", version)
        if result.returncode:
            return [f"antsibull-changelog release --version {version} failed: {(result.stdout + result.stderr).strip()}"]
        release = yaml.safe_load((copy / "changelogs/changelog.yaml").read_text())["releases"][version]
    problems = []
    if not (release.get("changes") or {}).get("release_summary"):
        problems.append(f"{version}: no release_summary fragment")
    announced = {
        "module": {m["name"] for m in release.get("modules", [])},
        "role": {o["name"] for o in (release.get("objects") or {}).get("role", [])},
        "playbook": {o["name"] for o in (release.get("objects") or {}).get("playbook", [])},
    }
    released_before = yaml.safe_load((COLLECTION / "changelogs/changelog.yaml").read_text()).get("releases") or {}
    for old in released_before.values():
        announced["module"] |= {m["name"] for m in old.get("modules", [])}
        for kind in ("role", "playbook"):
            announced[kind] |= {o["name"] for o in (old.get("objects") or {}).get(kind, [])}
    present = {
        "module": {p.stem for p in (COLLECTION / "plugins/modules").glob("*.py")},
        "role": {p.name for p in (COLLECTION / "roles").iterdir() if (p / "tasks").is_dir()},
        "playbook": {p.stem for p in (COLLECTION / "playbooks").glob("*.yml")},
    }
    how = {
        "module": "set version_added in its DOCUMENTATION",
        "role": "set version_added in the main entry point of meta/argument_specs.yml",
        "playbook": "announce it in a fragment's 'add object.playbook' section",
    }
    for kind, names in present.items():
        problems += [f"{kind} {name} is not announced in any release: {how[kind]}" for name in sorted(names - announced[kind])]
    return problems


def main() -> int:
    problems = lint() + fragment_problems()
    if not problems:
        problems = dry_release()
    for problem in problems:
        print(f"ERROR {problem}")
    count = len(list((COLLECTION / "changelogs/fragments").glob("*.yml")))
    print(f"changelog: {count} fragments, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
