"""The argument_specs drift check catches drift (and accepts a matching role)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

spec = importlib.util.spec_from_file_location(
    "check_argument_specs", Path(__file__).resolve().parents[2] / "scripts" / "check_argument_specs.py")
checker = importlib.util.module_from_spec(spec)
spec.loader.exec_module(checker)


def _role(tmp_path: Path, defaults: dict, options: dict) -> Path:
    role = tmp_path / "demo"
    for sub in ("tasks", "defaults", "meta"):
        (role / sub).mkdir(parents=True)
    (role / "tasks" / "main.yml").write_text("---\n[]\n")
    (role / "defaults" / "main.yml").write_text(yaml.safe_dump(defaults))
    (role / "meta" / "argument_specs.yml").write_text(
        yaml.safe_dump({"argument_specs": {"main": {"options": options}}}))
    return role


def test_matching_role_passes(tmp_path):
    role = _role(tmp_path, {"demo_a": 1}, {"demo_a": {"type": "int", "default": 1}})
    assert checker.check_role(role) == []


def test_missing_option_is_reported(tmp_path):
    role = _role(tmp_path, {"demo_a": 1, "demo_b": "x"}, {"demo_a": {"type": "int", "default": 1}})
    assert any("'demo_b' is in main.yml but not in argument_specs" in p for p in checker.check_role(role))


def test_stale_option_and_changed_default_are_reported(tmp_path):
    role = _role(tmp_path, {"demo_a": 2},
                 {"demo_a": {"type": "int", "default": 1}, "demo_gone": {"type": "str", "default": "x"}})
    problems = checker.check_role(role)
    assert any("default of 'demo_a' differs" in p for p in problems)
    assert any("'demo_gone' is in argument_specs but not in main.yml" in p for p in problems)


def test_required_option_without_default_is_fine(tmp_path):
    role = _role(tmp_path, {"demo_a": 1},
                 {"demo_a": {"type": "int", "default": 1}, "demo_req": {"type": "str", "required": True}})
    assert checker.check_role(role) == []
