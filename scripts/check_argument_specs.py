#!/usr/bin/env python3
"""Fail when a role's meta/argument_specs.yml drifts from its defaults/main.yml.

For every role (collection roles and site-local roles) and every entry point with a
defaults file (`main` -> defaults/main.yml, `<name>` -> defaults/<name>.yml when present),
the set of option names must equal the set of variables in defaults, and each option's
`default` must equal the value in defaults (templated strings are compared as text).
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
ROLE_DIRS = [ROOT / "collections/ansible_collections/moodle/platform/roles", ROOT / "roles"]


def check_role(role: Path) -> list[str]:
    problems: list[str] = []
    spec_file = role / "meta" / "argument_specs.yml"
    if not spec_file.exists():
        return [f"{role.name}: meta/argument_specs.yml is missing"]
    specs = (yaml.safe_load(spec_file.read_text()) or {}).get("argument_specs", {})
    if "main" not in specs:
        problems.append(f"{role.name}: argument_specs has no 'main' entry point")
    for entry, spec in specs.items():
        defaults_file = role / "defaults" / ("main.yml" if entry == "main" else f"{entry}.yml")
        if not defaults_file.exists():
            if entry == "main" and (role / "defaults").exists():
                problems.append(f"{role.name}: defaults/main.yml missing")
            continue
        defaults = yaml.safe_load(defaults_file.read_text()) or {}
        options = (spec or {}).get("options", {}) or {}
        for name in sorted(set(defaults) - set(options)):
            problems.append(f"{role.name}:{entry}: '{name}' is in {defaults_file.name} but not in argument_specs")
        for name in sorted(set(options) - set(defaults)):
            if not options[name].get("required"):
                problems.append(f"{role.name}:{entry}: '{name}' is in argument_specs but not in {defaults_file.name} "
                                "(give it a default or mark it required)")
        for name in sorted(set(options) & set(defaults)):
            if "default" not in options[name]:
                problems.append(f"{role.name}:{entry}: '{name}' has no 'default' in argument_specs")
            elif options[name]["default"] != defaults[name]:
                problems.append(f"{role.name}:{entry}: default of '{name}' differs: argument_specs "
                                f"{options[name]['default']!r} vs defaults {defaults[name]!r}")
    return problems


def main() -> int:
    roles = sorted(p for d in ROLE_DIRS if d.exists() for p in d.iterdir() if (p / "tasks").is_dir())
    problems = [msg for role in roles for msg in check_role(role)]
    for msg in problems:
        print(f"ERROR {msg}")
    print(f"checked {len(roles)} roles: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
