# Copyright: moodle.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which Moodle a code tree or a database is: the one place that reads ``version.php`` and turns a
release into a branch.

Used by the backup engine, by the Moodle modules (``_moodle_connection``) and by moodle-operator.
Plain Python 3, standard library only.
"""

from __future__ import annotations

import json
import re

# version.php is PHP: evaluate it (as Moodle does) instead of pattern-matching it.  Run it as
# ``php -r VERSION_PHP_CODE /path/to/version.php``; it prints one JSON object (see parse_version_json).
VERSION_PHP_CODE = (
    "define('MOODLE_INTERNAL', true);"
    "foreach (['MATURITY_ALPHA' => 50, 'MATURITY_BETA' => 100, 'MATURITY_RC' => 150, 'MATURITY_STABLE' => 200]"
    " as $c => $v) { defined($c) || define($c, $v); }"
    "$version = null; $release = null; $branch = null; $maturity = null;"
    "include $argv[1];"
    "echo json_encode(['version' => sprintf('%.2f', $version), 'release' => (string) $release,"
    " 'branch' => (string) $branch, 'maturity' => (string) $maturity]);"
)

_PHP_ASSIGN = re.compile(r"^\s*\$(version|release|branch|maturity)\s*=\s*(.+?)\s*;", re.MULTILINE)
_RELEASE = re.compile(r"^\s*(\d+)\.(\d+)")


class VersionError(ValueError):
    """Not a Moodle version; the message says what was read."""


def branch_of_release(release):
    """Moodle's ``$branch`` for a release: '4.5.6 (Build: 20250811)' -> '405', '5.0+' -> '500', '4.10' -> '410'.

    None when ``release`` does not start with major.minor."""
    match = _RELEASE.match(str(release or ""))
    if not match:
        return None
    return f"{int(match.group(1))}{int(match.group(2)):02d}"


def branch_to_major(branch):
    """'405' -> '4.5', '500' -> '5.0' (Moodle's $branch is major*100 + minor)."""
    text = str(branch).strip()
    if not text.isdigit() or len(text) < 3:
        raise VersionError(f"not a Moodle branch number like '405': {branch!r}")
    return f"{int(text[:-2])}.{int(text[-2:])}"


def compare_versions(left, right):
    """Compare Moodle ``$version`` values (``2024100706.00``) numerically: -1, 0 or 1."""
    try:
        a, b = float(left), float(right)
    except (TypeError, ValueError) as exc:
        raise VersionError(f"not a Moodle $version number: {left!r} / {right!r}") from exc
    return (a > b) - (a < b)


def version_info(version, release="", branch="", maturity=""):
    """``{version, release, branch, maturity}`` as strings; the branch comes from the release when
    version.php (or the database) does not give one."""
    if version in (None, "", "0.00"):  # VERSION_PHP_CODE prints 0.00 for a missing $version
        raise VersionError("no $version")
    branch = str(branch or "") or branch_of_release(release)
    if not branch:
        raise VersionError(f"neither $branch nor a $release like '4.5.6' (release {release!r})")
    return {"version": str(version), "release": str(release or ""), "branch": branch, "maturity": str(maturity or "")}


def parse_version_php(text):
    """``$version``, ``$release``, ``$branch``, ``$maturity`` of a ``version.php`` read as text, for
    where no PHP is at hand (literal assignments only; VERSION_PHP_CODE evaluates the real thing)."""
    found = {}
    for name, value in _PHP_ASSIGN.findall(text or ""):
        value = value.split("//", 1)[0].strip()
        if len(value) >= 2 and value[0] in "'\"" and value[-1] == value[0]:
            value = value[1:-1]
        found.setdefault(name, value)
    if "version" not in found:
        raise VersionError("version.php has no $version assignment")
    return version_info(found["version"], found.get("release", ""), found.get("branch", ""), found.get("maturity", ""))


def parse_version_json(text):
    """What VERSION_PHP_CODE printed, normalised, plus ``major`` ('4.5')."""
    try:
        data = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise VersionError(f"version.php did not evaluate to JSON: {str(text).strip()[:200]!r}") from exc
    if not isinstance(data, dict):
        raise VersionError(f"version.php did not evaluate to a JSON object: {str(text).strip()[:200]!r}")
    info = version_info(data.get("version"), data.get("release", ""), data.get("branch", ""), data.get("maturity", ""))
    info["major"] = branch_to_major(info["branch"])
    return info
