"""Unit tests of the one reader of Moodle versions (plugins/module_utils/_backup/moodle_version.py)."""

import json

import pytest
from ansible_collections.moodle.platform.plugins.module_utils._backup.moodle_version import (
    VersionError,
    branch_of_release,
    branch_to_major,
    compare_versions,
    parse_version_json,
    parse_version_php,
    version_info,
)

VERSION_PHP = """<?php
defined('MOODLE_INTERNAL') || die();
$version  = 2024100706.00;              // 20241007      = branching date YYYYMMDD - do not modify!
$release  = '4.5.6 (Build: 20250811)'; // Human-friendly version name
$branch   = '405';                     // This version's branch.
$maturity = MATURITY_STABLE;           // This version's maturity level.
"""


def test_parse_version_php_reads_real_moodle_syntax():
    info = parse_version_php(VERSION_PHP)
    assert info == {"version": "2024100706.00", "release": "4.5.6 (Build: 20250811)", "branch": "405",
                    "maturity": "MATURITY_STABLE"}
    assert branch_to_major(info["branch"]) == "4.5"


def test_parse_version_php_derives_branch_from_release_and_rejects_garbage():
    assert parse_version_php("$version = 2025041400;\n$release = '5.0.1';")["branch"] == "500"
    with pytest.raises(VersionError, match="no \\$version"):
        parse_version_php("<?php echo 1;")
    with pytest.raises(VersionError, match="neither \\$branch nor a \\$release"):
        parse_version_php("$version = 2025041400;\n$release = 'next';")


@pytest.mark.parametrize("release, branch", [
    ("4.5.6 (Build: 20250811)", "405"), ("5.0+ (Build: 20250601)", "500"), ("4.10", "410"), ("3.11.18", "311"),
    ("", None), ("dev", None), (None, None),
])
def test_branch_of_release(release, branch):
    assert branch_of_release(release) == branch


def test_branch_to_major_and_version_order():
    assert branch_to_major("500") == "5.0"
    assert branch_to_major(405) == "4.5"
    with pytest.raises(VersionError):
        branch_to_major("4.5")
    assert compare_versions("2024100706.00", "2024100700") == 1
    assert compare_versions("2024100700", "2024100700.00") == 0
    with pytest.raises(VersionError):
        compare_versions("x", "1")


def test_parse_version_json_is_what_the_php_prints_normalised():
    text = json.dumps({"version": "2024100706.00", "release": "4.5.6 (Build: 20250811)", "branch": "",
                       "maturity": "200"})
    assert parse_version_json(text) == {"version": "2024100706.00", "release": "4.5.6 (Build: 20250811)",
                                        "branch": "405", "maturity": "200", "major": "4.5"}
    with pytest.raises(VersionError, match="did not evaluate to JSON"):
        parse_version_json("PHP Warning: include(/x/version.php): Failed to open stream")
    with pytest.raises(VersionError, match="no \\$version"):
        parse_version_json(json.dumps({"version": "0.00", "release": "", "branch": "", "maturity": ""}))
    assert version_info(2024100706, "4.5.6")["version"] == "2024100706"
